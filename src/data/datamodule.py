"""The one LightningDataModule every data set goes through."""

from __future__ import annotations

import logging

import lightning as L
import numpy as np
import torch

from src.data.batches import IndexBatchSampler, TensorBatches, index_loader
from src.data.transforms import permute_rows_, split_indices
from src.data.preprocessing import Preprocessing
from src.data.sources.base import ExpressionSource

log = logging.getLogger(__name__)


class ExpressionDataModule(L.LightningDataModule):
    """Split, standardise and batch the landmark/target matrices of any :class:`ExpressionSource`.

    Samples are split into train/val/test by a permutation seeded with ``split_seed``. Optionally each
    sample is quantile-normalised (rank-mapped) onto reference quantiles: the source's fixed reference
    if it has one (e.g. GEO's, for RNA-seq data), else the mean sorted profile of the *training*
    samples. Each gene is then standardised with the training split's mean and standard deviation
    only, so no validation or test statistic leaks into training. All splits live in memory as float32
    tensors and batches are cut by index (see :mod:`src.data.batches`).

    Args:
        source: where the data comes from (synthetic, a GCTX file, ...).
        split: train, val and test fractions, or sample counts (see :func:`~src.data.transforms.split_sizes`).
        split_seed: seed of the sample permutation (fixed, so a checkpoint's test split can be rebuilt).
        batch_size: global training batch size (divided among DDP ranks).
        eval_batch_size: batch size for validation, test and prediction.
        max_samples: keep only the first N samples of the source (quick runs).
        max_targets: keep only the first N target genes of the source (quick runs).
        quantile_normalize: rank-map every sample onto reference quantiles before standardising.
    """

    def __init__(
        self,
        source: ExpressionSource,
        split: tuple[float, float, float] = (0.8, 0.1, 0.1),
        split_seed: int = 0,
        batch_size: int = 200,
        eval_batch_size: int = 1000,
        max_samples: int | None = None,
        max_targets: int | None = None,
        quantile_normalize: bool = False,
    ):
        super().__init__()
        self.source = source
        self.split = tuple(split)
        self.split_seed = split_seed
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size
        self.max_samples = max_samples
        self.max_targets = max_targets
        self.quantile_normalize = quantile_normalize
        self.preprocessing: Preprocessing | None = None
        self.splits: dict[str, TensorBatches] = {}
        self.sample_ids: dict[str, list[str]] = {}

    def prepare_data(self) -> None:
        self.source.prepare(self.max_samples, self.max_targets)

    def setup(self, stage: str | None = None) -> None:
        """Load, split and standardise once; later calls (Lightning calls it per stage) are free."""
        if self.splits:
            return
        data = self.source.load(self.max_samples, self.max_targets)
        parts = split_indices(len(data.sample_ids), self.split, self.split_seed)
        # Reorder the rows in place to train | val | test, so every split is a view, not a copy.
        order = np.concatenate(parts)
        for matrix in (data.landmarks, data.targets):
            permute_rows_(matrix, order)
        sample_ids = [data.sample_ids[i] for i in order]
        bounds = np.cumsum([0, *map(len, parts)])
        rows = {name: slice(bounds[k], bounds[k + 1]) for k, name in enumerate(("train", "val", "test"))}
        train = np.arange(len(parts[0]))
        self.preprocessing = Preprocessing.fit(data, train, self.quantile_normalize)
        for name, part in rows.items():
            self.splits[name] = TensorBatches(torch.from_numpy(data.landmarks[part]), torch.from_numpy(data.targets[part]))
            self.sample_ids[name] = sample_ids[part]
        log.info(
            "Data: %d landmarks, %d targets; %d train / %d val / %d test samples",
            len(data.landmark_ids), len(data.target_ids), *map(len, parts),
        )

    @property
    def n_landmarks(self) -> int:
        return len(self._space().landmark_ids)

    @property
    def n_targets(self) -> int:
        return len(self._space().target_ids)

    def split_data(self, name: str) -> TensorBatches:
        """A whole split (``train``, ``val`` or ``test``) in memory, standardised: what the closed-form
        baselines fit on and D-GEX's learning-rate rule measures (run :meth:`setup` first)."""
        if name not in self.splits:
            raise RuntimeError(f"no {name!r} split: call setup() first (splits: {sorted(self.splits) or 'none yet'})")
        return self.splits[name]

    def _space(self) -> Preprocessing:
        if self.preprocessing is None:
            raise RuntimeError("call setup() before asking for the data's dimensions")
        return self.preprocessing

    def _rank_world(self) -> tuple[int, int]:
        trainer = self.trainer
        return (trainer.global_rank, trainer.world_size) if trainer is not None else (0, 1)

    def _loader(self, name: str, train: bool):
        rank, world = self._rank_world()
        data = self.splits[name]
        batch = self.batch_size if train else self.eval_batch_size
        if train and len(data) < batch:
            batch = max(world, len(data) - len(data) % world)
            log.warning("Only %d training samples: using a global batch of %d", len(data), batch)
        seed = self.split_seed + (torch.initial_seed() if train else 0)
        sampler = IndexBatchSampler(len(data), batch, shuffle=train, seed=seed % 2**31, rank=rank, world=world)
        return index_loader(data, sampler)

    def train_dataloader(self):
        return self._loader("train", train=True)

    def val_dataloader(self):
        return self._loader("val", train=False)

    def test_dataloader(self):
        return self._loader("test", train=False)
