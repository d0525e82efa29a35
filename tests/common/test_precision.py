"""The default training precision: bf16-mixed where the hardware runs bf16 natively, else 32-true."""

from __future__ import annotations

import logging

import pytest
import torch

from src.common import precision as P
from src.utils.config import settle_config

X86 = "processor\t: 0\nvendor_id\t: {vendor}\nflags\t\t: fpu sse2 avx2 avx512f avx512bw {extra}\n\nprocessor\t: 1\n"


@pytest.fixture(autouse=True)
def fresh_choice():
    P._choose.cache_clear()
    yield
    P._choose.cache_clear()


@pytest.fixture
def cpu(monkeypatch, tmp_path):
    """``cpu(flags, capability)``: this machine has no GPU, a CPU with ``flags`` that torch runs at ``capability``."""

    def make(extra: str, capability: str = "AVX512", vendor: str = "GenuineIntel"):
        info = tmp_path / "cpuinfo"
        info.write_text(X86.format(extra=extra, vendor=vendor))
        monkeypatch.setattr(P, "CPUINFO", info)
        monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: capability)
        monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
        P._choose.cache_clear()

    return make


@pytest.fixture
def gpu(monkeypatch):
    """``gpu(native)``: a CUDA device that runs bf16 natively or not."""

    def make(native: bool):
        monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
        monkeypatch.setattr(torch.cuda, "get_device_name", lambda *a: "Fake GPU")
        monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: native or including_emulation)
        P._choose.cache_clear()

    return make


@pytest.mark.parametrize("vendor, extra, capability, expected", [
    ("GenuineIntel", "amx_bf16 amx_tile avx512_bf16", "AVX512", "bf16-mixed"),  # Sapphire Rapids and later
    ("AuthenticAMD", "avx512_bf16", "AVX512", "bf16-mixed"),  # Zen 4: bf16 mm 3-4x fp32 on the EPYCs here
    ("GenuineIntel", "avx512_bf16", "AVX512", "32-true"),     # a Xeon without AMX here: bf16 mm 0.57x fp32
    ("", "avx512_bf16", "AVX512", "32-true"),                 # vendor unknown: not assumed faster
    ("AuthenticAMD", "avx512_vnni", "AVX512", "32-true"),     # AVX-512 without bf16: emulated, slower than fp32
    ("GenuineIntel", "amx_bf16 avx512_bf16", "AVX2", "32-true"),  # torch held at AVX2 (ATEN_CPU_CAPABILITY)
    ("AuthenticAMD", "", "AVX2", "32-true"),
])
def test_a_cpu_trains_in_bf16_only_where_bf16_measured_faster(cpu, vendor, extra, capability, expected):
    cpu(extra, capability, vendor)
    assert P.choose_precision("auto")[0] == expected
    assert P.choose_precision("cpu")[0] == expected


def test_cpu_flags_come_from_proc_cpuinfo_and_a_missing_file_means_none(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text(X86.format(extra="amx_bf16", vendor="GenuineIntel"))
    assert {"avx512f", "amx_bf16"} <= P.cpu_flags(info) and P.cpu_vendor(info) == "GenuineIntel"
    arm = tmp_path / "arm"
    arm.write_text("processor\t: 0\nFeatures\t: fp asimd bf16 sve\n")
    assert "bf16" in P.cpu_flags(arm)
    assert P.cpu_flags(tmp_path / "absent") == set() and P.cpu_vendor(tmp_path / "absent") == ""


@pytest.mark.parametrize("native, expected", [(True, "bf16-mixed"), (False, "32-true")])
def test_a_gpu_trains_in_bf16_only_where_it_runs_bf16_natively(gpu, native, expected):
    gpu(native)
    assert P.choose_precision("auto") == (expected, f"CUDA Fake GPU {'with' if native else 'without'} native bf16")
    assert P.choose_precision("gpu")[0] == P.choose_precision("cuda")[0] == expected


def test_the_device_trained_on_decides(cpu, monkeypatch):
    cpu("")  # a CPU without bf16 ...
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)  # ... beside a GPU with it
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda *a: "Fake GPU")
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: True)
    assert P.choose_precision("auto")[0] == "bf16-mixed"
    assert P.choose_precision("cpu")[0] == "32-true"
    assert P.choose_precision("mps")[0] == "32-true"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    P._choose.cache_clear()
    assert P.choose_precision("gpu") == ("32-true", "no CUDA device")


def test_the_config_default_resolves_and_the_run_writes_what_it_chose(train_config, cpu, caplog):
    cpu("amx_bf16")
    cfg = train_config()
    assert P.is_automatic(cfg) and cfg.trainer.precision == "bf16-mixed"  # resolved wherever it is read
    with caplog.at_level(logging.INFO, logger="src.utils.config"):
        assert P.run_precision(cfg)[0] == "bf16-mixed"
        settle_config(cfg, model=None)
    assert not P.is_automatic(cfg) and cfg.trainer.precision == "bf16-mixed"  # a value now, as saved
    assert [r.getMessage() for r in caplog.records] == [
        "Training precision: bf16-mixed (automatic: CPU with AMX; trainer.precision=32-true for fp32)"]
    cpu("")
    assert train_config().trainer.precision == "32-true"
    assert train_config("trainer.accelerator=cpu").trainer.precision == "32-true"


@pytest.mark.parametrize("overrides, expected", [
    (["trainer.precision=32-true"], "32-true"),
    (["trainer.precision=bf16-mixed"], "bf16-mixed"),
    (["trainer.precision=auto"], "bf16-mixed"),
    (["experiment=dgex"], "32-true"),          # the paper recipes stay fp32, bit-reproducible
    (["experiment=dgex_grid"], "32-true"),
    (["experiment=egex_staged"], "32-true"),
])
def test_an_explicit_precision_is_kept(train_config, cpu, overrides, expected):
    cpu("amx_bf16")
    cfg = train_config(*overrides, "logger=none")  # (a sweep's W&B names need the sweep's job)
    assert P.run_precision(cfg)[0] == expected
    settle_config(cfg, model=None)
    assert cfg.trainer.precision == expected


def test_the_trainer_is_built_with_the_chosen_precision(train_config, cpu):
    import hydra

    cpu("avx512_bf16", vendor="AuthenticAMD")
    trainer = hydra.utils.instantiate(train_config("logger=none").trainer, logger=False)
    assert trainer.precision == "bf16-mixed"
