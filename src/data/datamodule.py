"""The one LightningDataModule every data set goes through."""

from __future__ import annotations

import logging
from pathlib import Path

import lightning as L
import numpy as np
import torch

from src.common.config_checks import check_table, integer, list_of, number, one_of, optional, positive_int
from src.common.errors import InputError
from src.data.batches import IndexBatchSampler, TensorBatches, index_loader
from src.data.disk_splits import build_or_open, choose_storage
from src.data.transforms import fold_indices, permute_rows_, split_indices
from src.data.preprocessing import Preprocessing
from src.data.sources.base import ExpressionData, ExpressionSource

log = logging.getLogger(__name__)

SPLITS = ("train", "val", "calibration", "test")
#: ``on_device=auto`` holds a split on the accelerator when it takes at most this share of its free memory.
ON_DEVICE_SHARE = 0.25
MIN_CALIBRATION = 10  # split conformal at 90% needs at least 9 samples for a finite interval


def calibration_size(n: int, n_train: int, calibration: float) -> int:
    """How many of the ``n_train`` training-part samples (of ``n``) the calibration split takes."""
    if calibration < 0:
        raise InputError(f"data.calibration={calibration}: expected a fraction in [0, 1) or a sample count >= 0")
    if calibration == 0:
        return 0
    size = int(round(calibration * n)) if calibration < 1 else int(calibration)
    if n_train >= 4 * MIN_CALIBRATION:
        size = max(size, MIN_CALIBRATION)
    if size >= n_train:
        raise InputError(f"data.calibration={calibration}: {size} calibration samples leave no training samples of {n_train}")
    return size


MIN_SPLIT = 2  # samples in each of train, val and test: a Pearson correlation and an MAE need two


def check_split_sizes(sizes: dict[str, int], n: int, max_samples: int | None = None) -> None:
    """Refuse splits too small to train or measure anything (every metric would be NaN and the run would
    look like it succeeded), naming the sizes and the setting that makes them."""
    small = [name for name in ("train", "val", "test") if sizes[name] < MIN_SPLIT]
    if small:
        shown = " / ".join(f"{sizes[name]} {name}" for name in ("train", "val", "calibration", "test"))
        fix = ("keep more samples, e.g. data.max_samples=null" if max_samples and max_samples <= n
               else "a cohort of a few dozen samples at least, or larger split fractions (data.split)")
        raise InputError(f"data: {n} samples split into {shown}: too few in {', '.join(small)} (at least {MIN_SPLIT} "
                         f"each: metrics need two samples); expected {fix}")


