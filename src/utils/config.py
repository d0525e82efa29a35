"""Check a composed config right after composition, so a wrong combination fails in one clear sentence.

Every value a user is likely to type wrong is checked against a small declarative table (key, what
it must be, an example) before any work, and a bad one fails as an
:class:`~src.common.errors.InputError` naming the key, the value, what was expected and a valid
override, e.g. ``data.batch_size=abc: expected a positive integer (the global training batch), e.g.
data.batch_size=200``. ``validate_config`` checks a training config, ``validate_eval_config`` and
``validate_predict_config`` those of ``src.eval`` and ``src.predict``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf, open_dict

from src.common.atomic import atomic_path
from src.common.errors import InputError
from src.common.progress import is_first_process
from src.utils import precision as _precision  # noqa: F401  (registers ${auto_precision:...}, conf/trainer)

# -- what a value may be --------------------------------------------------------------------------------


def _int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _positive_int(v) -> bool:
    return _int(v) and v >= 1


def _optional(check: Callable[[Any], bool]) -> Callable[[Any], bool]:
    return lambda v: v is None or check(v)


def _list_of(check: Callable[[Any], bool], non_empty: bool = False) -> Callable[[Any], bool]:
    def ok(v) -> bool:
        return isinstance(v, Sequence) and not isinstance(v, str) and (len(v) > 0 or not non_empty) and all(map(check, v))

    return ok


def _one_of(*choices) -> Callable[[Any], bool]:
    return lambda v: not isinstance(v, (list, dict)) and any(v is c or (type(v) is type(c) and v == c) for c in choices)


def _devices(v) -> bool:
    """What Lightning takes as ``devices``: a count (or -1: all), ``auto``, ``"0,1"`` or a list of indices."""
    if _int(v):
        return v >= 1 or v == -1
    if isinstance(v, str):
        parts = [part.strip() for part in v.split(",") if part.strip()]
        return v == "auto" or (bool(parts) and all(part.lstrip("-").isdigit() for part in parts))
    return _list_of(lambda i: _int(i) and i >= 0, non_empty=True)(v)


def _split(v) -> bool:
    return _list_of(lambda x: _number(x) and x >= 0)(v) and len(v) == 3


def _calibration(v) -> bool:
    return _number(v) and v >= 0 and (v < 1 or float(v).is_integer())


@dataclass(frozen=True)
class Check:
    """A config key, what its value must be (a predicate and its words), and an example value."""

    key: str
    ok: Callable[[Any], bool]
    expected: str
    example: str


def _check_table(*rows: tuple[str, Callable[[Any], bool], str, str]) -> tuple[Check, ...]:
    return tuple(Check(*row) for row in rows)


POSITIVE_INT = "a positive integer"
DATA_CHECKS = _check_table(
    ("data.batch_size", _positive_int, "a positive integer (the global training batch)", "200"),
    ("data.eval_batch_size", _positive_int, "a positive integer (samples per process for validation and test)", "1000"),
    ("data.split", _split, "three non-negative fractions summing to 1, or three sample counts (train, val, test)",
     "[0.8,0.1,0.1]"),
    ("data.split_seed", _int, "an integer", "0"),
    ("data.calibration", _calibration, "a fraction in [0, 1) of the samples or a sample count (0: no calibration)",
     "0.1"),
    ("data.max_samples", _optional(_positive_int), "null (all samples) or a positive integer", "3000"),
    ("data.max_targets", _optional(_positive_int), "null (all target genes) or a positive integer", "300"),
    ("data.quantile_normalize", _one_of(True, False), "true or false", "false"),
    ("data.on_device", _one_of("auto", True, False), "auto, true or false (splits held on the GPU)", "auto"),
    ("data.folds", _optional(lambda v: _int(v) and v >= 2), "null (one train/val/test split) or an integer >= 2", "5"),
    ("data.fold", lambda v: _int(v) and v >= 0, "a fold index from 0 to data.folds - 1", "0"),
    ("data.source.strict_genes", _one_of(True, False), "true or false (refuse map genes absent from the file)", "false"),
    ("data.source.min_gene_fraction", lambda v: _number(v) and 0 < v <= 1, "a share in (0, 1] of the landmark genes", "0.9"),
)
TRAINER_CHECKS = _check_table(
    ("trainer.max_epochs", _optional(lambda v: _int(v) and (v >= 1 or v == -1)),
     "a positive integer (the most epochs to train), or -1 for no limit", "100"),
    ("trainer.devices", _devices, "a positive number of devices, -1 (all), auto, or a list of device indices", "1"),
    ("trainer.num_nodes", _positive_int, POSITIVE_INT, "1"),
    ("trainer.log_every_n_steps", _positive_int, POSITIVE_INT, "10"),
)
MODEL_CHECKS = _check_table(
    ("model.dropout", lambda v: _number(v) and 0 <= v < 1, "a fraction in [0, 1)", "0.1"),
    ("model.input_noise", lambda v: _number(v) and v >= 0, "a non-negative noise level", "0.0"),
    ("model.optimizer.lr", lambda v: _number(v) and v > 0, "a positive learning rate", "1e-3"),
    ("model.lr", _optional(lambda v: _number(v) and v > 0), "null (D-GEX's rule) or a positive learning rate", "3e-4"),
    ("model.widths", _list_of(_positive_int), "a list of positive layer widths", "[1024,1024]"),
    ("model.ae_widths", _list_of(_positive_int), "a list of positive layer widths", "[1024]"),
    ("model.mlp_widths", _list_of(_positive_int), "a list of positive layer widths", "[1024,1024]"),
    ("model.latent", _positive_int, "a positive latent size", "128"),
    ("model.n_splits", _positive_int, "a positive number of target partitions", "2"),
    ("model.alphas", _list_of(lambda v: _number(v) and v > 0), "a list of positive penalty strengths", "[0.01,0.1,1.0]"),
    ("model.residual_shrinkage", lambda v: _number(v) and v >= 1, "a factor >= 1 (1: the selected ridge)", "100"),
    ("model.ks", _list_of(_positive_int, non_empty=True), "a list of positive neighbour counts", "[1,5,10]"),
    ("model.max_iter", _positive_int, POSITIVE_INT, "200"),
    ("model.tol", lambda v: _number(v) and v > 0, "a positive tolerance", "1e-4"),
    ("model.decay_factor", lambda v: _number(v) and 0 < v <= 1, "a factor in (0, 1]", "0.9"),
    ("model.min_lr", lambda v: _number(v) and v >= 0, "a non-negative learning rate", "1e-5"),
)
LEVEL = lambda v: _number(v) and 0 < v < 1  # noqa: E731
RUN_CHECKS = _check_table(
    ("seed", _int, "an integer", "12345"),
    ("interval", LEVEL, "a level in (0, 1)", "0.9"),
    ("optimized_metric", _optional(lambda v: isinstance(v, str)), "a metric name", "val/mae"),
    ("keep_freed_memory", _one_of(True, False), "true or false", "true"),
    ("keep_last_checkpoint", _one_of(True, False), "true or false", "false"),
)
EVAL_CHECKS = _check_table(
    ("seed", _int, "an integer", "12345"),
    ("interval", LEVEL, "a level in (0, 1)", "0.9"),
    ("landmark_panel", _optional(lambda v: isinstance(v, str) and v != ""), "null or a file (one landmark id per line)",
     "panel.txt"),
)
PREDICT_CHECKS = _check_table(
    ("block_size", _positive_int, "a positive integer (samples per block)", "8192"),
    ("interval", _optional(LEVEL), "null (no intervals) or a level in (0, 1)", "0.9"),
    ("interval_kind", _one_of("adaptive", "constant"), "adaptive or constant", "adaptive"),
    ("genes", _one_of("all", "reliable"), "all or reliable", "all"),
    ("missing_landmarks", _one_of("error", "impute"), "error or impute", "impute"),
    ("overwrite", _one_of(True, False), "true or false", "true"),
    ("log2", _one_of("auto", True, False), "auto, true or false", "auto"),
    ("quantile_normalize", _one_of("auto", True, False), "auto, true or false", "auto"),
    ("id_type", _one_of("auto", "probe", "ensembl", "symbol"), "auto, probe, ensembl or symbol", "auto"),
    ("input_format", _one_of("auto", "gctx", "h5ad", "table"), "auto, gctx, h5ad or table", "gctx"),
    ("reader_options", lambda v: isinstance(v, Mapping), "a mapping of reader options", "{}"),
)

_ABSENT = object()


def shown(value) -> str:
    """A value as it is written on the command line (``null``, ``true``, ``[1,2]``)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, Mapping):
        return "{" + ",".join(f"{k}:{shown(v)}" for k, v in value.items()) + "}"
    if isinstance(value, Sequence) and not isinstance(value, str):
        return "[" + ",".join(map(shown, value)) + "]"
    return str(value)


