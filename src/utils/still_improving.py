"""Callbacks of the training configs (conf/callbacks/) that are about the run, not a model."""

from __future__ import annotations

import logging
import math

from lightning.pytorch.callbacks import Callback

log = logging.getLogger(__name__)


class StillImprovingWarning(Callback):
    """Warn when the best ``monitor`` value was reached in the last epoch of a run that ran to
    ``trainer.max_epochs``: the model was still improving, so more epochs would likely help."""

    def __init__(self, monitor: str = "val/mae"):
        self.monitor = monitor
        self.best, self.best_epoch = math.inf, -1

    def on_validation_end(self, trainer, pl_module) -> None:
        value = trainer.callback_metrics.get(self.monitor)
        if trainer.sanity_checking or value is None:
            return
        if float(value) < self.best:
            self.best, self.best_epoch = float(value), trainer.current_epoch

    def on_train_end(self, trainer, pl_module) -> None:
        ran = trainer.current_epoch  # epochs completed
        if trainer.max_epochs in (None, -1) or trainer.max_epochs < 3 or ran < trainer.max_epochs:
            return  # no epoch ceiling, a fitted-once baseline, or stopped early
        if self.best_epoch == ran - 1:
            log.warning(
                "still improving: the best %s (%.4f) came in the last epoch (%d of trainer.max_epochs=%d); "
                "raise trainer.max_epochs", self.monitor, self.best, ran, trainer.max_epochs,
            )
