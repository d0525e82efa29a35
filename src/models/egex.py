"""E-GEX (Bhukya & Ashok, IAJIT 2020): an autoencoder of the targets plus an MLP into its latent space."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F

from src.common.config_checks import WIDTHS, check_table
from src.common.errors import InputError
from src.models.base import ExpressionModel
from src.models.networks.autoencoder import Autoencoder, LatentRegressor
from src.models.networks.mlp import MLP

STAGES = ("autoencoder", "latent", "finetune")


def stage_epochs(fractions: Mapping[str, float], max_epochs: int) -> dict[str, int]:
    """Split ``max_epochs`` among the stages in proportion to ``fractions``.

    Stage boundaries are the rounded cumulative shares; a stage with a positive share still gets at
    least one epoch (taken from the longest stage) while there are epochs to give, and a stage with a
    zero share gets none.
    """
    unknown = set(fractions) - set(STAGES)
    if unknown:
        raise InputError(f"model.stages: unknown E-GEX stage(s) {sorted(unknown)}; the stages are {', '.join(STAGES)}")
    shares = [float(fractions.get(s, 0.0)) for s in STAGES]
    if sum(shares) <= 0 or min(shares) < 0:
        raise InputError(f"model.stages: E-GEX stage fractions must be non-negative with a positive sum, got {dict(fractions)}; "
                         "e.g. model.stages.finetune=1.0")
    bounds = [round(max_epochs * sum(shares[: i + 1]) / sum(shares)) for i in range(len(STAGES))]
    epochs = [b - a for a, b in zip([0, *bounds[:-1]], bounds)]
    for i, share in enumerate(shares):
        if share > 0 and epochs[i] == 0 and max(epochs) > 1:
            epochs[epochs.index(max(epochs))] -= 1
            epochs[i] = 1
    return dict(zip(STAGES, epochs))


class EGEX(ExpressionModel):
    """E-GEX: predicts all targets in one network, ``decoder(mlp(landmarks))``, trained in three stages.

    1. ``autoencoder``: the target autoencoder learns to reconstruct training targets (optionally denoising).
    2. ``latent``: the MLP learns to map landmarks onto the (frozen) encoder's codes of the targets.
    3. ``finetune``: MLP and decoder are trained end to end on the targets.

    Stage lengths are fractions of ``trainer.max_epochs`` (``stages``), so one run trains all three and
    a shorter run keeps their proportions; a zero fraction skips a stage (``finetune: 1`` alone trains
    the composite end to end, the configured default). Throughout, ``val/mae`` measures the composite's prediction.
    ``train/loss`` is the current stage's loss; ``train/stage`` its index.

    Args:
        ae_widths: autoencoder hidden widths (encoder; the decoder mirrors them).
        latent: latent code size.
        mlp_widths: hidden widths of the landmark-to-latent MLP.
        activation, dropout, norm: as in :class:`~src.models.networks.mlp.MLP`, for both parts.
        input_noise: Gaussian noise sd added to targets while pre-training the autoencoder.
        stages: fractions of the epochs given to each stage.
    """

    config_checks = check_table(("ae_widths", *WIDTHS, "[1024]"), ("mlp_widths", *WIDTHS, "[1024,1024]"))

    def __init__(
        self,
        n_inputs: int,
        n_outputs: int,
        ae_widths: Sequence[int] = (1024,),
        latent: int = 128,
        mlp_widths: Sequence[int] = (1024, 1024),
        activation: str = "tanh",
        dropout: float = 0.0,
        norm: str | None = None,
        input_noise: float = 0.0,
        stages: Mapping[str, float] | None = None,
        **kwargs,
    ):
        super().__init__(n_inputs, n_outputs, **kwargs)
        self.stage_fractions = dict(stages or {"autoencoder": 0.3, "latent": 0.2, "finetune": 0.5})
        stage_epochs(self.stage_fractions, 3)  # validate early
        pretraining = any(self.stage_fractions.get(s, 0) > 0 for s in ("autoencoder", "latent"))
        layers = dict(activation_name=activation, dropout=dropout, norm=norm)
        autoencoder = Autoencoder(n_outputs, list(ae_widths), latent, **layers)
        self.net = LatentRegressor(MLP(n_inputs, list(mlp_widths), latent, **layers), autoencoder.decoder)
        # The encoder serves the pre-training stages only; trained end to end, E-GEX has none.
        self.encoder = autoencoder.encoder if pretraining else None
        self.has_unused_parameters = pretraining  # each stage trains a part of the parameters

    @property
    def stage(self) -> str:
        """The stage the current epoch belongs to."""
        max_epochs = self.trainer.max_epochs
        if max_epochs is None or max_epochs < 1:
            raise InputError("E-GEX needs trainer.max_epochs >= 1 to lay out its training stages, e.g. trainer.max_epochs=10")
        epoch = self.current_epoch
        for name, n in stage_epochs(self.stage_fractions, max_epochs).items():
            if epoch < n:
                return name
            epoch -= n
        return STAGES[-1]

    def on_train_epoch_start(self) -> None:
        super().on_train_epoch_start()
        self.log("train/stage", float(STAGES.index(self.stage)), on_step=False, on_epoch=True)

    def training_loss(self, batch) -> tuple[torch.Tensor, torch.Tensor]:
        x, y = batch
        encoder, decoder, mlp = self.encoder, self.net.decoder, self.net.mlp
        stage = self.stage
        if stage == "autoencoder":
            noisy = y + self.hparams.input_noise * torch.randn_like(y) if self.hparams.input_noise > 0 else y
            pred = decoder(encoder(noisy))
            return self.criterion(pred, y), pred
        if stage == "latent":
            with torch.no_grad():
                encoder.eval()
                code = encoder(y)
                encoder.train()
            z = mlp(x)
            with torch.no_grad():
                pred = decoder(z)
            return F.mse_loss(z, code), pred
        pred = self.net(x)
        return self.criterion(pred, y), pred
