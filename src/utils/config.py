"""Check a composed config right after composition, so a wrong combination fails in one clear sentence.

Every value a user is likely to type wrong is checked before any work, and a bad one fails as an
:class:`~src.common.errors.InputError` naming the key, the value, what was expected and a valid override
(:mod:`src.common.config_checks`). The checks of a model, a DataModule or a data source are declared by
that class (``config_checks``) and found through the config's ``_target_``; this module holds only the
checks of the run itself, the Trainer and the ``src.eval`` / ``src.predict`` options, and the rules that
involve several keys (a global batch that divides among the processes). ``validate_config`` checks a
training config, ``validate_eval_config`` and ``validate_predict_config`` those of ``src.eval`` and
``src.predict``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf, open_dict

from src.common.atomic import atomic_path
from src.common.config_checks import (
    POSITIVE_INT, Check, check_table, check_settings, checks_of, integer, level, list_of, number, one_of, optional,
    positive_int, shown, target_class,
)
from src.common.errors import InputError
from src.common.precision import run_precision
from src.common.progress import is_first_process
from src.data.datamodule import ExpressionDataModule
from src.data.io.base import FORMATS
from src.inference.predictor import Predictor
from src.utils.loggers import prepare_wandb

log = logging.getLogger(__name__)


def _devices(v) -> bool:
    """What Lightning takes as ``devices``: a count (or -1: all), ``auto``, ``"0,1"`` or a list of indices."""
    if integer(v):
        return v >= 1 or v == -1
    if isinstance(v, str):
        parts = [part.strip() for part in v.split(",") if part.strip()]
        return v == "auto" or (bool(parts) and all(part.lstrip("-").isdigit() for part in parts))
    return list_of(lambda i: integer(i) and i >= 0, non_empty=True)(v)


PRECISIONS = ("32-true", "bf16-mixed", "16-mixed", "bf16-true", "16-true", "64-true", 32, 16, 64, "32", "16", "64", "bf16",
              "transformer-engine", "transformer-engine-float16")  # what Lightning's Trainer takes
ACCELERATORS = ("auto", "cpu", "gpu", "cuda", "mps", "tpu", "xla")
TRAINER_CHECKS = check_table(
    ("trainer.precision", one_of(*PRECISIONS), "one of Lightning's precisions: " + ", ".join(map(str, PRECISIONS[:6])),
     "bf16-mixed"),
    ("trainer.accelerator", one_of(*ACCELERATORS), "one of " + ", ".join(ACCELERATORS), "auto"),
    ("trainer.max_epochs", optional(lambda v: integer(v) and (v >= 1 or v == -1)),
     "a positive integer (the most epochs to train), or -1 for no limit", "100"),
    ("trainer.devices", _devices, "a positive number of devices, -1 (all), auto, or a list of device indices", "1"),
    ("trainer.num_nodes", positive_int, POSITIVE_INT, "1"),
    ("trainer.log_every_n_steps", positive_int, POSITIVE_INT, "10"),
)
SEED = (lambda v: integer(v) and 0 <= v < 2**32, "an integer from 0 to 2**32 - 1")
RUN_CHECKS = check_table(
    ("seed", *SEED, "12345"),
    ("interval", level, "a level in (0, 1)", "0.9"),
    ("optimized_metric", optional(lambda v: isinstance(v, str)), "a metric name", "val/mae"),
    ("keep_freed_memory", one_of(True, False), "true or false", "true"),
    ("keep_last_checkpoint", one_of(True, False), "true or false", "false"),
)
EVAL_CHECKS = (*check_table(
    ("seed", *SEED, "12345"),
    ("interval", level, "a level in (0, 1)", "0.9"),
    ("landmark_panel", optional(lambda v: isinstance(v, str) and v != ""), "null or a file (one landmark id per line)",
     "panel.txt"),
), *(check for check in checks_of(Predictor, "") if check.key in ("calibrate_with", "adjust")))
PREDICT_CHECKS = (*checks_of(Predictor, ""), *check_table(  # the engine's options, then the command's own
    ("block_size", positive_int, "a positive integer (samples per block)", "8192"),
    ("overwrite", one_of(True, False), "true or false", "true"),
    ("input_format", one_of("auto", *FORMATS), "auto, " + ", ".join(FORMATS), "gctx"),
    ("reader_options", lambda v: isinstance(v, Mapping), "a mapping of reader options", "{}"),
))


def data_checks(cfg: DictConfig) -> tuple[Check, ...]:
    """The checks the DataModule and the data source of ``cfg.data`` declare (the DataModule's even where
    ``cfg.data`` holds only overrides, as ``src.eval``'s may)."""
    return (*checks_of(target_class(cfg, "data") or ExpressionDataModule, "data"),
            *checks_of(target_class(cfg, "data.source"), "data.source"))


def check_no_missing(cfg: DictConfig) -> None:
    """Raise an :class:`InputError` naming the first value the composed config leaves unset (``???``, e.g.
    ``data.source.path`` of ``data=geo``), before anything reads it and fails with OmegaConf's exception."""
    missing = []
    for key in cfg:
        if key == "hydra":
            continue
        if OmegaConf.is_missing(cfg, key):
            missing.append(str(key))
        elif OmegaConf.is_config(cfg._get_node(key)):
            missing += sorted(OmegaConf.missing_keys(cfg[key]))  # full keys (data.source.path)
    if missing:
        others = f" (and {', '.join(missing[1:])})" if len(missing) > 1 else ""
        raise InputError(f"{missing[0]} is not set{others}; the chosen config needs it: pass it on the command line, "
                         f"e.g. {missing[0]}=VALUE")


def check_required(cfg: DictConfig, keys: Sequence[str], command: str) -> None:
    """Raise an :class:`InputError` for the first of ``keys`` left unset (``???``), with the command's usage."""
    for key in keys:
        if OmegaConf.is_missing(cfg, key):
            raise InputError(f"{key} is not set; expected e.g. {command}")


def validate_config(cfg: DictConfig) -> None:
    """Raise an :class:`InputError` for settings of a training config that would otherwise fail late or
    silently do the wrong thing: a value of the wrong type or range (the checks of the run, the Trainer and the objects configured), a global batch
    that does not divide among the processes, Lightning's own sampler; ``FileNotFoundError`` for a
    checkpoint to resume from that does not exist."""
    check_no_missing(cfg)
    check_settings(cfg, (*RUN_CHECKS, *data_checks(cfg), *TRAINER_CHECKS, *checks_of(target_class(cfg, "model"), "model")))
    trainer = cfg.trainer
    check_accelerator_present(trainer.get("accelerator", "auto"))
    if trainer.get("use_distributed_sampler", False):
        raise InputError(
            "trainer.use_distributed_sampler must be false: batches are already sharded across devices by "
            "src.data.batches (data.batch_size is the global batch); e.g. trainer.use_distributed_sampler=false"
        )
    devices, nodes = trainer.get("devices", 1), trainer.get("num_nodes", 1) or 1
    if isinstance(devices, int) and devices > 0:
        world = devices * nodes
        if cfg.data.batch_size % world:
            raise InputError(
                f"data.batch_size={cfg.data.batch_size} is the global batch and must be divisible by the "
                f"{world} processes (trainer.devices x trainer.num_nodes), e.g. "
                f"data.batch_size={max(world, cfg.data.batch_size // world * world)}"
            )
    ckpt = cfg.get("ckpt_path")
    if ckpt and ckpt != "last" and not Path(ckpt).is_file():
        raise FileNotFoundError(f"ckpt_path={ckpt}: no such checkpoint file")


def validate_eval_config(cfg: DictConfig) -> None:
    """The checks of :func:`validate_config` for ``src.eval``: the checkpoint is given, the level, the
    panel, and the ``data.*`` and ``trainer.*`` values present."""
    check_required(cfg, ["ckpt_path"], "python -m src.eval ckpt_path=outputs/train/<run>/checkpoints/best.ckpt")
    check_no_missing(cfg)
    check_settings(cfg, (*EVAL_CHECKS, *data_checks(cfg), *TRAINER_CHECKS))


def validate_predict_config(cfg: DictConfig) -> None:
    """The checks of ``src.predict``'s config: what must be given, each option's values, the device."""
    check_required(cfg, ["ckpt_path", "input", "output"],
                   "python -m src.predict ckpt_path=outputs/train/<run>/checkpoints/best.ckpt input=new.gctx output=pred.h5ad")
    check_no_missing(cfg)
    check_settings(cfg, PREDICT_CHECKS)
    check_device(cfg.get("device", "auto"))


def check_accelerator_present(accelerator) -> None:
    """``trainer.accelerator=gpu`` (or ``cuda``) on a machine without a usable GPU: one message with the fix,
    instead of Lightning's exception after the data were loaded."""
    import torch

    if accelerator in ("gpu", "cuda") and not torch.cuda.is_available():
        raise InputError(f"trainer.accelerator={accelerator}: no CUDA GPU is available here (torch.cuda.is_available() "
                         "is false); use trainer.accelerator=auto (a GPU when there is one, else the CPU) or "
                         "trainer.accelerator=cpu")


def check_device(name) -> None:
    """``device=`` of ``src.predict``: ``auto``, ``cpu``, ``cuda``, ``cuda:N``, ... and, for a GPU, one that is here."""
    import torch

    if name == "auto":
        return
    try:
        device = torch.device(str(name))
    except (RuntimeError, ValueError):
        raise InputError(f"device={shown(name)}: expected auto, cpu, cuda or cuda:N (a GPU index), e.g. device=auto") from None
    if device.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0 or (device.index is not None and device.index >= count):
            have = f"{count} GPU(s) (cuda:0 to cuda:{count - 1})" if count else "no CUDA GPU"
            raise InputError(f"device={name}: this machine has {have}; e.g. device=auto (a GPU if there is one, else the CPU)")


def processes_per_node(trainer: DictConfig) -> int:
    """How many training processes ``trainer.devices`` starts on each node (each holds its own DataModule): a
    positive number as given, a list of device indices by its length, ``-1`` or ``auto`` as many GPUs as there are
    (one process on a CPU)."""
    import torch

    devices = trainer.get("devices", 1)
    if isinstance(devices, int) and devices > 0:
        return devices
    if OmegaConf.is_list(devices) or isinstance(devices, (list, tuple)):
        return max(len(devices), 1)
    on_gpu = trainer.get("accelerator", "auto") in ("auto", "gpu", "cuda") and torch.cuda.is_available()
    return max(torch.cuda.device_count(), 1) if on_gpu else 1


def ddp_strategy(cfg: DictConfig, model) -> str | None:
    """DDP that tolerates parameters without gradients for plans trained in stages (E-GEX's pre-training),
    when the user left the strategy to Lightning or asked for plain ``ddp`` and the run has several
    processes; None when the configured strategy stands."""
    strategy = cfg.trainer.get("strategy", "auto")
    if getattr(model, "has_unused_parameters", False) and strategy in ("auto", "ddp"):
        devices, nodes = cfg.trainer.get("devices", 1), cfg.trainer.get("num_nodes", 1) or 1
        if not (isinstance(devices, int) and devices * nodes == 1):
            return "ddp_find_unused_parameters_true"
    return None


def settle_config(cfg: DictConfig, model) -> dict[str, object]:
    """Write the settings this run chooses in code into ``cfg`` (the one place a composed training config
    changes after composition) and save the config once, so that the saved config is what ran: the DDP
    strategy (:func:`ddp_strategy`), the precision (:func:`src.common.precision.run_precision`, logged in one
    line) and, in a sweep, W&B's group, tags and name (:func:`src.utils.loggers.prepare_wandb`). Returns
    them as dotted keys."""
    settings: dict[str, object] = {}
    strategy = ddp_strategy(cfg, model)
    if strategy:
        settings["trainer.strategy"] = strategy
    if "trainer" in cfg:
        precision, why = run_precision(cfg)
        settings["trainer.precision"] = precision
        log.info("Training precision: %s (%s)", precision, why)
    settings.update({f"logger.wandb.{key}": value for key, value in prepare_wandb(cfg).items()})
    with open_dict(cfg):
        for key, value in settings.items():
            OmegaConf.update(cfg, key, value, merge=False)
    save_config(cfg)
    return settings


def save_config(cfg: DictConfig) -> Path | None:
    """Rewrite the run's saved ``.hydra/config.yaml`` with ``cfg`` as it is now (after the settings chosen
    in code), so the saved config is what ran. Only the first process writes; None without a saved config."""
    if not is_first_process() or not HydraConfig.initialized():
        return None
    subdir = HydraConfig.get().output_subdir
    if subdir is None:
        return None
    saved = Path(cfg.paths.output_dir) / subdir / "config.yaml"
    if not saved.is_file():
        return None
    with atomic_path(saved) as tmp:
        tmp.write_text(OmegaConf.to_yaml(cfg))
    return saved


def resume_checkpoint(cfg: DictConfig) -> Path | None:
    """Where this run keeps its resume state: ``paths.checkpoint_dir`` / ``callbacks.last_checkpoint``'s file
    (``last.ckpt``); None when no callback keeps one."""
    filename = OmegaConf.select(cfg, "callbacks.last_checkpoint.filename", default=None)
    return Path(cfg.paths.checkpoint_dir) / f"{filename}.ckpt" if filename else None


def resolve_ckpt_path(cfg: DictConfig) -> str | None:
    """``ckpt_path`` as a file: ``last`` means this run folder's ``checkpoints/last.ckpt`` (resume an
    interrupted run with its overrides plus ``hydra.run.dir=<its folder> ckpt_path=last``)."""
    ckpt = cfg.get("ckpt_path")
    if ckpt is None:
        return None
    if ckpt == "last":
        last = resume_checkpoint(cfg)
        if last is None:
            raise InputError("ckpt_path=last: these callbacks keep no resume checkpoint (callbacks.last_checkpoint); "
                             "resume with the default callbacks, e.g. drop callbacks=none")
        if not last.is_file():
            raise FileNotFoundError(
                f"ckpt_path=last: no {last}; to resume an interrupted run, pass its folder too: "
                "hydra.run.dir=outputs/train/<run> ckpt_path=last (or give the checkpoint's path)"
            )
        ckpt = str(last)
    check_resumable(ckpt)
    return ckpt


def check_resumable(path: str) -> None:
    """Refuse, before any work, a ``ckpt_path`` that is not one of our checkpoints, or one without the
    state resuming needs (a weights-only ``best.ckpt``)."""
    from src.common.checkpoint_format import read_checkpoint

    ckpt = read_checkpoint(path)
    if "optimizer_states" not in ckpt or "loops" not in ckpt:
        raise InputError(
            f"ckpt_path={path}: the checkpoint holds weights only (no optimizer or loop state), so training "
            "cannot resume from it; resume from the run's checkpoints/last.ckpt (ckpt_path=last with "
            "hydra.run.dir=<its folder>), or evaluate or predict with this one"
        )


def plain_config(cfg: DictConfig) -> dict:
    """The composed config as plain, resolved Python values, without Hydra's own node."""
    return {
        key: OmegaConf.to_container(value, resolve=True) if OmegaConf.is_config(value) else value
        for key, value in cfg.items()
        if key != "hydra"
    }
