"""A deep autoencoder of the target genes, trained on its own (E-GEX's first stage, as a model)."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from src.models.base import ExpressionModel
from src.models.networks.autoencoder import Autoencoder


class TargetAutoencoder(ExpressionModel):
    """Reconstructs the standardised target profile from itself through a ``latent``-sized bottleneck.

    Its metrics are reconstruction errors of the targets: the error E-GEX would reach with a perfect
    landmark-to-latent regressor, i.e. how much the bottleneck alone costs. It reads targets, not
    landmarks, so it cannot predict from landmark data.

    Args:
        widths: encoder hidden widths (the decoder mirrors them).
        latent: size of the latent code.
        activation, dropout, norm: as in :class:`~src.models.networks.mlp.MLP`.
        input_noise: standard deviation of Gaussian noise added to the input while training (denoising).
    """

    def __init__(
        self,
        n_inputs: int,
        n_outputs: int,
        widths: Sequence[int] = (1024,),
        latent: int = 128,
        activation: str = "tanh",
        dropout: float = 0.0,
        norm: str | None = None,
        input_noise: float = 0.0,
        **kwargs,
    ):
        super().__init__(n_inputs, n_outputs, **kwargs)
        self.net = Autoencoder(
            n_outputs, list(widths), latent, activation_name=activation, dropout=dropout, norm=norm
        )

    predicts_from_landmarks = False

    def model_input(self, batch) -> torch.Tensor:
        y = batch[1]
        if self.training and self.hparams.input_noise > 0:
            y = y + self.hparams.input_noise * torch.randn_like(y)
        return y
