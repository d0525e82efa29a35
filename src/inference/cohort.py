"""The engine's side of trust on another cohort: how unlike the training data an input's profiles are (a
scan before the predictions are written), intervals weighted by that shift, and trust recalibrated from
measured profiles of the new cohort (``calibrate_with=``). The statistics live in
:mod:`src.models.shift` and :mod:`src.models.recalibration`; this module reads the data through the
deployed path and hands them over."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from src.common.errors import InputError
from src.common.progress import progress_bar
from src.data.genes import GeneMap, match_genes
from src.data.io.matrix import open_matrix
from src.data.io.memory import MemoryReader
from src.data.transforms import check_values
from src.models.recalibration import CohortCalibration
from src.models.shift import FLAG_P, ShiftTest, WeightedIntervals, share_flagged
from src.models.trust import predict_standardised

log = logging.getLogger(__name__)

WEIGHTING_SAMPLES = 5000  # input profiles the shift-weighting classifier sees (an even subsample beyond)
SHIFT_COLUMNS = ("shift_score", "shift_p", "shift_percentile", "unlike_training")


@dataclass
class ShiftScan:
    """Each input profile's shift score, its p-value and percentile against the calibration profiles."""

    score: np.ndarray
    p_value: np.ndarray
    percentile: np.ndarray
    sample: np.ndarray  # standardised landmarks of up to WEIGHTING_SAMPLES profiles

    def columns(self) -> dict[str, np.ndarray]:
        """Per-profile columns for the output's sample metadata (:data:`SHIFT_COLUMNS`)."""
        return dict(zip(SHIFT_COLUMNS, (self.score.astype(np.float32), self.p_value.astype(np.float32),
                                        self.percentile.astype(np.float32), self.p_value < FLAG_P)))

    def summary(self) -> str:
        """One line: how many profiles are unlike the training data, and what that means for the intervals."""
        flagged, n = share_flagged(self.p_value)
        text = f"{flagged} of {n} profiles are unlike the training data (shift p < {FLAG_P:g})"
        if flagged >= max(FLAG_P * n * 5, 1):  # well beyond the 1% expected of the training cohort's own
            text += (": their intervals and reliability calls are not calibrated; measure some of them and pass "
                     "calibrate_with=FILE, or interval_shift=weighted for intervals that widen with the shift")
        return text


def scan_shift(predictor, reader, plan, block_size: int) -> ShiftScan | None:
    """The shift scan of every profile of ``reader`` (a pass over its landmark columns), or None when the
    checkpoint holds no shift model."""
    if plan.shift is None:
        return None
    n = len(reader.sample_ids)
    every = max(1, -(-n // WEIGHTING_SAMPLES))
    scores, sample = [], []
    with progress_bar(f"Scoring {n:,} profiles against the training data", n) as advance:
        for rows, block in reader.blocks(plan.needed, block_size):
            check_values(block, plan.source, reader.sample_ids, reader.feature_ids[plan.needed], rows.start, plan.log2,
                         "landmark")
            x = predictor.preprocessing.transform_landmarks(block, plan.remap, log2=plan.log2,
                                                            quantile_normalize=plan.quantile_normalize)
            scores.append(plan.shift.model.score(x))
            sample.append(x[(np.arange(rows.start, rows.stop) % every) == 0])
            advance(len(block))
    score = np.concatenate(scores) if scores else np.zeros(0)
    return ShiftScan(score, plan.shift.p_values(score), plan.shift.percentiles(score), np.concatenate(sample))


def weighted_intervals(predictor, plan, scan: ShiftScan, alpha: float) -> WeightedIntervals:
    """Intervals whose calibration profiles are weighted by how much they resemble ``scan``'s profiles."""
    trust, space = predictor.model.trust, predictor.preprocessing
    x = trust.calibration_landmarks(space, plan.present)
    residual = np.abs(predict_standardised(predictor.model, x) - trust.truth.astype(np.float32))
    return WeightedIntervals(plan.shift.model, x, residual, trust.difficulty, scan.sample, alpha)


def target_map(predictor) -> GeneMap:
    """The model's target genes as a gene map (ids and symbols), to find them in a file of measured profiles."""
    space = predictor.preprocessing
    ids = list(space.target_ids)
    return GeneMap(predictor.checkpoint or predictor.where, list(space.target_symbols or ids), ids, [[g] for g in ids])


def measured_profiles(predictor, source, plan, reader_options: dict | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The standardised landmarks (the input's panel) and standardised measured targets (NaN where a target is
    not in the file) of ``source``: a file in any supported format or an AnnData/DataFrame."""
    space, where = predictor.preprocessing, f"calibrate_with={source}" if isinstance(source, str) else "calibrate_with"
    targets = target_map(predictor)
    if isinstance(source, (str, bytes)) or hasattr(source, "__fspath__"):
        reader = open_matrix(source, "auto", options_key="reader_options",
                             known_features=predictor.landmark_map.known_ids | targets.known_ids, **(reader_options or {}))
    else:
        reader = MemoryReader(source, "calibrate_with")
    candidates = ("probe", "ensembl", "symbol") if space.landmark_probes else ("ensembl", "symbol")
    landmarks = match_genes(reader.feature_ids, [predictor.landmark_map], "auto", where, allow_missing=True,
                            candidates=candidates)
    panel = plan.present if plan.present is not None else np.ones(len(space.landmark_ids), dtype=bool)
    lacking = panel & ~landmarks.present
    if lacking.any():
        raise InputError(f"{where}: {int(lacking.sum())} of the landmarks the input has are missing from the measured "
                         f"profiles (e.g. {', '.join(landmarks.missing(space.landmark_ids)[:3])}); expected the same "
                         "landmarks as the input, plus the target genes")
    try:
        measured = match_genes(reader.feature_ids, [targets], "auto", where, allow_missing=True,
                               candidates=("ensembl", "symbol"))
    except InputError:
        raise InputError(f"{where}: none of the model's {len(space.target_ids)} target genes is among the file's "
                         f"features (e.g. {', '.join(space.target_ids[:3])}); expected profiles of the new cohort with "
                         "their landmarks and their target genes measured") from None
    values = np.vstack([block for _, block in reader.blocks(np.arange(len(reader.feature_ids)), 65536)])
    x = space.transform_landmarks(landmarks.apply(values), log2=plan.log2, quantile_normalize=plan.quantile_normalize,
                                  present=panel)
    truth = space.transform_measured_targets(measured.apply(values), log2=plan.log2)
    return x, truth


def calibrate_on(predictor, source, plan, alpha: float, adjust: str, reader_options: dict | None = None) -> CohortCalibration:
    """Trust recalibrated on the measured profiles of ``source`` (see :mod:`src.models.recalibration`)."""
    trust = predictor.model.trust
    x, truth = measured_profiles(predictor, source, plan, reader_options)
    cohort = CohortCalibration.fit(predict_standardised(predictor.model, x), truth, x, trust.difficulty, alpha,
                                   trust.reliability.heldout_mae, adjust)
    log.info("Trust %s", cohort.describe())
    return cohort


def shift_test(predictor, present) -> ShiftTest | None:
    """The shift test of the checkpoint for the landmark panel ``present`` (None without a shift model)."""
    trust = predictor.model.trust
    return None if trust is None else trust.shift_test(predictor.preprocessing, present)
