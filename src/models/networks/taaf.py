"""Transformative adaptive activation functions (TAAFs; Kunc & Kléma, PLOS ONE 16(1):e0243915, 2021).

A TAAF wraps a fixed activation ``g`` with four learned parameters per unit::

    f(x) = alpha * g(beta * x + gamma) + delta

``alpha`` and ``delta`` scale and shift the output, ``beta`` and ``gamma`` the input; initialised to 1, 1,
0, 0 the unit starts as ``g`` itself. :class:`AdaptiveActivation` is that unit for a layer of
``features`` units; :func:`make_adaptive` turns the activations of an existing :class:`MLP` (or of every
part of a :class:`PartitionedMLP`) into TAAFs, in place, so the layer layout, dropout and
initialisation stay those of :mod:`src.models.networks.mlp`; :class:`TAAFMLP` is an MLP built that way.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from src.common.errors import InputError
from src.models.networks.mlp import ACTIVATIONS, MLP

#: The fixed activations ``g`` a TAAF can wrap: the MLPs' ones plus the logistic sigmoid, which Kunc &
#: Kléma found better than D-GEX's tanh.
BASE_ACTIVATIONS: dict[str, type[nn.Module]] = {**ACTIVATIONS, "sigmoid": nn.Sigmoid}


def base_activation(name: str) -> nn.Module:
    """The fixed activation ``g`` called ``name``."""
    try:
        return BASE_ACTIVATIONS[name]()
    except KeyError:
        raise InputError(
            f"model.activation={name}: unknown activation {name!r}; choose one of {', '.join(sorted(BASE_ACTIVATIONS))}"
        ) from None


class AdaptiveActivation(nn.Module):
    """``alpha * g(beta * x + gamma) + delta`` over the last dimension, one parameter of each per unit.

    Args:
        features: units of the layer (size of the last dimension).
        activation: ``g``, by name (see :data:`BASE_ACTIVATIONS`) or as a module.
    """

    def __init__(self, features: int, activation: str | nn.Module = "tanh"):
        super().__init__()
        self.g = base_activation(activation) if isinstance(activation, str) else activation
        self.alpha = nn.Parameter(torch.ones(features))
        self.beta = nn.Parameter(torch.ones(features))
        self.gamma = nn.Parameter(torch.zeros(features))
        self.delta = nn.Parameter(torch.zeros(features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.addcmul(self.delta, self.alpha, self.g(torch.addcmul(self.gamma, self.beta, x)))

    def extra_repr(self) -> str:
        return f"features={self.alpha.numel()}"


def make_adaptive(mlp: MLP, activation: str = "tanh", output: bool = False) -> MLP:
    """Replace every hidden activation of ``mlp`` by an :class:`AdaptiveActivation` of ``g = activation``
    (one per unit of the layer before it), in place; with ``output``, the linear output layer gets one
    too. Returns ``mlp``."""
    base = set(ACTIVATIONS.values()) | set(BASE_ACTIVATIONS.values())
    width = None
    for i, module in enumerate(mlp):
        if isinstance(module, nn.Linear):
            width = module.out_features
        elif type(module) in base:
            mlp[i] = AdaptiveActivation(width, activation)
    if output:
        mlp.append(AdaptiveActivation(mlp.linears[-1].out_features, activation))
    return mlp


class TAAFMLP(MLP):
    """An :class:`MLP` (same arguments, layer layout and dropout placement) whose hidden units are TAAFs
    of ``g = activation_name``; ``adaptive_output`` puts TAAFs on the output layer too."""

    def __init__(
        self,
        n_in: int,
        widths: Sequence[int],
        n_out: int,
        activation_name: str = "tanh",
        adaptive_output: bool = False,
        **mlp_kwargs,
    ):
        base_activation(activation_name)  # a clear error before any layer is built
        super().__init__(n_in, widths, n_out, activation_name="tanh", **mlp_kwargs)  # tanh: replaced below
        make_adaptive(self, activation_name, output=adaptive_output)
