"""GGAN's discriminator: a network that tells real landmark/target pairs from predicted ones.

The generator is a plain :class:`~src.models.networks.mlp.MLP` (landmarks -> targets).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


class PairDiscriminator(nn.Module):
    """``D(x, y)``: the logit that ``y`` are the real targets of the landmarks ``x`` (rather than a prediction).

    An MLP over the concatenated profile ``[x, y]`` (``n_landmarks + n_targets`` inputs): ``widths`` hidden
    layers with LeakyReLU (slope ``slope``), optional dropout after each, and one output unit without an
    activation (the loss applies the sigmoid).
    """

    def __init__(self, n_landmarks: int, n_targets: int, widths: Sequence[int] = (512, 128),
                 dropout: float = 0.0, slope: float = 0.2):
        super().__init__()
        layers: list[nn.Module] = []
        sizes = [n_landmarks + n_targets, *widths]
        for a, b in zip(sizes[:-1], sizes[1:]):
            layers += [nn.Linear(a, b), nn.LeakyReLU(slope)]
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
        layers.append(nn.Linear(sizes[-1], 1))
        self.body = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """One logit per sample (shape ``(batch,)``)."""
        return self.body(torch.cat([x, y], dim=-1)).squeeze(-1)
