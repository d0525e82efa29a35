"""Load any of our checkpoints back into its training plan, without knowing its class in advance."""

from __future__ import annotations

from pathlib import Path

import hydra
import torch

from src.models.base import ExpressionModel


def read_checkpoint(path: str | Path) -> dict:
    """``torch.load(weights_only=True)`` with errors that name the file and the problem."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such checkpoint file")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # truncated, corrupted, or not a torch file at all
        raise ValueError(f"{path}: not a readable checkpoint ({type(err).__name__}: {err})"[:500]) from err
    if not isinstance(ckpt, dict) or "gexinfer" not in ckpt or "state_dict" not in ckpt:
        raise ValueError(f"{path}: not a gexinfer checkpoint (expected the 'gexinfer' and 'state_dict' entries)")
    return ckpt


def load_model(path: str | Path) -> ExpressionModel:
    """Rebuild the training plan saved in ``path`` (class, hyperparameters, weights, gene space)."""
    ckpt = read_checkpoint(path)
    cls = hydra.utils.get_class(ckpt["gexinfer"]["model_class"])
    model = cls(**ckpt["hyper_parameters"])
    model.on_load_checkpoint(ckpt)  # before the weights, as Lightning does
    model.load_state_dict(ckpt["state_dict"])
    return model.eval()
