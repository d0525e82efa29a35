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
