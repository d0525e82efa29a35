"""A deep autoencoder of expression profiles and the E-GEX composite built on it."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from src.models.networks.mlp import MLP


def mirrored_decoder(n_genes: int, widths: Sequence[int], latent: int, **mlp_kwargs) -> MLP:
    """The decoder of an autoencoder whose encoder is ``n_genes -> widths -> latent``:
    ``latent -> widths[::-1] -> n_genes``."""
    return MLP(latent, list(widths)[::-1], n_genes, **mlp_kwargs)


class Autoencoder(nn.Module):
    """``encoder: n_genes -> widths -> latent`` and the mirrored ``decoder: latent -> widths[::-1] -> n_genes``.

    The latent code is linear (no activation), so the decoder can be driven by any regressor.
    """

    def __init__(self, n_genes: int, widths: Sequence[int], latent: int, **mlp_kwargs):
        super().__init__()
        self.encoder = MLP(n_genes, list(widths), latent, **mlp_kwargs)
        self.decoder = mirrored_decoder(n_genes, widths, latent, **mlp_kwargs)

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(y))


class LatentRegressor(nn.Module):
    """E-GEX's network: an MLP from landmarks into an autoencoder's latent space, then its decoder.

    Predicts all targets at once: ``decoder(mlp(landmarks))``.
    """

    def __init__(self, mlp: MLP, decoder: MLP):
        super().__init__()
        self.mlp = mlp
        self.decoder = decoder

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.mlp(x))
