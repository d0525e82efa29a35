"""Lightning callbacks that training plans ask for (through ``configure_callbacks``).

- :class:`RandomStateCheckpoint`: every plan; the random state travels with each checkpoint.
- :class:`DGEXLearningRateDecay`: D-GEX's learning-rate rule (Chen et al., Bioinformatics 2016).
"""

from __future__ import annotations

import torch
from lightning.pytorch.callbacks import Callback


class RandomStateCheckpoint(Callback):
    """Save the torch (and CUDA) random state in each checkpoint and restore it when training resumes,
    so that a resumed run draws the same dropout masks and noise as an uninterrupted one."""

    def state_dict(self) -> dict:
        cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []
        return {"torch": torch.get_rng_state(), "cuda": cuda}

    def load_state_dict(self, state_dict: dict) -> None:
        """Called by Lightning when a fit resumes from a checkpoint (never for validate/test/predict)."""
        torch.set_rng_state(state_dict["torch"])
        cuda = state_dict.get("cuda") or []
        if torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(cuda)


def decayed(rates: list[float], rose: bool, factor: float, min_lr: float) -> list[float]:
    """D-GEX's decay: when the monitored MAE rose, scale all rates so the first (base) rate becomes
    ``max(base * factor, min_lr)``; the ratios between layer groups are kept."""
    if not rose or not rates:
        return list(rates)
    ratio = max(rates[0] * factor, min_lr) / rates[0]
    return [rate * ratio for rate in rates]


class DGEXLearningRateDecay(Callback):
    """D-GEX's learning-rate rule: after each training epoch, the MAE on a fixed random subset of
    ``samples`` training samples is measured and, whenever it went up, every learning rate is
    multiplied by ``factor`` (never taking the base rate below ``min_lr``).

    The subset comes from the DataModule (``datamodule.split_data("train")``), drawn once with its own
    seeded generator; the last MAE is part of the callback's checkpointed state, so a resumed run
    decides as an uninterrupted one would.
    """

    def __init__(self, factor: float = 0.9, samples: int = 5000, min_lr: float = 1e-5, chunk: int = 1000):
        self.factor, self.samples, self.min_lr, self.chunk = factor, samples, min_lr, chunk
        self.last_mae: float | None = None
        self._subset: tuple[torch.Tensor, torch.Tensor] | None = None

    def state_dict(self) -> dict:
        return {"last_mae": self.last_mae}

    def load_state_dict(self, state_dict: dict) -> None:
        self.last_mae = state_dict.get("last_mae")

    def _training_subset(self, trainer, device) -> tuple[torch.Tensor, torch.Tensor]:
        if self._subset is None:
            train = trainer.datamodule.split_data("train")
            n = min(self.samples, len(train))
            idx = torch.randperm(len(train), generator=torch.Generator().manual_seed(0))[:n]
            self._subset = tuple(t.to(device) for t in train[idx])
        return self._subset

    def subset_mae(self, trainer, model) -> float:
        """MAE of ``model`` on the fixed training subset, chunk by chunk (never all predictions at once)."""
        x, y = self._training_subset(trainer, model.device)
        was_training = model.training
        model.eval()
        with torch.no_grad():
            total = sum(float((model(xb) - yb).abs().sum()) for xb, yb in zip(x.split(self.chunk), y.split(self.chunk)))
        model.train(was_training)
        return total / y.numel()

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        if self.factor >= 1.0:
            return
        mae = self.subset_mae(trainer, pl_module)
        rose = self.last_mae is not None and mae > self.last_mae
        for optimizer in trainer.optimizers:
            rates = decayed([g["lr"] for g in optimizer.param_groups], rose, self.factor, self.min_lr)
            for group, rate in zip(optimizer.param_groups, rates):
                group["lr"] = rate
        self.last_mae = mae
        pl_module.log("train/subset_mae", mae, on_epoch=True, sync_dist=True)
