"""A frozen linear map plus a trainable non-linear residual: ``linear(x) + residual(x)``.

The "wide" linear path beside a "deep" network is Wide & Deep's layout (Cheng et al., DLRS 2016), and
fitting a network to what a first model left over is residual boosting; here the linear path is fitted
first (in closed form, by the training plan) and frozen, and the deep path starts at exactly zero, so
the untrained network *is* the linear model (see :class:`~src.models.ridge_residual.RidgeResidual`).
"""

from __future__ import annotations

import torch
from torch import nn


def last_linear(module: nn.Module) -> nn.Linear:
    """The last ``nn.Linear`` of ``module`` in registration order: the output layer of an
    :class:`~src.models.networks.mlp.MLP` and of E-GEX's ``LatentRegressor`` (its decoder's)."""
    linears = [m for m in module.modules() if isinstance(m, nn.Linear)]
    if not linears:
        raise ValueError(f"{type(module).__name__} has no nn.Linear layer to zero")
    return linears[-1]


class LinearPlusResidual(nn.Module):
    """``forward(x) = linear(x) + residual(x)``.

    ``linear`` is an ``nn.Linear(n_inputs, n_outputs)`` that no optimiser trains (``requires_grad``
    off: set by its owner, e.g. a closed-form fit; still in the ``state_dict``, so checkpoints carry it).
    It starts at zero. ``residual`` is any network from ``n_inputs`` to ``n_outputs`` whose output layer
    (:func:`last_linear`) is set to zero here, weights and bias, so that until it is trained the output is
    the linear path's, exactly (``x + 0.0`` is ``x``). The linear path is computed in fp32 whatever the
    autocast context (bf16-mixed training), so mixed precision never rounds the linear model's predictions.

    Args:
        n_inputs, n_outputs: landmarks and targets.
        residual: the trainable network (E-GEX's ``LatentRegressor`` in the training plan).
    """

    def __init__(self, n_inputs: int, n_outputs: int, residual: nn.Module):
        super().__init__()
        self.linear = nn.Linear(n_inputs, n_outputs)
        nn.init.zeros_(self.linear.weight)
        nn.init.zeros_(self.linear.bias)
        self.linear.requires_grad_(False)
        self.residual = residual
        output = last_linear(residual)
        if output.out_features != n_outputs:
            raise ValueError(f"the residual's output layer has {output.out_features} outputs, not {n_outputs}")
        nn.init.zeros_(output.weight)
        nn.init.zeros_(output.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # The linear path in fp32 even under mixed precision (autocast off): it is the model the network
        # must never fall behind, and a bf16 product would round it; the residual follows autocast.
        with torch.autocast(x.device.type, enabled=False):
            base = self.linear(x.float())
        return base + self.residual(x)
