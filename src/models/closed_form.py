"""Training plans fitted directly from the training split, without gradient descent (the baselines)."""

from __future__ import annotations

import torch

from src.common.errors import InputError
from src.data.batches import TensorBatches
from src.models.base import ExpressionModel


class ClosedFormModel(ExpressionModel):
    """Fitted once from the whole training split (hyperparameters chosen on the validation split).

    :meth:`fit` gets the DataModule's whole training and validation splits (``datamodule.split_data``)
    when fitting starts (before Lightning's sanity check); every DDP process fits the same model from
    the same data, so no communication is needed. Lightning then takes a single no-op training step, and the result is checkpointed, validated and
    tested like every network.
    """

    def __init__(self, n_inputs: int, n_outputs: int, **kwargs):
        super().__init__(n_inputs, n_outputs, **kwargs)
        self.automatic_optimization = False

    def fit(self, train: TensorBatches, val: TensorBatches) -> None:
        """Fit the model on ``train``, choosing hyperparameters by the MAE on ``val``."""
        raise NotImplementedError

    def on_fit_end(self) -> None:
        bar = self.__dict__.pop("_bar_hidden", None)
        if bar is not None:
            bar.enable()

    def on_fit_start(self) -> None:
        # No progress bar for fitting: one no-op step would show as 0.00it/s (validate/test keep theirs).
        bar = self.trainer.progress_bar_callback
        if bar is not None and not bar.is_disabled:
            bar.disable()
            self.__dict__["_bar_hidden"] = bar
        train, val = whole_splits(self)
        with torch.no_grad():
            self.fit(train, val)

    def on_train_batch_start(self, batch, batch_idx):
        return -1 if batch_idx > 0 else None  # one step is all it takes

    def training_step(self, batch, batch_idx):
        self.log_selected()
        self.optimizers().step()  # counted as the one training step (checkpointing needs a step)
        self.trainer.should_stop = True

    def configure_optimizers(self):
        """A no-op optimiser (zero rate, no gradients): Lightning only counts the step it takes."""
        return torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.0)


def whole_splits(module) -> tuple[TensorBatches, TensorBatches]:
    """The whole training and validation splits of ``module``'s DataModule, on its device: what a closed-form
    fit reads (every DDP process holds them entirely, so each computes the same solution)."""
    datamodule = module.trainer.datamodule
    if datamodule is None or not hasattr(datamodule, "split_data"):
        raise InputError(f"{type(module).__name__} is fitted in closed form from the DataModule's whole training "
                         "split: fit it with a datamodule (src.train does)")
    return tuple(
        TensorBatches(*(t.to(module.device) for t in (s.landmarks, s.targets)))
        for s in (datamodule.split_data("train"), datamodule.split_data("val"))
    )


def chunked_mae(predict, data: TensorBatches, chunk: int = 2048) -> float:
    """D-GEX MAE of ``predict(x)`` on ``data`` (mean over samples and genes), computed in chunks."""
    total = 0.0
    for start in range(0, len(data), chunk):
        x, y = data.landmarks[start : start + chunk], data.targets[start : start + chunk]
        total += float((predict(x) - y).abs().sum())
    return total / (len(data) * data.targets.shape[1])
