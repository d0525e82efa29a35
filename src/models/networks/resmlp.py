"""A residual MLP with pre-norm blocks (the transformer's feed-forward block, without attention)."""

from __future__ import annotations

import torch
from torch import nn

from src.models.networks.mlp import activation


class ResidualBlock(nn.Module):
    """``x + Linear(k*d, d)(dropout(act(Linear(d, k*d)(LayerNorm(x)))))``."""

    def __init__(self, width: int, expansion: int = 2, activation_name: str = "gelu", dropout: float = 0.1):
        super().__init__()
        hidden = expansion * width
        self.norm = nn.LayerNorm(width)
        self.up = nn.Linear(width, hidden)
        self.act = activation(activation_name)
        self.drop = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.down = nn.Linear(hidden, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.down(self.drop(self.act(self.up(self.norm(x)))))


class ResidualMLP(nn.Module):
    """``n_in -> Linear -> blocks x ResidualBlock(width) -> LayerNorm -> Linear -> n_out``.

    Args:
        n_in, n_out: input and output sizes (landmarks, targets).
        width: the residual stream's width ``d``.
        blocks: number of residual blocks.
        expansion: each block's hidden width is ``expansion * width``.
        activation_name: the blocks' activation (gelu, silu, ...; see :mod:`src.models.networks.mlp`).
        dropout: rate on each block's hidden layer.
    """

    def __init__(
        self,
        n_in: int,
        n_out: int,
        width: int = 1024,
        blocks: int = 3,
        expansion: int = 2,
        activation_name: str = "gelu",
        dropout: float = 0.1,
    ):
        super().__init__()
        self.input = nn.Linear(n_in, width)
        self.blocks = nn.Sequential(*(ResidualBlock(width, expansion, activation_name, dropout) for _ in range(blocks)))
        self.norm = nn.LayerNorm(width)
        self.head = nn.Linear(width, n_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.norm(self.blocks(self.input(x))))
