"""How far to trust a prediction: per-gene reliability and calibrated prediction intervals.

Everything here is computed on held-out data that neither fitted the weights nor chose the checkpoint
(the calibration split), on the standardised scale, through the deployed path (landmarks preprocessed
as ``src.predict`` does).

**Reliability** follows the idea of LINCS's "best inferred genes" (Subramanian et al., *Cell*
171:1437, 2017): a gene's inference is trusted when its held-out accuracy is significantly better than
chance. Here a gene is ``reliable`` when (1) its held-out Pearson correlation between prediction and
truth exceeds the 95th percentile of a null distribution of correlations between the predictions of
one gene and the measured values of another, randomly paired gene (what a prediction correlates with
by the shared structure of expression alone), and (2) that correlation is significantly positive
(one-sided test of Fisher's z, Benjamini-Hochberg false discovery rate 5% over genes).

**Intervals** are split-conformal (Vovk et al. 2005; Lei et al., *JASA* 113:1094, 2018), per gene: with
``n`` calibration scores, the ``ceil((n + 1)(1 - alpha))``-th smallest is the half-width, which covers a
new sample's truth with probability at least ``1 - alpha`` (marginally over samples, for every gene).

- *constant*: score ``|y - f(x)|``, interval ``f(x) -+ q_g``;
- *adaptive* (locally weighted conformal, Lei et al. 2018 section 5.2): score ``|y - f(x)| / u(x)`` with
  ``u(x)`` a per-sample difficulty, a ridge regression from the landmarks to the sample's mean
  absolute error, fitted on the validation split (never the calibration split); interval
  ``f(x) -+ q_g u(x)``: narrower where the model is sure, the same coverage guarantee.

With fewer than ``1/alpha - 1`` calibration samples no finite interval has the guarantee; the widest
score is used then and ``guaranteed`` is false.

The **trust** of a model (:class:`Trust`), stored in its checkpoint (``extras["trust"]``), holds:

- ``reliability``: per-gene held-out MAE, Pearson and the reliable call (:class:`Reliability`) on the
  calibration split, through the deployed path;
- ``difficulty``: the per-sample difficulty model of the adaptive intervals, fitted on the validation split;
- ``calibration``: the calibration samples (at most :data:`MAX_STORED` of them): landmarks as read and
  standardised truth (float16), so that intervals at any level, and reliability and intervals for any
  landmark panel, are calibrated again when asked (``src.predict interval=0.8 missing_landmarks=impute``);
- ``shift``: the principal directions of the training landmarks that score how unlike the training data a
  new profile is (:class:`~src.models.shift.ShiftModel`; tested against the calibration samples' own scores).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from scipy import stats

from src.common.errors import InputError
from src.data.batches import TensorBatches
from src.models.shift import ShiftModel, ShiftTest

NULL_PAIRS = 5  # random gene pairings drawn for the null distribution of correlations
NULL_QUANTILE = 0.95
FDR = 0.05


GENE_CHUNK = 1024  # genes per float64 pass: memory of a few samples x 1,024 genes, whatever the number of genes


def _column_chunks(n: int):
    for start in range(0, n, GENE_CHUNK):
        yield slice(start, min(start + GENE_CHUNK, n))


def per_gene_pearson(pred: np.ndarray, truth: np.ndarray, columns: np.ndarray | None = None) -> np.ndarray:
    """Pearson correlation of every column of ``pred`` with the same column of ``truth`` (or with ``truth``'s
    column ``columns[j]`` for column ``j``); NaN if constant. Computed in float64 over chunks of genes, so a
    large calibration split never needs a float64 copy of its predictions."""
    n_genes = pred.shape[1]
    out = np.empty(n_genes)
    for part in _column_chunks(n_genes):
        p = np.array(pred[:, part], np.float64)  # copies: centred in place below
        t = np.array(truth[:, part] if columns is None else truth[:, columns[part]], np.float64)
        p -= p.mean(0)
        t -= t.mean(0)
        denom = np.sqrt((p * p).sum(0) * (t * t).sum(0))
        with np.errstate(invalid="ignore", divide="ignore"):
            out[part] = np.where(denom > 0, (p * t).sum(0) / denom, np.nan)
    return out


def per_gene_mae(pred: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Mean absolute error of every column (float64 over chunks of genes)."""
    return np.concatenate([np.abs(np.asarray(pred[:, part], np.float64) - truth[:, part]).mean(0)
                           for part in _column_chunks(pred.shape[1])]) if pred.shape[1] else np.zeros(0)


def null_correlations(pred: np.ndarray, truth: np.ndarray, seed: int = 0, pairs: int = NULL_PAIRS) -> np.ndarray:
    """Correlations of each gene's prediction with the truth of randomly paired other genes."""
    rng = np.random.default_rng(seed)
    n = pred.shape[1]
    out = []
    for _ in range(pairs):
        other = (np.arange(n) + rng.integers(1, max(n, 2), size=n)) % n  # never the gene itself (n > 1)
        out.append(per_gene_pearson(pred, truth, other))
    values = np.concatenate(out)
    return values[np.isfinite(values)]


