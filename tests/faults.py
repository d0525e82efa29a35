"""Fault injection for reliability tests, added to a run through the config (never part of the product)."""

import os
import signal

from lightning.pytorch.callbacks import Callback


class KillAtStep(Callback):
    """SIGKILL this process right after optimisation step ``step`` (no cleanup, like an OOM kill or a lost node)."""

    def __init__(self, step: int):
        self.step = step

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if trainer.global_step == self.step:
            os.kill(os.getpid(), signal.SIGKILL)


class FailAtStep(Callback):
    """Raise an input error in process ``rank`` only, right after optimisation step ``step``: the other
    processes of a DDP run carry on into the next collective and wait there for this one."""

    def __init__(self, step: int, rank: int = 0, message: str = "injected: bad input found during training"):
        self.step, self.rank, self.message = step, rank, message

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if trainer.global_step == self.step and trainer.global_rank == self.rank:
            from src.common.errors import InputError

            raise InputError(self.message)


class StopAfterEpochs(Callback):
    """End fitting after ``epochs`` epochs, as if the job had been stopped there (it ends normally: the resume
    checkpoint is the one a stopped job leaves)."""

    def __init__(self, epochs: int):
        self.epochs = epochs

    def on_train_epoch_end(self, trainer, pl_module):
        if trainer.current_epoch + 1 == self.epochs:
            trainer.should_stop = True
