"""The training precision by default: ``bf16-mixed`` where the hardware runs bf16 natively, else ``32-true``.

``conf/trainer/default.yaml`` sets ``precision: ${auto_precision:${.accelerator}}``; the resolver (registered
with the others by :func:`src.common.resolvers.register_resolvers`) chooses by the device the run trains on:

- a CUDA GPU with native bf16 (``torch.cuda.is_bf16_supported(including_emulation=False)``: Ampere and later);
- a CPU that torch runs at its AVX-512 level (``torch.backends.cpu.get_cpu_capability()``) with oneDNN and
  that has AMX (``amx_bf16`` in ``/proc/cpuinfo``), or is an AMD CPU with AVX-512 BF16 (``avx512_bf16``, Zen 4
  and later). These are the rules our measurements support (docs/BENCHMARKS.md, fp32 / bf16 ``torch.mm``
  peaks on 2-core machines): Intel Xeon with AMX 430 / 2,500 GFLOP/s, AMD EPYC 200 / 600-850, but an
  Intel Xeon with AVX-512 BF16 and no AMX 290 / 164, where bf16 is *slower*, so such a CPU trains in fp32;
- anything else (older GPUs, CPUs without bf16 instructions, Apple MPS): ``32-true``.

The rule reads only the hardware's description, never a timing, so every process of a DDP run (also
SLURM's tasks and torchrun's, which start apart) chooses the same.

Mixed precision keeps the weights, gradients and optimizer state in fp32; matrix products run in bf16.
:func:`run_precision` says what a run trains in; ``src.train.build`` (through
:func:`src.utils.config.settle_config`) writes it into ``cfg.trainer.precision``, so the saved config says
what ran, and logs it in one line. An explicit ``trainer.precision=...`` is kept
as given (``trainer.precision=auto`` asks for the automatic choice too).
"""

from __future__ import annotations

import functools
import logging
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

log = logging.getLogger(__name__)

RESOLVER = "auto_precision"
BF16, FP32 = "bf16-mixed", "32-true"
#: ``/proc/cpuinfo`` flags of CPUs that run bf16 matrix products natively.
CPU_BF16_FLAGS = ("amx_bf16", "avx512_bf16")
CPUINFO = Path("/proc/cpuinfo")


def _cpuinfo_value(keys: tuple[str, ...], cpuinfo: Path | None = None) -> str:
    """The value of the first line of ``/proc/cpuinfo`` whose key is one of ``keys``; empty where there is none."""
    try:
        text = Path(cpuinfo or CPUINFO).read_text()
    except OSError:
        return ""
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in keys:
            return value.strip()
    return ""


def cpu_flags(cpuinfo: Path | None = None) -> set[str]:
    """The CPU's feature flags (x86 ``flags``, Arm ``Features``) from ``/proc/cpuinfo``; empty where there is none."""
    return set(_cpuinfo_value(("flags", "Features"), cpuinfo).split())


def cpu_vendor(cpuinfo: Path | None = None) -> str:
    """The CPU's ``vendor_id`` (``GenuineIntel``, ``AuthenticAMD``, ...) from ``/proc/cpuinfo``; empty where unknown."""
    return _cpuinfo_value(("vendor_id",), cpuinfo)


def cpu_bf16(flags: set[str] | None = None, capability: str | None = None, vendor: str | None = None) -> tuple[bool, str]:
    """Whether training in bf16 is faster on this CPU, and why (``flags``, ``capability`` and ``vendor``
    default to this machine's; the rules and the measurements behind them: module docstring)."""
    import torch

    flags = cpu_flags() if flags is None else flags
    have = [f for f in CPU_BF16_FLAGS if f in flags]
    if not have:
        return False, "CPU without AMX or AVX-512 BF16"
    capability = torch.backends.cpu.get_cpu_capability() if capability is None else capability
    if "AVX512" not in capability.upper() or not torch.backends.mkldnn.is_available():
        return False, f"CPU with {'/'.join(have)}, but torch runs it at {capability} (bf16 would be emulated)"
    if "amx_bf16" in have:
        return True, "CPU with AMX"
    vendor = cpu_vendor() if vendor is None else vendor
    if vendor == "AuthenticAMD":
        return True, "AMD CPU with AVX-512 BF16"
    return False, (f"{vendor or 'CPU'} with AVX-512 BF16 but no AMX: its bf16 matrix products measured slower "
                   "than fp32 (docs/BENCHMARKS.md)")


def cuda_bf16() -> tuple[bool, str]:
    """Whether the current CUDA device runs bf16 natively (not emulated), and its name."""
    import torch

    name = torch.cuda.get_device_name()
    if torch.cuda.is_bf16_supported(including_emulation=False):
        return True, f"CUDA {name} with native bf16"
    return False, f"CUDA {name} without native bf16"


@functools.cache
def _choose(accelerator: str) -> tuple[str, str]:
    import torch

    accelerator = str(accelerator or "auto").lower()
    if accelerator in ("gpu", "cuda") or (accelerator == "auto" and torch.cuda.is_available()):
        if not torch.cuda.is_available():
            return FP32, "no CUDA device"
        native, why = cuda_bf16()
    elif accelerator in ("auto", "cpu"):
        native, why = cpu_bf16()
    else:  # mps, tpu, ...: not measured here
        native, why = False, f"accelerator {accelerator}"
    return (BF16 if native else FP32), why


def choose_precision(accelerator: str = "auto") -> tuple[str, str]:
    """``(precision, reason)`` for training on ``accelerator`` (``auto``, ``cpu``, ``gpu``/``cuda``, ...) here."""
    return _choose(str(accelerator))


def resolve_precision(accelerator: str = "auto") -> str:
    """``${auto_precision:accelerator}``: the precision :func:`choose_precision` picks."""
    return choose_precision(accelerator)[0]


def is_automatic(cfg: DictConfig) -> bool:
    """Whether ``cfg.trainer.precision`` is left to :func:`choose_precision` (the default, or ``auto``)."""
    raw = OmegaConf.to_container(cfg.trainer, resolve=False).get("precision", "auto")
    return raw is None or str(raw) == "auto" or f"${{{RESOLVER}:" in str(raw)


def run_precision(cfg: DictConfig) -> tuple[str, str]:
    """``(precision, why)`` this run trains in: the automatic choice (:func:`choose_precision`), unless
    ``cfg.trainer.precision`` gives one. :func:`src.utils.config.settle_config` writes it into the config."""
    if "trainer" not in cfg:
        return FP32, "no trainer"
    if is_automatic(cfg):
        precision, why = choose_precision(cfg.trainer.get("accelerator", "auto"))
        return precision, f"automatic: {why}" + ("; trainer.precision=32-true for fp32" if precision != FP32 else "")
    return str(cfg.trainer.precision), "as configured"