def fisher_p_values(r: np.ndarray, n: int) -> np.ndarray:
    """One-sided p-values of H0: correlation <= 0, from Fisher's z with ``n`` samples."""
    if n < 4:
        return np.ones_like(r)
    z = np.arctanh(np.clip(r, -0.999999, 0.999999)) * math.sqrt(n - 3)
    return np.where(np.isfinite(r), stats.norm.sf(z), 1.0)


def benjamini_hochberg(p: np.ndarray, fdr: float = FDR) -> np.ndarray:
    """Which p-values are discoveries at false discovery rate ``fdr`` (Benjamini & Hochberg 1995)."""
    order = np.argsort(p)
    ranked = p[order] <= fdr * np.arange(1, len(p) + 1) / len(p)
    keep = np.zeros(len(p), dtype=bool)
    if ranked.any():
        keep[order[: np.nonzero(ranked)[0].max() + 1]] = True
    return keep


@dataclass
class Reliability:
    """Per-gene held-out accuracy and the reliability call (see the module docstring)."""

    heldout_mae: np.ndarray
    heldout_pearson: np.ndarray
    reliable: np.ndarray
    null_threshold: float
    n_samples: int

    @classmethod
    def measure(cls, pred: np.ndarray, truth: np.ndarray, seed: int = 0) -> "Reliability":
        mae = per_gene_mae(pred, truth)
        r = per_gene_pearson(pred, truth)
        null = null_correlations(pred, truth, seed)
        threshold = float(np.quantile(null, NULL_QUANTILE)) if len(null) else 1.0
        significant = benjamini_hochberg(fisher_p_values(r, len(pred)))
        reliable = np.isfinite(r) & (r > threshold) & significant
        return cls(mae.astype(np.float32), r.astype(np.float32), reliable, threshold, len(pred))

    def to_dict(self) -> dict:
        return {"heldout_mae": torch.from_numpy(self.heldout_mae), "heldout_pearson": torch.from_numpy(self.heldout_pearson),
                "reliable": torch.from_numpy(self.reliable), "null_threshold": self.null_threshold, "n_samples": self.n_samples}

    @classmethod
    def from_dict(cls, d: dict) -> "Reliability":
        return cls(d["heldout_mae"].numpy(), d["heldout_pearson"].numpy(), d["reliable"].numpy().astype(bool),
                   float(d["null_threshold"]), int(d["n_samples"]))


def conformal_quantile(scores: np.ndarray, alpha: float) -> tuple[np.ndarray, bool]:
    """Per-column split-conformal quantile of ``scores`` (samples x genes) at miscoverage ``alpha``;
    and whether ``n`` sufficed for the finite-sample guarantee."""
    n = len(scores)
    if n == 0:
        raise InputError("no calibration samples (data.calibration=0): to get prediction intervals, train with "
                         "data.calibration=0.1 (the default)")
    k = math.ceil((n + 1) * (1 - alpha) - 1e-9)  # 1 - (1 - 0.55) is not 0.55 in floating point
    guaranteed = k <= n
    return np.sort(scores, axis=0)[min(k, n) - 1].astype(np.float32), guaranteed


class DifficultyModel:
    """``u(x)``: a sample's expected mean absolute error over genes, a ridge regression from its
    (standardised) landmarks, floored at a tenth of the mean so that no interval collapses."""

    def __init__(self, weight: np.ndarray, bias: float, floor: float):
        self.weight, self.bias, self.floor = np.asarray(weight, np.float32), float(bias), float(floor)

    @classmethod
    def fit(cls, x: np.ndarray, mean_abs_error: np.ndarray, alpha: float = 10.0) -> "DifficultyModel":
        x = np.asarray(x, np.float64)
        y = np.asarray(mean_abs_error, np.float64)
        x_mean, y_mean = x.mean(0), y.mean()
        xc = x - x_mean
        # Ridge in its dual form when there are fewer samples than landmarks.
        if len(x) < x.shape[1]:
            w = xc.T @ np.linalg.solve(xc @ xc.T + alpha * len(x) * np.eye(len(x)), y - y_mean)
        else:
            w = np.linalg.solve(xc.T @ xc + alpha * len(x) * np.eye(x.shape[1]), xc.T @ (y - y_mean))
        return cls(w, y_mean - x_mean @ w, 0.1 * y_mean)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return np.maximum(np.asarray(x, np.float32) @ self.weight + self.bias, self.floor).astype(np.float32)

    def to_dict(self) -> dict:
        return {"weight": torch.from_numpy(self.weight), "bias": self.bias, "floor": self.floor}

    @classmethod
    def from_dict(cls, d: dict) -> "DifficultyModel":
        return cls(d["weight"].numpy(), d["bias"], d["floor"])


