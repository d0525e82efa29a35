"""Check a composed config right after composition, so a wrong combination fails in one clear sentence."""

from __future__ import annotations

from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf, open_dict

from src.common.atomic import atomic_path
from src.common.progress import is_first_process


def validate_config(cfg: DictConfig) -> None:
    """Raise ``ValueError`` for settings that would otherwise fail late or silently do the wrong thing."""
    trainer = cfg.trainer
    if trainer.get("use_distributed_sampler", False):
        raise ValueError(
            "trainer.use_distributed_sampler must be false: batches are already sharded across devices by "
            "src.data.batches (data.batch_size is the global batch)"
        )
    devices, nodes = trainer.get("devices", 1), trainer.get("num_nodes", 1) or 1
    if isinstance(devices, int) and devices > 0:
        world = devices * nodes
        if cfg.data.batch_size % world:
            raise ValueError(
                f"data.batch_size={cfg.data.batch_size} is the global batch and must be divisible by the "
                f"{world} processes (trainer.devices x trainer.num_nodes)"
            )
    ckpt = cfg.get("ckpt_path")
    if ckpt and ckpt != "last" and not Path(ckpt).is_file():
        raise FileNotFoundError(f"ckpt_path={ckpt}: no such checkpoint file")


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
    if ckpt != "last":
        return ckpt
    last = Path(cfg.paths.output_dir) / "checkpoints" / "last.ckpt"
    if not last.is_file():
        raise FileNotFoundError(
            f"ckpt_path=last: no {last}; to resume an interrupted run, pass its folder too: "
            "hydra.run.dir=outputs/train/<run> ckpt_path=last (or give the checkpoint's path)"
        )
    return str(last)


def plain_config(cfg: DictConfig) -> dict:
    """The composed config as plain, resolved Python values, without Hydra's own node."""
    return {
        key: OmegaConf.to_container(value, resolve=True) if OmegaConf.is_config(value) else value
        for key, value in cfg.items()
        if key != "hydra"
    }
