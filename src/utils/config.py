"""Check a composed config right after composition, so a wrong combination fails in one clear sentence."""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig, OmegaConf


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
    if ckpt and not Path(ckpt).is_file():
        raise FileNotFoundError(f"ckpt_path={ckpt}: no such checkpoint file")


def trainer_overrides(cfg: DictConfig, model) -> dict:
    """Trainer arguments that depend on the model: DDP that tolerates parameters without gradients
    for models trained in stages (E-GEX), when the user left the strategy to Lightning or asked for plain ddp."""
    strategy = cfg.trainer.get("strategy", "auto")
    if getattr(model, "has_unused_parameters", False) and strategy in ("auto", "ddp"):
        devices, nodes = cfg.trainer.get("devices", 1), cfg.trainer.get("num_nodes", 1) or 1
        if not (isinstance(devices, int) and devices * nodes == 1):
            return {"strategy": "ddp_find_unused_parameters_true"}
    return {}


def plain_config(cfg: DictConfig) -> dict:
    """The composed config as plain, resolved Python values, without Hydra's own node."""
    return {
        key: OmegaConf.to_container(value, resolve=True) if OmegaConf.is_config(value) else value
        for key, value in cfg.items()
        if key != "hydra"
    }
