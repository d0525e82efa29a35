"""The one LightningDataModule every data set goes through."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import lightning as L
import numpy as np
import torch

from src.data.batches import IndexBatchSampler, TensorBatches, index_loader
from src.data.preprocess import Standardizer, permute_rows_, rank_map, reference_quantiles, split_indices
from src.data.sources.base import ExpressionSource
from src.common.progress import progress_bar

log = logging.getLogger(__name__)


@dataclass
class GeneSpace:
    """What a trained model must remember about its data: gene ids and training-split statistics.

    Saved inside every checkpoint (plain lists and tensors, loadable with ``weights_only=True``).
    """

    landmark_ids: list[str]
    target_ids: list[str]
    landmark_scaler: Standardizer
    target_scaler: Standardizer
    info: dict = field(default_factory=dict)
    # Quantile normalisation's reference (landmarks and targets ranked together), if the data used one,
    # and the mean sorted landmark profile after it (to rank-map landmark-only profiles at prediction).
    reference: np.ndarray | None = None
    landmark_reference: np.ndarray | None = None

    def to_dict(self) -> dict:
        return {
            "landmark_ids": list(self.landmark_ids),
            "target_ids": list(self.target_ids),
            "landmark_mean": torch.from_numpy(self.landmark_scaler.mean),
            "landmark_std": torch.from_numpy(self.landmark_scaler.std),
            "target_mean": torch.from_numpy(self.target_scaler.mean),
            "target_std": torch.from_numpy(self.target_scaler.std),
            "eps": self.landmark_scaler.eps,
            "info": dict(self.info),
            "reference": _tensor(self.reference),
            "landmark_reference": _tensor(self.landmark_reference),
        }

    @classmethod
    def from_dict(cls, d: dict) -> "GeneSpace":
        return cls(
            landmark_ids=list(d["landmark_ids"]),
            target_ids=list(d["target_ids"]),
            landmark_scaler=Standardizer(d["landmark_mean"].numpy(), d["landmark_std"].numpy(), d["eps"]),
            target_scaler=Standardizer(d["target_mean"].numpy(), d["target_std"].numpy(), d["eps"]),
            info=dict(d.get("info", {})),
            reference=None if d.get("reference") is None else d["reference"].numpy(),
            landmark_reference=None if d.get("landmark_reference") is None else d["landmark_reference"].numpy(),
        )


def _tensor(values: np.ndarray | None) -> torch.Tensor | None:
    return None if values is None else torch.from_numpy(np.asarray(values))


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
        split: train, val and test fractions, or sample counts (see :func:`~src.data.preprocess.split_sizes`).
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
        self.gene_space: GeneSpace | None = None
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
        reference = landmark_reference = None
        if self.quantile_normalize:
            reference = self._quantile_normalize(data, train)
            landmark_reference = reference_quantiles(data.landmarks, train)
        lm = Standardizer.fit(data.landmarks, train)
        tg = Standardizer.fit(data.targets, train)
        self.gene_space = GeneSpace(data.landmark_ids, data.target_ids, lm, tg, data.info, reference, landmark_reference)
        lm.transform_(data.landmarks)
        tg.transform_(data.targets)
        for name, part in rows.items():
            self.splits[name] = TensorBatches(torch.from_numpy(data.landmarks[part]), torch.from_numpy(data.targets[part]))
            self.sample_ids[name] = sample_ids[part]
        log.info(
            "Data: %d landmarks, %d targets; %d train / %d val / %d test samples",
            len(data.landmark_ids), len(data.target_ids), *map(len, parts),
        )

    @staticmethod
    def _quantile_normalize(data, train: np.ndarray) -> np.ndarray:
        """Rank-map every sample (landmarks and targets together) in place; returns the reference used."""
        n_lm = data.landmarks.shape[1]

        def joined(rows) -> np.ndarray:
            return np.hstack([data.landmarks[rows], data.targets[rows]])

        reference = data.reference
        if reference is None:
            reference = np.zeros(n_lm + data.targets.shape[1])
            with progress_bar("Quantile reference of the training samples", len(train)) as advance:
                for start in range(0, len(train), 4096):
                    rows = train[start : start + 4096]
                    reference += reference_quantiles(joined(rows)) * len(rows)
                    advance(len(rows))
            reference /= len(train)
        with progress_bar("Quantile normalisation", len(data.sample_ids)) as advance:
            for start in range(0, len(data.sample_ids), 4096):
                rows = slice(start, start + 4096)
                mapped = rank_map(joined(rows), reference)
                data.landmarks[rows], data.targets[rows] = mapped[:, :n_lm], mapped[:, n_lm:]
                advance(len(mapped))
        return reference

    @property
    def n_landmarks(self) -> int:
        return len(self._space().landmark_ids)

    @property
    def n_targets(self) -> int:
        return len(self._space().target_ids)

    def _space(self) -> GeneSpace:
        if self.gene_space is None:
            raise RuntimeError("call setup() before asking for the data's dimensions")
        return self.gene_space

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
