"""Keep the terminal to what matters: third-party tips, deprecation notices of our dependencies' own
internals and W&B's run summary are dropped; our messages, warnings and errors stay."""

from __future__ import annotations

import logging
import os
import warnings

# Lightning's advertisements for its cloud products, logged as info on every fit.
_TIPS = ("💡 Tip:",)


class _DropTips(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(_TIPS)


def quiet_third_party() -> None:
    """Drop Lightning's product tips, its torch ``_pytree`` deprecation warning (an internal call of
    Lightning, nothing a user can act on) and its warning about epochs shorter than the logging interval,
    and let W&B print no run history or summary (``WANDB_SILENT``, unless the user set it). Idempotent;
    process-wide, so called by the command-line entry points."""
    for name in ("lightning.pytorch.utilities.rank_zero", "lightning.fabric.utilities.rank_zero"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, _DropTips) for f in logger.filters):
            logger.addFilter(_DropTips())
    warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\)` is deprecated.*")
    # Epochs shorter than trainer.log_every_n_steps: the epoch's train/loss and train/mae are logged all
    # the same (from sums kept on the device); the interval only spaces the per-step read-backs out.
    warnings.filterwarnings("ignore", message=r"The number of training batches \(\d+\) is smaller than the logging interval")
    os.environ.setdefault("WANDB_SILENT", "true")
