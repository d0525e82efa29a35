"""Build lists of callbacks and loggers from their config groups."""

from __future__ import annotations

import hydra
from omegaconf import DictConfig


def instantiate_all(group: DictConfig | None) -> list:
    """Instantiate every ``_target_`` entry of a config group (a mapping of name -> object config)."""
    if not group:
        return []
    return [hydra.utils.instantiate(conf) for conf in group.values() if isinstance(conf, DictConfig) and "_target_" in conf]