@dataclass
class Intervals:
    """Per-gene conformal half-widths at level ``1 - alpha``: constant and difficulty-scaled (adaptive)."""

    alpha: float
    constant: np.ndarray  # half-width per gene (standardised scale)
    adaptive: np.ndarray  # multiplier of u(x) per gene
    difficulty: DifficultyModel
    guaranteed: bool
    n_samples: int

    @classmethod
    def calibrate(cls, pred, truth, x, difficulty: DifficultyModel, alpha: float) -> "Intervals":
        residual = np.abs(np.asarray(pred, np.float32) - np.asarray(truth, np.float32))
        constant, ok = conformal_quantile(residual, alpha)
        adaptive, _ = conformal_quantile(residual / difficulty(x)[:, None], alpha)
        return cls(alpha, constant, adaptive, difficulty, ok, len(residual))

    def half_width(self, x: np.ndarray, adaptive: bool = True) -> np.ndarray:
        """Half-widths (samples x genes) for inputs ``x`` (standardised landmarks)."""
        if adaptive:
            return self.difficulty(x)[:, None] * self.adaptive[None, :]
        return np.broadcast_to(self.constant, (len(x), len(self.constant)))

    def to_dict(self) -> dict:
        return {"alpha": self.alpha, "constant": torch.from_numpy(self.constant), "adaptive": torch.from_numpy(self.adaptive),
                "difficulty": self.difficulty.to_dict(), "guaranteed": self.guaranteed, "n_samples": self.n_samples}

    @classmethod
    def from_dict(cls, d: dict) -> "Intervals":
        return cls(float(d["alpha"]), d["constant"].numpy(), d["adaptive"].numpy(),
                   DifficultyModel.from_dict(d["difficulty"]), bool(d["guaranteed"]), int(d["n_samples"]))


def coverage(pred: np.ndarray, truth: np.ndarray, half_width: np.ndarray) -> tuple[np.ndarray, float]:
    """Per-gene share of samples whose truth lies within ``pred -+ half_width``, and the mean full width."""
    inside = np.abs(np.asarray(truth) - np.asarray(pred)) <= half_width
    return inside.mean(0), float(2 * np.mean(half_width))


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
    """A model's reliability calls, difficulty model, stored calibration samples and shift model."""

    def __init__(self, reliability: Reliability, difficulty: DifficultyModel, raw: np.ndarray, truth: np.ndarray,
                 shift: ShiftModel | None = None):
        self.reliability, self.difficulty, self.shift = reliability, difficulty, shift
        self.raw, self.truth = np.asarray(raw, np.float32), np.asarray(truth)

    @classmethod
    def fit(cls, model, val: TensorBatches, calibration: TensorBatches, raw_calibration: np.ndarray, seed: int = 0,
            train_landmarks: torch.Tensor | np.ndarray | None = None) -> "Trust":
        """Reliability on ``calibration``; the difficulty model on ``val`` (both through the deployed path); the
        shift model's directions on ``train_landmarks`` (standardised) and its variances on ``val``."""
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
        shift = None
        if train_landmarks is not None and len(train_landmarks) > 1 and len(x_val) > 0:
            shift = ShiftModel.fit(np.asarray(train_landmarks), x_val.numpy())
        return cls(reliability, difficulty, raw_calibration[keep], truth[keep].astype(np.float16), shift)

    def calibration_landmarks(self, preprocessing, present: np.ndarray | None = None) -> np.ndarray:
        """The stored calibration samples' landmarks through the deployed path (for the panel ``present``)."""
        return preprocessing.transform_landmarks(self.raw, log2=False, present=present)

    def shift_test(self, preprocessing, present: np.ndarray | None = None) -> ShiftTest | None:
        """The shift score's test against the calibration samples (None for a checkpoint without a shift model)."""
        if self.shift is None:
            return None
        return ShiftTest.against(self.shift, self.calibration_landmarks(preprocessing, present))

    def intervals(self, model, preprocessing, alpha: float, present: np.ndarray | None = None) -> Intervals:
        """Conformal intervals at level ``1 - alpha`` from the stored calibration samples, for ``present``
        landmarks (all by default)."""
        x = self.calibration_landmarks(preprocessing, present)
        return Intervals.calibrate(predict_standardised(model, x), self.truth.astype(np.float32), x, self.difficulty, alpha)

    def reliability_for(self, model, preprocessing, present: np.ndarray | None = None) -> Reliability:
        """Reliability calls for a landmark panel (the stored calls for the full panel)."""
        if present is None or bool(np.all(present)):
            return self.reliability
        x = self.calibration_landmarks(preprocessing, present)
        return Reliability.measure(predict_standardised(model, x), self.truth.astype(np.float32))

    def to_dict(self) -> dict:
        out = {"reliability": self.reliability.to_dict(), "difficulty": self.difficulty.to_dict(),
               "calibration": {"raw": torch.from_numpy(self.raw), "truth": torch.from_numpy(self.truth)}}
        if self.shift is not None:
            out["shift"] = self.shift.to_dict()
        return out

    @classmethod
    def from_dict(cls, d: dict) -> "Trust":
        return cls(Reliability.from_dict(d["reliability"]), DifficultyModel.from_dict(d["difficulty"]),
                   d["calibration"]["raw"].numpy(), d["calibration"]["truth"].numpy(),
                   ShiftModel.from_dict(d["shift"]) if "shift" in d else None)
