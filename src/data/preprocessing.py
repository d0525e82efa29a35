"""The preprocessing contract: what a trained model must remember about its data, and its transforms.

A :class:`Preprocessing` is fitted once, by the DataModule, on the training split only (D-GEX,
Chen et al. 2016, standardised with statistics of all samples; here nothing of the validation or
test samples enters). It is stored in every checkpoint (plain lists and tensors, loadable with
``weights_only=True``) and is the only code that turns raw landmark values into network inputs and
network outputs back into expression values. ``src.eval`` and ``src.predict`` only apply it.

Its parts:

- the gene ids (landmarks, targets) and how the file's features became genes (``id_type``, and
  for probe-level data the probes of every landmark gene);
- the log2 policy (``log2(x + 1)`` of linear-scale input such as RPKM, applied before everything else);
- quantile normalisation: the reference quantiles that each training sample's landmarks and targets
  were rank-mapped onto together (D-GEX's protocol), and the mean sorted landmark profile after it,
  onto which a new profile's landmarks alone are rank-mapped;
- per-gene standardisation ``(x - mean) / (sd + 1e-3)`` of landmarks and targets.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from src.common.errors import InputError
from src.common.progress import progress_bar
from src.data.genes import GeneColumns, GeneMap
from src.data.impute import LandmarkImputer
from src.data.transforms import Standardizer, log2p1, rank_map, reference_quantiles
from src.data.sources.base import ExpressionData

BLOCK = 4096  # samples per block of the in-place fitting steps
# Target genes whose training standard deviation is below this (expression units, e.g. log2) are
# constant for every practical purpose: their standardised values are noise around 0, their MAE
# is near 0 and their Pearson undefined, so averaged metrics leave them out (and name them).
CONSTANT_SD = 1e-3
IMPUTER_SAMPLES = 20000  # training profiles the landmark covariance of quantile-normalised data is fitted on


@dataclass
class Preprocessing:
    """Gene ids, log2 policy, quantile references and training-split standardisation of one data set."""

    landmark_ids: list[str]
    target_ids: list[str]
    landmark_scaler: Standardizer
    target_scaler: Standardizer
    # The rest of the source's own description of the data (path, id type, duplicates removed...), kept as
    # provenance; what the framework acts on is in the typed fields below, never read from here.
    info: dict = field(default_factory=dict)
    # Quantile normalisation's reference (landmarks and targets ranked together), if the data used one,
    # and the mean sorted landmark profile after it (to rank-map landmark-only profiles at prediction).
    reference: np.ndarray | None = None
    landmark_reference: np.ndarray | None = None
    # Fills missing landmarks of an incomplete panel from the present ones (training covariance).
    imputer: LandmarkImputer | None = None
    # What the data were: whether their raw values were taken as log2(x + 1) first; the probes of every
    # landmark gene (probe-level data); gene symbols; map genes absent from the file (count and first ids);
    # the data's known noise floor (synthetic data); a landmark graph file that came with the data.
    log2: bool = False
    landmark_probes: list[list[str]] | None = None
    landmark_symbols: list[str] | None = None
    target_symbols: list[str] | None = None
    genes_dropped: dict | None = None
    noise_floor_mae: float | None = None
    landmark_graph: str | None = None

    # ----------------------------------------------------------------- fitting (the DataModule)
    @classmethod
    def fit(cls, data: ExpressionData, train: np.ndarray, quantile_normalize: bool = False) -> "Preprocessing":
        """Fit on the ``train`` rows of ``data`` (:meth:`fit_rows`) and transform all of ``data`` in place
        (:meth:`transform_`): D-GEX's protocol, with statistics of the training split only."""
        fitted = cls.fit_rows(data, train, quantile_normalize)
        fitted.transform_(data)
        return fitted

    @classmethod
    def fit_rows(cls, data: ExpressionData, train: np.ndarray, quantile_normalize: bool = False) -> "Preprocessing":
        """Fit on the ``train`` rows of ``data`` without changing it, in streaming passes over blocks of those rows,
        so ``data`` may be arrays in memory or :class:`~src.data.rowfile.RowFile` matrices on disk.

        With ``quantile_normalize``, every sample's landmarks and targets are rank-mapped together onto
        reference quantiles (the source's fixed reference if it has one, GEO's for RNA-seq data, else the mean
        sorted profile of the training samples) before the statistics are taken; each block is rank-mapped as
        it is read. Every statistic is exact: float64 sums over the same blocks of rows as the in-memory
        computation, so the result equals the in-memory fit's to the last bit (tests/data/test_disk_splits.py).
        """
        n_lm = data.landmarks.shape[1]
        width = n_lm + data.targets.shape[1]
        joined = _Rows(lambda rows: np.hstack([data.landmarks[rows], data.targets[rows]]), len(data.sample_ids), width)
        reference = landmark_reference = raw_sample = None
        if quantile_normalize:
            # The imputer learns the landmarks as the deployed path gives them (rank-mapped alone, not with the
            # targets): a sample of the training landmarks as read (at most IMPUTER_SAMPLES).
            raw_sample = np.asarray(data.landmarks[train[:IMPUTER_SAMPLES]], dtype=np.float32)
            reference = data.reference if data.reference is not None else _training_reference(joined, train)
            unmapped = joined
            joined = _Rows(lambda rows: rank_map(unmapped[rows], reference), len(data.sample_ids), width)
            landmark_reference = reference_quantiles(_Rows(lambda rows: joined[rows][:, :n_lm], len(joined), n_lm), train)
        both = Standardizer.fit(joined, train)  # landmarks and targets in one pass over the rows
        landmark_scaler = Standardizer(both.mean[:n_lm], both.std[:n_lm], both.eps)
        target_scaler = Standardizer(both.mean[n_lm:], both.std[n_lm:], both.eps)
        described = {k: v for k, v in data.info.items() if k not in FACTS}  # the facts are kept once, typed
        fitted = cls(
            list(data.landmark_ids), list(data.target_ids), landmark_scaler, target_scaler, described,
            reference, landmark_reference, **facts_of(data.info),
        )
        if raw_sample is None:
            standardised = _Rows(lambda rows: landmark_scaler.transform(data.landmarks[rows]), len(joined), n_lm)
            fitted.imputer = LandmarkImputer.fit(standardised, train)
        else:
            fitted.imputer = LandmarkImputer.fit(fitted.transform_landmarks(raw_sample, log2=False))
        return fitted

    def transform_(self, data: ExpressionData) -> None:
        """Transform all of ``data`` (arrays in memory) in place as the training rows were fitted: landmarks and
        targets rank-mapped together (quantile-normalised data), then standardised."""
        if self.quantile_normalized:
            with progress_bar("Quantile normalisation", len(data.sample_ids)) as advance:
                for start in range(0, len(data.sample_ids), BLOCK):
                    rows = slice(start, start + BLOCK)
                    data.landmarks[rows], data.targets[rows] = self.transform_training_rows(data.landmarks[rows], data.targets[rows])
                    advance(min(BLOCK, len(data.sample_ids) - start))
            return
        self.landmark_scaler.transform_(data.landmarks)
        self.target_scaler.transform_(data.targets)

    def transform_training_rows(self, landmarks: np.ndarray, targets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Rows of the training file's landmarks and targets (the file's scale) -> what the network trains on:
        rank-mapped together onto the reference (quantile-normalised data; D-GEX's protocol), then standardised."""
        if self.quantile_normalized:
            n_lm = landmarks.shape[1]
            mapped = rank_map(np.hstack([landmarks, targets]), self.reference)
            landmarks, targets = mapped[:, :n_lm], mapped[:, n_lm:]
        return self.landmark_scaler.transform(landmarks), self.target_scaler.transform(targets)

    # ----------------------------------------------------------------- what the data were
    @property
    def quantile_normalized(self) -> bool:
        return self.reference is not None

    def constant_targets(self, threshold: float = CONSTANT_SD) -> np.ndarray:
        """Which target genes were (near-)constant in the training split (sd below ``threshold``)."""
        return np.asarray(self.target_scaler.std) < threshold

    def landmark_map(self, where: str | Path) -> GeneMap:
        """The landmark genes as a gene map (their ids, and their probes if trained on probes), to
        locate them among a new file's features."""
        probes = self.landmark_probes or [[g] for g in self.landmark_ids]
        ids = list(self.landmark_ids)
        symbols = list(self.landmark_symbols or ids)
        return GeneMap(Path(where), symbols, ids, [list(p) for p in probes])

    # ----------------------------------------------------------------- the transforms
    def transform_landmarks(
        self,
        raw: np.ndarray,
        genes: GeneColumns | None = None,
        log2: bool | None = None,
        quantile_normalize: bool | None = None,
        present: np.ndarray | None = None,
    ) -> np.ndarray:
        """Raw landmark values (samples x features, the file's scale) -> standardised network input.

        The deployed path, step for step as the training data went: optional ``log2(x + 1)`` of the
        file's values (default: as the training data), features -> landmark genes with ``genes``
        (probes averaged per gene; without it ``raw`` holds the landmark genes in order), rank
        mapping of each profile's landmarks alone onto the training landmark quantiles (default:
        when the training data were quantile-normalised), then the training standardisation.

        An incomplete panel (``present``, or the ``present`` genes of ``genes``; the other columns are
        ignored) is rank-mapped onto the reference quantiles at the present genes' share of ranks, and
        its missing landmarks are filled by the Gaussian conditional expectation given the present
        ones (:class:`~src.data.impute.LandmarkImputer`).
        """
        log2 = self.log2 if log2 is None else log2
        quantile_normalize = self.quantile_normalized if quantile_normalize is None else quantile_normalize
        if quantile_normalize and self.landmark_reference is None:
            raise InputError("quantile_normalize=true, but the model's training data were not quantile-normalised")
        if present is None and genes is not None:
            present = genes.present
        values = log2p1(raw) if log2 else np.asarray(raw, dtype=np.float32)
        values = genes.apply(values) if genes is not None else np.array(values, dtype=np.float32)
        complete = present is None or bool(np.all(present))
        if complete:
            if quantile_normalize:
                rank_map(values, self.landmark_reference, out=values)
            return self.landmark_scaler.transform(values)
        present = np.asarray(present, dtype=bool)
        measured = values[:, present]
        if quantile_normalize:
            rank_map(measured, panel_reference(self.landmark_reference, int(present.sum())), out=measured)
        scaler = self.landmark_scaler
        standardised = np.zeros(values.shape, dtype=np.float32)
        standardised[:, present] = (measured - scaler.mean[present]) / (scaler.std[present] + scaler.eps)
        if self.imputer is None:
            raise InputError("this checkpoint holds no landmark covariance to impute missing landmarks; retrain it")
        return self.imputer.impute(standardised, present)

    def transform_targets(self, targets: np.ndarray, log2: bool | None = None) -> np.ndarray:
        """Raw target gene values -> the standardised scale the model predicts and MAE is measured on."""
        log2 = self.log2 if log2 is None else log2
        values = log2p1(targets) if log2 else targets
        return self.target_scaler.transform(values)

    def transform_measured_targets(self, values: np.ndarray, log2: bool | None = None) -> np.ndarray:
        """Measured target genes of new profiles (samples x targets, the file's scale; NaN where a gene was not
        measured) -> the standardised scale the model predicts on: optional ``log2(x + 1)``, then, when the
        training data were quantile-normalised, each profile's measured targets rank-mapped alone onto the
        training reference at their share of ranks (as a landmark panel is), then the training standardisation."""
        log2 = self.log2 if log2 is None else log2
        values = log2p1(values) if log2 else np.array(values, dtype=np.float32)
        if self.quantile_normalized:
            measured = ~np.isnan(values).any(0)
            block = np.ascontiguousarray(values[:, measured])
            rank_map(block, panel_reference(self.reference, int(measured.sum())), out=block)
            values[:, measured] = block
        return self.target_scaler.transform(values)

    def inverse_targets(self, standardised: np.ndarray) -> np.ndarray:
        """Standardised predictions -> the training data's expression scale (after its log2, if any)."""
        return self.target_scaler.inverse(standardised)

    # ----------------------------------------------------------------- checkpoint form
    def to_dict(self) -> dict:
        """Plain lists and tensors (what the checkpoint holds; readable with ``weights_only=True``)."""
        return {
            "landmark_ids": list(self.landmark_ids),
            "target_ids": list(self.target_ids),
            "landmark_mean": torch.from_numpy(self.landmark_scaler.mean),
            "landmark_std": torch.from_numpy(self.landmark_scaler.std),
            "target_mean": torch.from_numpy(self.target_scaler.mean),
            "target_std": torch.from_numpy(self.target_scaler.std),
            "eps": self.landmark_scaler.eps,
            "info": dict(self.info),
            **{name: getattr(self, name) for name in FACTS},
            "reference": _tensor(self.reference),
            "landmark_reference": _tensor(self.landmark_reference),
            "imputer": self.imputer.to_dict() if self.imputer is not None else None,
        }

    @classmethod
    def from_dict(cls, d: dict) -> "Preprocessing":
        return cls(
            landmark_ids=list(d["landmark_ids"]),
            target_ids=list(d["target_ids"]),
            landmark_scaler=Standardizer(d["landmark_mean"].numpy(), d["landmark_std"].numpy(), d["eps"]),
            target_scaler=Standardizer(d["target_mean"].numpy(), d["target_std"].numpy(), d["eps"]),
            info=dict(d.get("info", {})),
            reference=_array(d.get("reference")),
            landmark_reference=_array(d.get("landmark_reference")),
            imputer=LandmarkImputer.from_dict(d["imputer"]) if d.get("imputer") else None,
            # Checkpoints written before the typed fields kept these in ``info``.
            **(facts_of(d.get("info", {})) if "log2" not in d else {name: d[name] for name in FACTS}),
        )


FACTS = ("log2", "landmark_probes", "landmark_symbols", "target_symbols", "genes_dropped", "noise_floor_mae",
         "landmark_graph")


def facts_of(info: dict) -> dict:
    """The typed fields of :class:`Preprocessing` from a source's description of its data
    (:attr:`~src.data.sources.base.ExpressionData.info`), the one place its keys are read."""
    facts = {name: info.get(name) for name in FACTS}
    facts["log2"] = bool(facts["log2"])
    facts["landmark_probes"] = facts["landmark_probes"] or None
    facts["noise_floor_mae"] = None if facts["noise_floor_mae"] is None else float(facts["noise_floor_mae"])
    facts["landmark_graph"] = None if facts["landmark_graph"] is None else str(facts["landmark_graph"])
    return facts


def panel_reference(reference: np.ndarray, m: int) -> np.ndarray:
    """The ``m`` reference quantiles of a panel of ``m`` of the landmarks: the full reference read at the
    panel's share of ranks (``(k + 0.5) / m``), as the present genes of a random panel would rank."""
    positions = (np.arange(m) + 0.5) / m * len(reference) - 0.5
    return np.interp(positions, np.arange(len(reference)), np.asarray(reference, dtype=np.float64))


def _tensor(values: np.ndarray | None) -> torch.Tensor | None:
    return None if values is None else torch.from_numpy(np.asarray(values))


def _array(values: torch.Tensor | None) -> np.ndarray | None:
    return None if values is None else values.numpy()


class _Rows:
    """A matrix whose rows are computed on request (``rows[index]``): the training data as a fitting pass sees
    them, one block at a time, never whole."""

    def __init__(self, compute, n: int, width: int):
        self._compute, self.shape = compute, (n, width)

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, rows) -> np.ndarray:
        return self._compute(rows)


def _training_reference(joined: _Rows, train: np.ndarray) -> np.ndarray:
    """The mean sorted profile (landmarks and targets together) of the training rows: quantile normalisation's
    reference when the source has none."""
    reference = np.zeros(joined.shape[1])
    with progress_bar("Quantile reference of the training samples", len(train)) as advance:
        for start in range(0, len(train), BLOCK):
            rows = train[start : start + BLOCK]
            reference += reference_quantiles(joined[rows]) * len(rows)
            advance(len(rows))
    return reference / len(train)
