"""Batches cut by index, from tensors held in memory (:class:`TensorBatches`) or from a split stored on disk
(:class:`DiskBatches`): no per-sample ``__getitem__``, no collation.

``data.batch_size`` is the *global* batch: under DDP every rank takes its share of each global batch,
so one device and N devices see the same batches and, with loss means over the batch, the same steps.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from src.common.errors import InputError
from src.data.rowfile import RowFile


class TensorBatches(Dataset):
    """Index with a tensor of sample indices; returns ``(landmarks[idx], targets[idx])``, and
    ``deployed[idx]`` third when the split has landmarks preprocessed as ``src.predict`` does them
    (quantile-normalised data: rank-mapped alone, not together with the targets)."""

    def __init__(self, landmarks: torch.Tensor, targets: torch.Tensor, deployed: torch.Tensor | None = None):
        self.landmarks, self.targets, self.deployed = landmarks, targets, deployed

    def __len__(self) -> int:
        return len(self.landmarks)

    @property
    def nbytes(self) -> int:
        """Bytes of all the split's tensors."""
        tensors = [self.landmarks, self.targets] + ([] if self.deployed is None else [self.deployed])
        return sum(t.numel() * t.element_size() for t in tensors)

    def to(self, device: torch.device) -> TensorBatches:
        """The same split with its tensors on ``device`` (a copy; this one is unchanged)."""
        move = lambda t: None if t is None else t.to(device)  # noqa: E731
        return TensorBatches(move(self.landmarks), move(self.targets), move(self.deployed))

    def __getitem__(self, idx: torch.Tensor) -> tuple[torch.Tensor, ...]:
        idx = idx.to(self.landmarks.device, non_blocking=True)  # no-op on the host
        if self.deployed is None:
            return self.landmarks[idx], self.targets[idx]
        return self.landmarks[idx], self.targets[idx], self.deployed[idx]

    @property
    def deployed_landmarks(self) -> torch.Tensor:
        """The network inputs of the deployed path (the D-GEX-protocol inputs where the two agree)."""
        return self.landmarks if self.deployed is None else self.deployed

    def deployed_rows(self, index: np.ndarray) -> torch.Tensor:
        """Rows ``index`` of :attr:`deployed_landmarks` (a sample of a large split, read without the rest)."""
        return self.deployed_landmarks[torch.as_tensor(np.asarray(index, dtype=np.int64))]


class DiskBatches(Dataset):
    """A split stored on disk (:mod:`src.data.disk_splits`), with :class:`TensorBatches`'s interface.

    A batch (an index tensor) is read by rows through the page cache (:class:`~src.data.rowfile.RowFile`), in
    ascending file order, into fresh tensors in the order asked: the batches, and so the training steps, are
    those of the in-memory path. ``landmarks``, ``targets`` and ``deployed`` are the whole split as tensors over a
    memory map, for the code that needs it at once (closed-form fits, calibration, evaluation): the pages it
    touches count in the process's resident memory, so batches never go through them.
    """

    def __init__(self, landmarks: RowFile, targets: RowFile, deployed: RowFile | None = None):
        self.files = (landmarks, targets) + (() if deployed is None else (deployed,))
        self._whole: dict[int, torch.Tensor] = {}

    def __len__(self) -> int:
        return len(self.files[0])

    @property
    def nbytes(self) -> int:
        return sum(f.nbytes for f in self.files)

    def __getitem__(self, idx: torch.Tensor) -> tuple[torch.Tensor, ...]:
        index = np.asarray(idx.cpu() if isinstance(idx, torch.Tensor) else idx)
        return tuple(torch.from_numpy(f.take(index)) for f in self.files)

    def _tensor(self, i: int) -> torch.Tensor:
        if i not in self._whole:
            self._whole[i] = torch.from_numpy(self.files[i].memmap())
        return self._whole[i]

    @property
    def landmarks(self) -> torch.Tensor:
        return self._tensor(0)

    @property
    def targets(self) -> torch.Tensor:
        return self._tensor(1)

    @property
    def deployed(self) -> torch.Tensor | None:
        return self._tensor(2) if len(self.files) > 2 else None

    @property
    def deployed_landmarks(self) -> torch.Tensor:
        return self.landmarks if self.deployed is None else self.deployed

    def deployed_rows(self, index: np.ndarray) -> torch.Tensor:
        """Rows ``index`` of :attr:`deployed_landmarks`, read by rows (nothing of the rest is mapped)."""
        return torch.from_numpy(self.files[-1 if len(self.files) > 2 else 0].take(np.asarray(index)))

    def __getstate__(self):  # pickled (DDP spawn): without the memory maps
        return {"files": self.files, "_whole": {}}


class IndexBatchSampler(Sampler[torch.Tensor]):
    """Yield this rank's index tensor of each batch.

    Training (``shuffle=True``): a permutation seeded by ``seed + epoch`` is cut into global batches
    (an incomplete last batch is dropped, so every rank takes the same number of steps), and rank ``r``
    of ``world`` takes slice ``r`` of each. Evaluation (``shuffle=False``): rank ``r`` takes the
    ``r``-th contiguous share of the samples, every sample exactly once across ranks, in batches of
    ``batch_size`` per rank.
    """

    def __init__(self, n: int, batch_size: int, *, shuffle: bool, seed: int = 0, rank: int = 0, world: int = 1):
        if shuffle and batch_size % world:
            raise InputError(f"data.batch_size={batch_size} (global) must be divisible by the {world} devices")
        self.n, self.batch_size, self.shuffle, self.seed = n, batch_size, shuffle, seed
        self.rank, self.world, self.epoch = rank, world, 0

    def set_epoch(self, epoch: int) -> None:
        """Called by Lightning at every epoch start, so each epoch has its own shuffle."""
        self.epoch = epoch

    def _train_batches(self):
        order = torch.randperm(self.n, generator=torch.Generator().manual_seed(self.seed + self.epoch))
        local = self.batch_size // self.world
        for start in range(0, self.n - self.batch_size + 1, self.batch_size):
            yield order[start + self.rank * local : start + (self.rank + 1) * local]

    def _eval_batches(self):
        lo, hi = self.n * self.rank // self.world, self.n * (self.rank + 1) // self.world
        for start in range(lo, hi, self.batch_size):
            yield torch.arange(start, min(start + self.batch_size, hi))

    def __iter__(self):
        return self._train_batches() if self.shuffle else self._eval_batches()

    def __len__(self) -> int:
        if self.shuffle:
            return self.n // self.batch_size
        share = self.n * (self.rank + 1) // self.world - self.n * self.rank // self.world
        return math.ceil(share / self.batch_size)


def index_loader(dataset: TensorBatches, sampler: IndexBatchSampler) -> DataLoader:
    """A DataLoader that hands each index tensor straight to the dataset (``batch_size=None``)."""
    return DataLoader(dataset, sampler=sampler, batch_size=None, num_workers=0)
