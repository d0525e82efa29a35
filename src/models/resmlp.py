"""ResMLP: a pre-norm residual MLP trained with AdamW, warm-up and cosine decay, optionally with an EMA of
its weights. A modern baseline that none of the gene-expression-inference papers here tried."""

from __future__ import annotations

import math

import torch
from torch.optim.lr_scheduler import LambdaLR
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from src.common.errors import InputError
from src.models.base import ExpressionModel
from src.models.networks.resmlp import ResidualMLP

EMA_PREFIX = "ema.module."


def warmup_cosine(step: int, warmup_steps: int, total_steps: int) -> float:
    """The learning-rate multiplier at optimiser step ``step`` (0-based) of ``total_steps``: linear warm-up
    to 1 over the first ``warmup_steps`` (``1 / warmup_steps`` at step 0, 1 at step ``warmup_steps - 1``),
    then a cosine from 1 (step ``warmup_steps``) towards 0 (reached at step ``total_steps``, one after
    the last)."""
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
    return 0.5 * (1.0 + math.cos(math.pi * progress))


def warmup_steps_of(fraction: float, total_steps: int) -> int:
    """Warm-up steps for a warm-up ``fraction`` of ``total_steps`` (at least one when the fraction is positive)."""
    return max(1, round(fraction * total_steps)) if fraction > 0 else 0


class ResMLP(ExpressionModel):
    """A residual MLP from landmarks to all targets in one network
    (:class:`~src.models.networks.resmlp.ResidualMLP`): input projection to ``width``, ``blocks`` pre-norm
    residual blocks ``x + Linear(act(Linear(LayerNorm(x))))`` with hidden width ``expansion * width`` and
    dropout, a final LayerNorm and a linear head.

    Training: AdamW (the optimiser config; weight decay on the weight matrices only, not on biases and
    LayerNorm parameters), the learning rate warmed up linearly over the first ``warmup`` fraction of the
    run's optimiser steps and then decayed along a cosine towards 0, stepped every optimiser step; the
    run's length is Lightning's ``trainer.estimated_stepping_batches`` (``trainer.max_epochs`` or
    ``max_steps``), so early stopping ends a run before the cosine reaches 0.

    With ``ema``, an exponential moving average of the weights (decay ``ema_decay`` per optimiser step,
    ``torch.optim.swa_utils.AveragedModel``) is kept beside them and is what the model predicts with
    outside training: validation (and so the choice of the best checkpoint), test, calibration,
    ``src.eval`` and ``src.predict``. Full checkpoints (``last.ckpt``, for resuming) hold both the
    trained and the averaged weights; weights-only ones (``best.ckpt``) hold the averaged weights once,
    as the network's.

    Defaults (the config): width 1,024, 3 blocks, expansion 2, GELU, dropout 0.1, AdamW lr 1e-3 with
    weight decay 0.01, 5% warm-up, EMA off (0.999 when on), squared error averaged over genes (``mse``,
    as E-GEX; ``loss=l1`` is the loss the later papers found better).

    Args:
        width, blocks, expansion, activation, dropout: the network's, see
            :class:`~src.models.networks.resmlp.ResidualMLP`.
        warmup: fraction of the optimiser steps spent warming the learning rate up (0 = none).
        ema: keep an exponential moving average of the weights and predict with it.
        ema_decay: its decay per optimiser step.
        **kwargs: optimizer and loss, see :class:`ExpressionModel` (no scheduler: this plan schedules).
    """

    def __init__(
        self,
        n_inputs: int,
        n_outputs: int,
        width: int = 1024,
        blocks: int = 3,
        expansion: int = 2,
        activation: str = "gelu",
        dropout: float = 0.1,
        warmup: float = 0.05,
        ema: bool = False,
        ema_decay: float = 0.999,
        **kwargs,
    ):
        super().__init__(n_inputs, n_outputs, **kwargs)
        if not 0.0 <= warmup < 1.0:
            raise InputError(f"model.warmup={warmup}: the warm-up is a fraction of the steps, in [0, 1)")
        if ema and not 0.0 < ema_decay < 1.0:
            raise InputError(f"model.ema_decay={ema_decay}: the EMA decay must be in (0, 1), e.g. model.ema_decay=0.999")
        if self.scheduler_factory is not None:
            raise InputError("model.scheduler: ResMLP schedules its learning rate itself (model.warmup, cosine decay); "
                             "set model.scheduler=null")
        self.net = ResidualMLP(n_inputs, n_outputs, width, blocks, expansion, activation, dropout)
        self.ema = None
        if ema:
            self.ema = AveragedModel(self.net, multi_avg_fn=get_ema_multi_avg_fn(ema_decay), use_buffers=True)
            self.ema.requires_grad_(False)  # updated by averaging, never by the optimiser (nor DDP)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The trained weights while training; the averaged ones (with ``ema``) everywhere else."""
        if self.ema is not None and not self.training:
            return self.ema(x)
        return self.net(x)

    def param_groups(self) -> list[dict]:
        """Weight matrices with the optimiser's weight decay; biases and LayerNorm parameters without."""
        decay, no_decay = [], []
        for p in self.net.parameters():
            if p.requires_grad:
                (decay if p.ndim >= 2 else no_decay).append(p)
        return [{"params": decay}, {"params": no_decay, "weight_decay": 0.0}]

    def configure_optimizers(self):
        optimizer = super().configure_optimizers()
        total = self.trainer.estimated_stepping_batches
        if not math.isfinite(total) or total < 1:
            raise InputError("ResMLP's learning-rate schedule needs the run's length: set trainer.max_epochs or trainer.max_steps")
        total = int(total)
        warmup = warmup_steps_of(self.hparams.warmup, total)

        # A plain function, so that a resumed run schedules by its own length (LambdaLR checkpoints only
        # the step count for it).
        def multiplier(step: int) -> float:
            return warmup_cosine(step, warmup, total)

        scheduler = LambdaLR(optimizer, multiplier)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step", "frequency": 1}}

    def optimizer_step(self, *args, **kwargs) -> None:
        super().optimizer_step(*args, **kwargs)
        if self.ema is not None:
            self.ema.update_parameters(self.net)

    # ----------------------------------------------------------------- the averaged weights in checkpoints
    def on_save_checkpoint(self, checkpoint: dict) -> None:
        super().on_save_checkpoint(checkpoint)
        if self.ema is not None and "optimizer_states" not in checkpoint:  # weights only: the averaged ones, once
            state = checkpoint["state_dict"]
            averaged = {k[len(EMA_PREFIX):]: v for k, v in state.items() if k.startswith(EMA_PREFIX)}
            checkpoint["state_dict"] = {
                k: averaged[k[len("net."):]] if k.startswith("net.") else v for k, v in state.items() if not k.startswith("ema.")
            }

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        super().on_load_checkpoint(checkpoint)
        state = checkpoint["state_dict"]
        if self.ema is not None and not any(k.startswith("ema.") for k in state):  # a weights-only checkpoint
            for k in [k for k in state if k.startswith("net.")]:
                state[EMA_PREFIX + k[len("net."):]] = state[k]
            state["ema.n_averaged"] = torch.tensor(1, dtype=torch.long)
