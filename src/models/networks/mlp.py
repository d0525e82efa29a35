"""Multilayer perceptrons: the building block of every network here."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from src.common.errors import InputError

ACTIVATIONS = {"tanh": nn.Tanh, "relu": nn.ReLU, "gelu": nn.GELU, "silu": nn.SiLU, "elu": nn.ELU}
NORMS = {None: None, "none": None, "layer": nn.LayerNorm, "batch": nn.BatchNorm1d}


def activation(name: str) -> nn.Module:
    """An activation module by name (tanh, relu, gelu, silu, elu)."""
    try:
        return ACTIVATIONS[name]()
    except KeyError:
        raise InputError(f"model.activation={name}: unknown activation {name!r}; choose one of {', '.join(sorted(ACTIVATIONS))}") from None


class MLP(nn.Sequential):
    """``n_in -> widths... -> n_out`` with an activation after each hidden layer and a linear output.

    Dropout (rate ``dropout``) is applied to the input of every layer except the first, as in D-GEX:
    never to the network's own inputs (``input_dropout`` adds that, default off). ``norm`` ("layer" or
    "batch") normalises each hidden layer before its activation.
    """

    def __init__(
        self,
        n_in: int,
        widths: Sequence[int],
        n_out: int,
        activation_name: str = "tanh",
        dropout: float = 0.0,
        input_dropout: float = 0.0,
        norm: str | None = None,
    ):
        if norm not in NORMS:
            raise InputError(f"model.norm={norm}: unknown norm {norm!r}; choose null or one of {', '.join(k for k in NORMS if k)}")
        layers: list[nn.Module] = []
        sizes = [n_in, *widths]
        for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
            rate = dropout if i > 0 else input_dropout
            if rate > 0:
                layers.append(nn.Dropout(rate))
            layers.append(nn.Linear(a, b))
            if NORMS[norm] is not None:
                layers.append(NORMS[norm](b))
            layers.append(activation(activation_name))
        if dropout > 0 and widths:
            layers.append(nn.Dropout(dropout))
        layers.append(nn.Linear(sizes[-1], n_out))
        super().__init__(*layers)

    @property
    def linears(self) -> list[nn.Linear]:
        """The linear layers in order; the last is the output layer."""
        return [m for m in self if isinstance(m, nn.Linear)]


def partition_sizes(n: int, parts: int) -> list[int]:
    """Sizes of ``parts`` contiguous partitions of ``n`` outputs (the first ones one larger if uneven)."""
    if not 1 <= parts <= n:
        raise InputError(f"model.n_splits={parts}: cannot split {n} targets into {parts} partitions")
    return [len(a) for a in np.array_split(np.arange(n), parts)]


class PartitionedMLP(nn.Module):
    """Targets split into ``n_splits`` contiguous partitions, each predicted by its own :class:`MLP`.

    D-GEX split its 9,520 targets into two halves of 4,760 (``n_splits=2``) so each network fit on a GPU;
    ``n_splits=1`` is a single network for all targets. The output is the partitions' predictions
    concatenated in target order.
    """

    def __init__(self, n_in: int, n_out: int, n_splits: int = 1, **mlp_kwargs):
        super().__init__()
        self.sizes = partition_sizes(n_out, n_splits)
        self.parts = nn.ModuleList(MLP(n_in, n_out=size, **mlp_kwargs) for size in self.sizes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outs = [part(x) for part in self.parts]
        return outs[0] if len(outs) == 1 else torch.cat(outs, dim=-1)


def dgex_init(mlp: MLP, output_range: float = 1e-4) -> None:
    """D-GEX's initialisation: hidden weights uniform in +-sqrt(6 / (fan_in + fan_out)) (Glorot),
    output weights uniform in +-``output_range``, all biases zero."""
    *hidden, output = mlp.linears
    for layer in hidden:
        bound = (6.0 / (layer.in_features + layer.out_features)) ** 0.5
        nn.init.uniform_(layer.weight, -bound, bound)
    nn.init.uniform_(output.weight, -output_range, output_range)
    for layer in mlp.linears:
        nn.init.zeros_(layer.bias)
