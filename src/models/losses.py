"""Training losses on the standardised scale (``model.loss``, the ``loss=`` config group): each is averaged
over the samples of a batch.

- ``l1``: absolute error averaged over genes (the MAE the papers report, as a loss);
- ``huber``: Huber loss with delta :data:`HUBER_DELTA` (1.0, one standard deviation of the gene on the
  standardised scale), averaged over genes: squared below delta, absolute above;
- ``mse``: squared error averaged over genes;
- ``sse``: squared error summed over genes, D-GEX's loss (the gradient is ``n_genes`` times that of ``mse``,
  which D-GEX's learning rates assume).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from src.common.errors import InputError

#: Huber's delta on the standardised scale: errors beyond one standard deviation count linearly.
HUBER_DELTA = 1.0


def l1(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Absolute error, averaged over genes and samples."""
    return F.l1_loss(pred, target)


def huber(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Huber loss (delta :data:`HUBER_DELTA`), averaged over genes and samples."""
    return F.huber_loss(pred, target, delta=HUBER_DELTA)


def mse(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Squared error, averaged over genes and samples."""
    return (pred - target).square().mean()


def sse(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Squared error summed over genes, averaged over samples (D-GEX)."""
    return (pred - target).square().sum(dim=-1).mean()


LOSS_FUNCTIONS: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "l1": l1, "huber": huber, "mse": mse, "sse": sse,
}
#: The names ``model.loss`` accepts.
LOSSES = tuple(LOSS_FUNCTIONS)


def loss_function(name: str) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """The loss called ``name``; an :class:`~src.common.errors.InputError` naming the choices otherwise."""
    try:
        return LOSS_FUNCTIONS[name]
    except (KeyError, TypeError):
        raise InputError(
            f"model.loss={name}: unknown loss {name!r}; choose one of {', '.join(LOSSES)} (e.g. loss=l1)"
        ) from None
