"""Decide how W&B runs before any logger starts: online only with credentials, never a prompt."""

from __future__ import annotations

import logging
import netrc
import os
from urllib.parse import urlparse

log = logging.getLogger(__name__)


def _has_credentials() -> bool:
    if os.environ.get("WANDB_API_KEY"):
        return True
    host = urlparse(os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai")).hostname
    try:
        return netrc.netrc().authenticators(host) is not None
    except (FileNotFoundError, netrc.NetrcParseError, OSError):
        return False


def resolve_wandb_mode(save_dir: str) -> str:
    """Set ``WANDB_MODE`` if the user did not: ``online`` with an API key (env or ``wandb login``),
    otherwise ``offline`` (a run folder under ``save_dir`` that ``wandb sync`` uploads later).

    An explicit ``WANDB_MODE`` always wins. Returns the mode in force.
    """
    os.environ.setdefault("WANDB_CONSOLE", "off")  # keep stdout clean; metrics still go to W&B
    mode = os.environ.get("WANDB_MODE")
    if mode:
        return mode
    if _has_credentials():
        return "online"
    os.environ["WANDB_MODE"] = "offline"
    log.info("W&B: no API key found, logging offline to %s/wandb (upload later with `wandb sync`)", save_dir)
    return "offline"


def sweep_identity() -> dict | None:
    """W&B ``group``, ``tags`` and ``name`` for a job of a Hydra multirun (None outside one).

    The group is the sweep (task name and sweep folder), the tags are the job's overrides, so a
    sweep's runs sit together in the W&B dashboard and can be filtered by any swept value.
    """
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    if not HydraConfig.initialized():
        return None
    hydra_cfg = HydraConfig.get()
    if hydra_cfg.mode != RunMode.MULTIRUN:
        return None
    sweep = os.path.basename(os.path.normpath(hydra_cfg.sweep.dir))
    overrides = list(hydra_cfg.overrides.task)
    return {
        "group": f"{hydra_cfg.job.name}-{sweep}",
        "tags": [o[:64] for o in overrides],  # W&B limits tags to 64 characters
        "name": f"{hydra_cfg.job.num}: {' '.join(overrides)}"[:128],
    }