def check_values(cfg: DictConfig, checks: Sequence[Check]) -> None:
    """Raise an :class:`InputError` naming the first key of ``checks`` present in ``cfg`` whose value is not
    what the key expects (keys absent from ``cfg`` are not checked)."""
    for check in checks:
        value = OmegaConf.select(cfg, check.key, default=_ABSENT)
        if value is _ABSENT:
            continue
        if OmegaConf.is_config(value):
            value = OmegaConf.to_container(value, resolve=True)
        if not check.ok(value):
            raise InputError(f"{check.key}={shown(value)}: expected {check.expected}, e.g. {check.key}={check.example}")


def check_required(cfg: DictConfig, keys: Sequence[str], command: str) -> None:
    """Raise an :class:`InputError` for the first of ``keys`` left unset (``???``), with the command's usage."""
    for key in keys:
        if OmegaConf.is_missing(cfg, key):
            raise InputError(f"{key} is not set; expected e.g. {command}")


def validate_config(cfg: DictConfig) -> None:
    """Raise an :class:`InputError` for settings of a training config that would otherwise fail late or
    silently do the wrong thing: a value of the wrong type or range (the tables above), a global batch
    that does not divide among the processes, Lightning's own sampler; ``FileNotFoundError`` for a
    checkpoint to resume from that does not exist."""
    check_values(cfg, (*RUN_CHECKS, *DATA_CHECKS, *TRAINER_CHECKS, *MODEL_CHECKS))
    trainer = cfg.trainer
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
    check_values(cfg, (*EVAL_CHECKS, *DATA_CHECKS, *TRAINER_CHECKS))


