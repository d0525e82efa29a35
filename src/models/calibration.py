"""Calibrate a trained model on held-out data and measure its intervals: what ``src.train`` runs after
testing (the model's :class:`~src.models.trust.Trust`, fitted on the validation and calibration splits) and
the interval metrics ``src.train`` and ``src.eval`` report."""

from __future__ import annotations

import numpy as np
import torch

from src.models.shift import FLAG_P, fit_rows
from src.models.trust import Intervals, Trust, predict_standardised

def interval_metrics(model, intervals: Intervals, x: torch.Tensor, truth: torch.Tensor, scored: np.ndarray,
                     prefix: str = "test/", pred: np.ndarray | None = None, chunk: int = 2048) -> dict[str, float]:
    """Coverage and mean width of the constant and adaptive intervals on ``(x, truth)``, averaged over the
    ``scored`` genes; plus the share of genes whose own coverage lies within 0.05 of the nominal level.
    Counted over chunks of ``chunk`` samples, so a large test split never needs more than a chunk's arrays."""
    y = truth.numpy() if isinstance(truth, torch.Tensor) else truth
    x = x.numpy() if isinstance(x, torch.Tensor) else x
    nominal = 1 - intervals.alpha
    inside = {False: 0, True: 0}
    width = {False: 0.0, True: 0.0}
    for start in range(0, len(x), chunk):
        rows = slice(start, start + chunk)
        p = (predict_standardised(model, x[rows]) if pred is None else pred[rows])[:, scored]
        t = np.asarray(y[rows])[:, scored]
        error = np.abs(t - p)
        for adaptive in (False, True):
            half = intervals.half_width(x[rows], adaptive)[:, scored]
            inside[adaptive] = inside[adaptive] + (error <= half).sum(0)
            width[adaptive] += 2 * float(half.sum(dtype=np.float64))
    n = len(x)
    genes = np.size(inside[False]) if n else 0  # the per-gene counts: one per scored gene
    out = {}
    for name, adaptive in (("interval", False), ("adaptive_interval", True)):
        per_gene = np.asarray(inside[adaptive], dtype=np.float64) / max(n, 1)
        out[f"{prefix}{name}_coverage"] = float(per_gene.mean()) if n else float("nan")
        out[f"{prefix}{name}_width"] = width[adaptive] / (n * genes) if n and genes else float("nan")
        out[f"{prefix}{name}_genes_within_0.05"] = float(np.mean(np.abs(per_gene - nominal) <= 0.05)) if n else float("nan")
    return out


def shift_flagged_fraction(trust, preprocessing, x) -> dict[str, float]:
    """``test/shift_flagged_fraction``: the share of profiles ``x`` (standardised landmarks) whose shift p-value
    against the calibration samples is below 0.01 (about 1% for profiles of the training cohort)."""
    test = trust.shift_test(preprocessing) if trust is not None else None
    if test is None or len(x) == 0:
        return {}
    _, p, _ = test.test(np.asarray(x))
    return {"test/shift_flagged_fraction": float(np.mean(p < FLAG_P))}


def calibrate_run(model, datamodule, level: float, checkpoint: str | None = None) -> dict[str, float]:
    """After testing: fit the model's :class:`Trust` on the data's validation and calibration splits, attach
    it to the model and to its best ``checkpoint`` (:meth:`~src.models.base.ExpressionModel.update_checkpoint`)
    and return the test split's interval metrics at ``level`` plus the number of reliable genes. Empty
    without a calibration split or for models that do not predict from landmarks."""
    calibration = datamodule.splits.get("calibration")
    if calibration is None or len(calibration) == 0 or not model.predicts_from_landmarks:
        return {}
    train = datamodule.split_data("train")
    model.trust = Trust.fit(model, datamodule.split_data("val"), calibration, datamodule.raw("calibration"),
                            train_landmarks=train.deployed_rows(fit_rows(len(train))))
    if checkpoint:
        model.update_checkpoint(checkpoint)
    intervals = model.trust.intervals(model, model.preprocessing, 1 - level)
    test = datamodule.split_data("test")
    scored = model.scored_genes.cpu().numpy()
    metrics = interval_metrics(model, intervals, test.deployed_landmarks, test.targets, scored)
    metrics.update(shift_flagged_fraction(model.trust, model.preprocessing, test.deployed_landmarks))
    reliable = model.trust.reliability.reliable
    metrics["calibration/reliable_genes"] = float(reliable.sum())
    metrics["calibration/reliable_fraction"] = float(reliable.mean())
    return metrics