class ExpressionDataModule(L.LightningDataModule):
    """Split, standardise and batch the landmark/target matrices of any :class:`ExpressionSource`.

    Samples are split into train/val/test by a permutation seeded with ``split_seed``; a calibration
    split (``calibration``) is then carved from the training part: held-out samples that neither fit
    the weights nor choose the checkpoint, on which reliability and prediction intervals are
    calibrated (:mod:`src.models.trust`). Optionally each
    sample is quantile-normalised (rank-mapped) onto reference quantiles: the source's fixed reference
    if it has one (e.g. GEO's, for RNA-seq data), else the mean sorted profile of the *training*
    samples. Each gene is then standardised with the training split's mean and standard deviation
    only, so no validation or test statistic leaks into training. The splits live in memory as float32
    tensors, or on disk when they would not fit (``storage``); batches are cut by index (see :mod:`src.data.batches`).

    Args:
        source: where the data comes from (synthetic, a GCTX file, ...).
        split: train, val and test fractions, or sample counts (see :func:`~src.data.transforms.split_sizes`).
        split_seed: seed of the sample permutation (fixed, so a checkpoint's test split can be rebuilt).
        batch_size: global training batch size (divided among DDP ranks).
        eval_batch_size: batch size for validation, test and prediction.
        max_samples: keep only the first N samples of the source (quick runs).
        max_targets: keep only the first N target genes of the source (quick runs).
        quantile_normalize: rank-map every sample onto reference quantiles before standardising.
        calibration: samples carved from the training part for calibration: a fraction of all samples
            (< 1) or a count; at least :data:`MIN_CALIBRATION` when the training part has four times
            as many; 0 for none (then no intervals).
        folds, fold: k-fold cross-validation: with ``folds=K``, fold ``fold`` (0..K-1) of a seeded
            permutation is the test set and the rest is split into train and val as ``split`` says
            (then the calibration split is carved from train as usual).
        on_device: hold a split on the accelerator trained on (``true``), keep it in host memory and
            copy every batch (``false``), or ``auto``: on the accelerator when the split takes at most
            :data:`ON_DEVICE_SHARE` of its free memory. Batches are then cut on the device, as a plain
            PyTorch loop over tensors on the GPU does, instead of a gather and a host-to-device copy per
            step. On a CPU it changes nothing.
        storage: where the preprocessed splits live: ``memory`` (float32 tensors in every process), ``disk`` (a
            preprocessed cache on disk read by rows, one copy per node in the page cache shared by its DDP
            processes, see :mod:`src.data.disk_splits`; file sources and the synthetic data) or ``auto``: in memory when every
            process of the node together would take at most half of the memory available, else on disk. Both
            give the same batches, steps and results.

    Evaluation splits carry two inputs: the D-GEX protocol's (landmarks rank-mapped together with the
    targets, as the GEO file was normalised) and the deployed path's (landmarks alone, exactly as
    ``src.predict`` preprocesses a new profile); for data without quantile normalisation they are one.
    """

    #: Values checked before any work (``data.<key>``; :mod:`src.common.config_checks`).
    config_checks = check_table(
        ("batch_size", positive_int, "a positive integer (the global training batch)", "200"),
        ("eval_batch_size", positive_int, "a positive integer (samples per process for validation and test)", "1000"),
        ("split", lambda v: list_of(lambda x: number(x) and x >= 0)(v) and len(v) == 3,
         "three non-negative fractions summing to 1, or three sample counts (train, val, test)", "[0.8,0.1,0.1]"),
        ("split_seed", integer, "an integer", "0"),
        ("calibration", lambda v: number(v) and v >= 0 and (v < 1 or float(v).is_integer()),
         "a fraction in [0, 1) of the samples or a sample count (0: no calibration)", "0.1"),
        ("max_samples", optional(positive_int), "null (all samples) or a positive integer", "3000"),
        ("max_targets", optional(positive_int), "null (all target genes) or a positive integer", "300"),
        ("quantile_normalize", one_of(True, False), "true or false", "false"),
        ("on_device", one_of("auto", True, False), "auto, true or false (splits held on the GPU)", "auto"),
        ("storage", one_of("auto", "memory", "disk"), "auto, memory or disk (where the preprocessed splits live)", "auto"),
        ("folds", optional(lambda v: integer(v) and v >= 2), "null (one train/val/test split) or an integer >= 2", "5"),
        ("fold", lambda v: integer(v) and v >= 0, "a fold index from 0 to data.folds - 1", "0"),
    )

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
        calibration: float = 0.0,
        folds: int | None = None,
        fold: int = 0,
        on_device: bool | str = "auto",
        storage: str = "auto",
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
        self.calibration = calibration
        self.folds, self.fold = folds, fold
        self.on_device = on_device
        self.storage = storage
        self.storage_used: str | None = None  # what setup() chose: memory or disk
        # Processes of this node that will each set up this data (set from trainer.devices by src.train, which sets
        # the data up before the Trainer exists): what storage=auto weighs against the memory available.
        self.node_processes = 1
        self.store: Path | None = None  # the folder of the preprocessed splits (storage on disk)
        self._raw_rows: dict[str, tuple] = {}  # held-out splits' rows of the source on disk (quantile-normalised data)
        self._device_splits: dict[str, TensorBatches] = {}  # copies on the accelerator (see on_device)
        self.raw_landmarks: dict[str, np.ndarray] = {}  # held-out splits before preprocessing (quantile-normalised data)
        self.preprocessing: Preprocessing | None = None
        self.splits: dict[str, TensorBatches] = {}
        self.sample_ids: dict[str, list[str]] = {}
        # The source's per-sample annotations: name -> sample id -> value (written into splits.tsv).
        self.sample_annotations: dict[str, dict[str, str]] = {}

    def prepare_data(self) -> None:
        """Write whatever files the source needs (once per DataModule: Lightning calls it again at fit)."""
        if getattr(self, "_prepared", False):
            return
        self.source.prepare(self.max_samples, self.max_targets)
        self._prepared = True

    def setup(self, stage: str | None = None) -> None:
        """Load (or open on disk), split and standardise once; later calls (Lightning calls it per stage) are free."""
        if self.splits:
            return
        data = self._data()
        self.sample_annotations = {name: dict(zip(data.sample_ids, values)) for name, values in data.sample_annotations.items()}
        n = len(data.sample_ids)
        if self.folds:
            indices = fold_indices(n, self.folds, self.fold, self.split, self.split_seed)
        else:
            indices = split_indices(n, self.split, self.split_seed)
        parts = dict(zip(SPLITS[:2] + SPLITS[3:], indices))
        n_cal = calibration_size(len(data.sample_ids), len(parts["train"]), self.calibration)
        parts["train"], parts["calibration"] = parts["train"][: len(parts["train"]) - n_cal], parts["train"][len(parts["train"]) - n_cal :]
        parts = {name: parts[name] for name in SPLITS}
        check_split_sizes({name: len(part) for name, part in parts.items()}, len(data.sample_ids), self.max_samples)
        for name, part in parts.items():
            self.sample_ids[name] = [data.sample_ids[i] for i in part]
        if self.storage_used == "disk":
            self.preprocessing, self.splits, self.store = build_or_open(data, parts, self.quantile_normalize)
            if self.quantile_normalize:  # the held-out landmarks as read, on demand
                self._raw_rows = {name: (data.landmarks, parts[name]) for name in SPLITS[1:]}
        else:
            self._split_in_memory(data, parts)
        log.info(
            "Data: %d landmarks, %d targets; %d train / %d val / %d calibration / %d test samples",
            len(data.landmark_ids), len(data.target_ids), *map(len, parts.values()),
        )

    def _data(self) -> ExpressionData:
        """The source's data: on disk (:class:`~src.data.rowfile.RowFile` matrices) when ``storage`` says so or, with
        ``auto``, when it would not fit in memory (:func:`~src.data.disk_splits.choose_storage`); else in memory."""
        on_disk = hasattr(self.source, "open") and hasattr(self.source, "shape")
        if not on_disk:
            if self.storage == "disk":
                raise InputError(f"data.storage=disk: the {type(self.source).__name__} cannot be read from disk by rows "
                                 "(file sources and the synthetic source can); expected data.storage=auto or "
                                 "data.storage=memory")
            self.storage_used = "memory"
        elif self.storage == "memory":
            self.storage_used = "memory"
        else:
            n, n_landmarks, n_targets = self.source.shape(self.max_samples, self.max_targets)
            processes = self.trainer.num_devices if self.trainer is not None else self.node_processes
            self.storage_used = choose_storage(self.storage, 4 * n * (n_landmarks + n_targets), processes)
        if self.storage_used == "disk":
            return self.source.open(self.max_samples, self.max_targets)
        return self.source.load(self.max_samples, self.max_targets)

    def _split_in_memory(self, data: ExpressionData, parts: dict[str, np.ndarray]) -> None:
        """Reorder the rows in place to train | val | calibration | test (every split a view, not a copy), fit
        the preprocessing on the training rows and transform everything in place."""
        order = np.concatenate(list(parts.values()))
        for matrix in (data.landmarks, data.targets):
            permute_rows_(matrix, order)
        bounds = np.cumsum([0, *map(len, parts.values())])
        rows = {name: slice(bounds[k], bounds[k + 1]) for k, name in enumerate(SPLITS)}
        if self.quantile_normalize:  # the held-out landmarks as read, for the deployed path
            self.raw_landmarks = {name: data.landmarks[rows[name]].copy() for name in SPLITS[1:]}
        train = np.arange(len(parts["train"]))
        self.preprocessing = Preprocessing.fit(data, train, self.quantile_normalize)
        for name, part in rows.items():
            deployed = None
            if name in self.raw_landmarks:
                deployed = torch.from_numpy(self.preprocessing.transform_landmarks(self.raw_landmarks[name], log2=False))
            x, y = torch.from_numpy(data.landmarks[part]), torch.from_numpy(data.targets[part])
            self.splits[name] = TensorBatches(x, y, deployed)

    def raw(self, name: str) -> np.ndarray:
        """A held-out split's landmark genes on the data's own scale (after the source's log2, before
        quantile normalisation and standardisation): what ``src.predict`` would read for those samples."""
        if name in self.raw_landmarks:
            return self.raw_landmarks[name]
        if name in self._raw_rows:
            matrix, rows = self._raw_rows[name]
            return matrix[rows]
        return self._space().landmark_scaler.inverse(self.split_data(name).landmarks.numpy())

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

    def teardown(self, stage: str) -> None:
        """Free the accelerator copies of the splits when fitting, testing or predicting ends."""
        self._device_splits.clear()

    def _rank_world(self) -> tuple[int, int]:
        trainer = self.trainer
        return (trainer.global_rank, trainer.world_size) if trainer is not None else (0, 1)

    def _placed(self, name: str) -> TensorBatches:
        """Split ``name`` where its batches are cut: a copy on the trainer's accelerator (made once) when
        ``on_device`` says so, else the host tensors (see the class's ``on_device``)."""
        data = self.splits[name]
        device = self.trainer.strategy.root_device if self.trainer is not None else torch.device("cpu")
        if device.type == "cpu" or self.on_device is False or not isinstance(data, TensorBatches):
            return data
        placed = self._device_splits.get(name)
        if placed is not None and placed.landmarks.device == device:
            return placed
        if self.on_device == "auto" and not fits_on_device(data.nbytes, device):
            log.info("The %s split (%.1f GB) stays in host memory: more than %d%% of %s's free memory",
                     name, data.nbytes / 1e9, ON_DEVICE_SHARE * 100, device)
            return data
        self._device_splits[name] = placed = data.to(device)
        return placed

    def _loader(self, name: str, train: bool):
        rank, world = self._rank_world()
        data = self._placed(name)
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


def fits_on_device(nbytes: int, device: torch.device) -> bool:
    """Whether ``nbytes`` take at most :data:`ON_DEVICE_SHARE` of ``device``'s free memory (CUDA: the
    driver's figure; other accelerators: never assumed)."""
    if device.type != "cuda":
        return False
    free, _total = torch.cuda.mem_get_info(device)
    return nbytes <= ON_DEVICE_SHARE * free