def validate_predict_config(cfg: DictConfig) -> None:
    """The checks of ``src.predict``'s config: what must be given, each option's values, the device."""
    check_required(cfg, ["ckpt_path", "input", "output"],
                   "python -m src.predict ckpt_path=outputs/train/<run>/checkpoints/best.ckpt input=new.gctx output=pred.h5ad")
    check_values(cfg, PREDICT_CHECKS)
    check_device(cfg.get("device", "auto"))


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


def choose_strategy(cfg: DictConfig, model) -> None:
    """DDP that tolerates parameters without gradients for plans trained in stages (E-GEX's pre-training),
    when the user left the strategy to Lightning or asked for plain ``ddp``; written into ``cfg.trainer``."""
    strategy = cfg.trainer.get("strategy", "auto")
    if getattr(model, "has_unused_parameters", False) and strategy in ("auto", "ddp"):
        devices, nodes = cfg.trainer.get("devices", 1), cfg.trainer.get("num_nodes", 1) or 1
        if not (isinstance(devices, int) and devices * nodes == 1):
            with open_dict(cfg):
                cfg.trainer.strategy = "ddp_find_unused_parameters_true"


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


def resolve_ckpt_path(cfg: DictConfig) -> str | None:
    """``ckpt_path`` as a file: ``last`` means this run folder's ``checkpoints/last.ckpt`` (resume an
    interrupted run with its overrides plus ``hydra.run.dir=<its folder> ckpt_path=last``)."""
    ckpt = cfg.get("ckpt_path")
    if ckpt is None:
        return None
    if ckpt == "last":
        last = Path(cfg.paths.checkpoint_dir) / "last.ckpt"
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
