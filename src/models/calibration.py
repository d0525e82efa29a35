"""Calibrate a trained model on held-out data and measure its intervals: what ``src.train`` runs after
testing, what ``src.eval`` reports and what ``src.predict`` recalibrates for an incomplete panel.

The *trust* of a model, stored in its checkpoint (``extras["trust"]``), holds:

- ``reliability``: per-gene held-out MAE, Pearson and the reliable call (:class:`~src.models.trust.Reliability`)
  on the calibration split, through the deployed path;
- ``difficulty``: the per-sample difficulty model of the adaptive intervals, fitted on the validation split;
- ``calibration``: the calibration samples (at most :data:`MAX_STORED` of them): landmarks as read and
  standardised truth, so that intervals at any level, and reliability and intervals for any
  landmark panel, are calibrated again when asked (``src.predict interval=0.8 missing_landmarks=impute``).
"""

from __future__ import annotations

import numpy as np
import torch

from src.common.errors import InputError
from src.data.batches import TensorBatches
from src.models.trust import DifficultyModel, Intervals, Reliability, coverage

MAX_STORED = 2000  # calibration samples kept in the checkpoint (truth as float16)


@torch.no_grad()
def predict_standardised(model, x: torch.Tensor | np.ndarray, chunk: int = 2048) -> np.ndarray:
    """The model's standardised predictions for standardised inputs ``x``, chunk by chunk, on its device."""
    x = torch.as_tensor(np.asarray(x, dtype=np.float32)) if not isinstance(x, torch.Tensor) else x
    was_training = model.training
    model.eval()
    out = [model(x[i : i + chunk].to(model.device)).float().cpu().numpy() for i in range(0, len(x), chunk)]
    model.train(was_training)
    return np.concatenate(out) if out else np.zeros((0, model.hparams.n_outputs), np.float32)


class Trust:
    """A model's reliability calls, difficulty model and stored calibration samples."""

    def __init__(self, reliability: Reliability, difficulty: DifficultyModel, raw: np.ndarray, truth: np.ndarray):
        self.reliability, self.difficulty = reliability, difficulty
        self.raw, self.truth = np.asarray(raw, np.float32), np.asarray(truth)

    @classmethod
    def fit(cls, model, val: TensorBatches, calibration: TensorBatches, raw_calibration: np.ndarray, seed: int = 0) -> "Trust":
        """Reliability on ``calibration``; the difficulty model on ``val`` (both through the deployed path)."""
        if len(calibration) == 0:
            raise InputError("no calibration samples (data.calibration=0): to measure reliability and intervals, train with "
                             "data.calibration=0.1 (the default)")
        x_val = val.deployed_landmarks
        val_error = np.abs(predict_standardised(model, x_val) - val.targets.numpy()).mean(1)
        difficulty = DifficultyModel.fit(x_val.numpy(), val_error)
        pred = predict_standardised(model, calibration.deployed_landmarks)
        truth = calibration.targets.numpy()
        reliability = Reliability.measure(pred, truth, seed)
        keep = slice(0, MAX_STORED)
        return cls(reliability, difficulty, raw_calibration[keep], truth[keep].astype(np.float16))

    def intervals(self, model, preprocessing, alpha: float, present: np.ndarray | None = None) -> Intervals:
        """Conformal intervals at level ``1 - alpha`` from the stored calibration samples, for ``present``
        landmarks (all by default)."""
        x = preprocessing.transform_landmarks(self.raw, log2=False, present=present)
        return Intervals.calibrate(predict_standardised(model, x), self.truth.astype(np.float32), x, self.difficulty, alpha)

    def reliability_for(self, model, preprocessing, present: np.ndarray | None = None) -> Reliability:
        """Reliability calls for a landmark panel (the stored calls for the full panel)."""
        if present is None or bool(np.all(present)):
            return self.reliability
        x = preprocessing.transform_landmarks(self.raw, log2=False, present=present)
        return Reliability.measure(predict_standardised(model, x), self.truth.astype(np.float32))

    def to_dict(self) -> dict:
        return {"reliability": self.reliability.to_dict(), "difficulty": self.difficulty.to_dict(),
                "calibration": {"raw": torch.from_numpy(self.raw), "truth": torch.from_numpy(self.truth)}}

    @classmethod
    def from_dict(cls, d: dict) -> "Trust":
        return cls(Reliability.from_dict(d["reliability"]), DifficultyModel.from_dict(d["difficulty"]),
                   d["calibration"]["raw"].numpy(), d["calibration"]["truth"].numpy())


def interval_metrics(model, intervals: Intervals, x: torch.Tensor, truth: torch.Tensor, scored: np.ndarray,
                     prefix: str = "test/", pred: np.ndarray | None = None) -> dict[str, float]:
    """Coverage and mean width of the constant and adaptive intervals on ``(x, truth)``, averaged over the
    ``scored`` genes; plus the share of genes whose own coverage lies within 0.05 of the nominal level."""
    pred = predict_standardised(model, x) if pred is None else pred
    y = truth.numpy() if isinstance(truth, torch.Tensor) else truth
    x = x.numpy() if isinstance(x, torch.Tensor) else x
    nominal = 1 - intervals.alpha
    out = {}
    for name, adaptive in (("interval", False), ("adaptive_interval", True)):
        per_gene, width = coverage(pred[:, scored], y[:, scored], intervals.half_width(x, adaptive)[:, scored])
        out[f"{prefix}{name}_coverage"] = float(per_gene.mean())
        out[f"{prefix}{name}_width"] = width
        out[f"{prefix}{name}_genes_within_0.05"] = float(np.mean(np.abs(per_gene - nominal) <= 0.05))
    return out


def calibrate_run(model, datamodule, level: float) -> dict[str, float]:
    """After testing: fit the model's :class:`Trust` on the data's validation and calibration splits, attach
    it to the model (its checkpoints carry it) and return the test split's interval metrics at ``level``
    plus the number of reliable genes. Empty without a calibration split or for models that do not
    predict from landmarks."""
    calibration = datamodule.splits.get("calibration")
    if calibration is None or len(calibration) == 0 or not model.predicts_from_landmarks:
        return {}
    model.trust = Trust.fit(model, datamodule.split_data("val"), calibration, datamodule.raw("calibration"))
    intervals = model.trust.intervals(model, model.preprocessing, 1 - level)
    test = datamodule.split_data("test")
    scored = model.scored_genes.cpu().numpy()
    metrics = interval_metrics(model, intervals, test.deployed_landmarks, test.targets, scored)
    reliable = model.trust.reliability.reliable
    metrics["calibration/reliable_genes"] = float(reliable.sum())
    metrics["calibration/reliable_fraction"] = float(reliable.mean())
    return metrics
