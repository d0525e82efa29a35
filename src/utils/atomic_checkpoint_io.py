"""Checkpoints that are never half-written: saved under a temporary name, then renamed into place."""

from __future__ import annotations

from lightning.pytorch.plugins.io import TorchCheckpointIO

from src.common.atomic import atomic_path


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning's checkpoint saving, made atomic: a job killed while saving leaves the previous
    ``last.ckpt`` intact (and at most a ``.last.ckpt.*.tmp`` file, which nothing reads)."""

    def save_checkpoint(self, checkpoint, path, storage_options=None) -> None:
        with atomic_path(path) as tmp:
            super().save_checkpoint(checkpoint, tmp, storage_options)
