"""Experiment loggers around a run: W&B set up before any logger starts, and always closed after."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from omegaconf import DictConfig

from src.common.wandb_mode import resolve_wandb_mode, sweep_identity


def prepare_wandb(cfg: DictConfig) -> dict:
    """When W&B is the logger: choose its mode (online with credentials, else offline, never a prompt; set
    in the environment) and, inside a Hydra multirun, return the job's sweep group, tags and name, for
    :func:`src.utils.config.settle_config` to write into ``cfg.logger.wandb``; ``{}`` otherwise."""
    if not (cfg.get("logger") and "wandb" in cfg.logger):
        return {}
    resolve_wandb_mode(str(Path(cfg.paths.output_dir)))
    identity = sweep_identity()
    return dict(identity) if identity and not cfg.logger.wandb.get("group") else {}


@contextmanager
def closing(loggers: list) -> Iterator[None]:
    """Run the block, then finish the W&B run whatever happened (marked failed after an error), so that
    a failed job of a sweep never leaves its run open for the next job. Lightning closes the others."""
    failed = True
    try:
        yield
        failed = False
    finally:
        if any(type(logger).__name__ == "WandbLogger" for logger in loggers):
            import wandb

            wandb.finish(exit_code=1 if failed else 0)
