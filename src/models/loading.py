"""Load any of our checkpoints back into its training plan, without knowing its class in advance."""

from __future__ import annotations

from pathlib import Path

import hydra

from src.common.checkpoint_format import our_part, read_checkpoint
from src.models.base import ExpressionModel


def load_model(path: str | Path) -> ExpressionModel:
    """Rebuild the training plan saved in ``path`` (class, hyperparameters, weights, preprocessing)."""
    ckpt = read_checkpoint(path)
    cls = hydra.utils.get_class(our_part(ckpt, path).model_class)
    model = cls(**ckpt["hyper_parameters"])
    model.on_load_checkpoint(ckpt)  # before the weights, as Lightning does
    model.load_state_dict(ckpt["state_dict"])
    return model.eval()
