"""Trust recalibrated for another cohort from a few of its profiles with the targets measured.

A model's intervals and reliability calls are calibrated on held-out profiles of its training cohort
(:mod:`src.models.trust`); on another cohort they do not transfer (a GEUVADIS model's 0.9 intervals covered
0.31 of another cell type's values). Given ``n`` profiles of the new cohort with their targets measured
(``src.predict calibrate_with=FILE``), everything is calibrated again on them:

- **Location and scale** (``adjust=location`` or ``location_scale``, optional): each target gene's standardised
  prediction is mapped to ``a_g + b_g f(x)``, ``a`` and ``b`` from a least-squares fit of the measured values on
  the predictions (``location``: ``b = 1``, ``a`` the mean difference). This is what D-GEX's cross-platform
  protocol does with a calibration part of the new platform's data (Chen et al., *Bioinformatics* 32:1832,
  2016: GEO-trained models applied to 1000 Genomes RNA-seq). The conformal scores are then leave-one-out
  residuals of that fit (closed form: ``e_i n / (n - 1)`` after centring, ``e_i / (1 - h_ii)`` for a line), so that
  no profile scores its own correction (the jackknife; Barber et al., *Ann Stat* 49:486, 2021).
- **Intervals**: split conformal on the ``n`` profiles (:func:`~src.models.trust.conformal_quantile`). *Per gene*
  when ``n >= PER_GENE_MIN`` (50); below, *pooled across genes*: each gene's scores divided by its held-out MAE
  on the training cohort and one quantile taken over all genes' scores, the interval ``f(x) -+ q * mae_g``.
  Why: with 20 profiles a per-gene 0.9 quantile is the 19th of 20 scores, whose coverage varies from gene to
  gene with sd 0.065 and whose width is set by one or two profiles; pooling takes one quantile from 20 x
  10,000 scores and keeps the genes' relative widths from the training cohort. The price: pooled intervals
  cover ``1 - alpha`` on average over genes, not for every gene.
- **Minimum profiles.** A per-gene split-conformal interval at level ``1 - alpha`` is finite from
  ``n >= (1 - alpha) / alpha`` profiles on (9 for 0.9: the ``ceil(0.9 (n + 1))``-th of ``n`` scores must exist).
  Pooled intervals are finite from one profile on, but below that minimum they carry no guarantee
  (``guaranteed`` false, said in the log); with no profile the command refuses.
- **Reliability** is measured again on the ``n`` profiles (:class:`~src.models.trust.Reliability`): with few
  profiles few correlations reach significance, so few genes are called reliable: honest, not conservative by
  design.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from src.common.errors import InputError
from src.models.trust import DifficultyModel, Intervals, Reliability, conformal_quantile

PER_GENE_MIN = 50  # profiles from which intervals are calibrated per gene instead of pooled across genes
ADJUSTMENTS = ("none", "location", "location_scale")


@dataclass
class Adjustment:
    """A per-gene affine correction of standardised predictions, ``offset + slope * prediction``."""

    offset: np.ndarray
    slope: np.ndarray

    def __call__(self, standardised: np.ndarray) -> np.ndarray:
        return (self.offset + self.slope * standardised).astype(np.float32)


def fit_adjustment(pred: np.ndarray, truth: np.ndarray, kind: str) -> tuple[Adjustment | None, np.ndarray]:
    """The correction ``kind`` (see :data:`ADJUSTMENTS`) fitted per gene, and the leave-one-out residuals of
    each profile (profiles x genes; the plain residuals ``truth - pred`` for ``none``)."""
    pred, truth = np.asarray(pred, np.float64), np.asarray(truth, np.float64)
    n = len(pred)
    residual = truth - pred
    if kind == "none":
        return None, residual
    if n < 3:
        raise InputError(f"adjust={kind}: a correction per gene needs at least 3 measured profiles, got {n}; "
                         "pass adjust=none or measure more profiles")
    if kind == "location":
        offset = residual.mean(0)
        loo = (residual - offset) * n / (n - 1)  # each profile's residual against the mean of the others
        return Adjustment(offset.astype(np.float32), np.ones(pred.shape[1], np.float32)), loo
    centred = pred - pred.mean(0)
    sxx = (centred**2).sum(0)
    flat = sxx <= 1e-12 * n  # a gene predicted constant: location only
    slope = np.where(flat, 1.0, (centred * (truth - truth.mean(0))).sum(0) / np.where(flat, 1.0, sxx))
    offset = truth.mean(0) - slope * pred.mean(0)
    fitted = truth - (offset + slope * pred)
    leverage = 1.0 / n + np.where(flat, 0.0, centred**2 / np.where(flat, 1.0, sxx))
    loo = fitted / np.maximum(1.0 - leverage, 1.0 / n)
    return Adjustment(offset.astype(np.float32), slope.astype(np.float32)), loo


@dataclass
class CohortCalibration:
    """Intervals, reliability and the optional correction, calibrated on a new cohort's measured profiles."""

    intervals: Intervals
    reliability: Reliability
    adjustment: Adjustment | None
    pooled: bool
    n_profiles: int
    bias: float = 0.0  # mean over genes of |mean(truth - prediction)| on the measured profiles (standardised)

    @classmethod
    def fit(cls, pred: np.ndarray, truth: np.ndarray, x: np.ndarray, difficulty: DifficultyModel, alpha: float,
            gene_scale: np.ndarray, adjust: str = "none", seed: int = 0) -> "CohortCalibration":
        """From standardised predictions ``pred``, measured ``truth`` (profiles x genes; NaN where a gene was not
        measured) and the profiles' standardised landmarks ``x``; ``gene_scale`` (each gene's held-out MAE on the
        training cohort) sets the genes' relative widths when pooling."""
        n = len(pred)
        if n == 0:
            raise InputError("calibrate_with: the file holds no profiles; expected profiles of the new cohort with "
                             "their target genes measured")
        measured = ~np.isnan(truth).any(0)
        if not measured.any():
            raise InputError("calibrate_with: none of the model's target genes is measured in every profile of the "
                             "file; expected the target genes as features, with values")
        adjustment, residual = fit_adjustment(pred[:, measured], truth[:, measured], adjust)
        if adjustment is not None:  # genes not measured keep their predictions
            offset, slope = np.zeros(truth.shape[1], np.float32), np.ones(truth.shape[1], np.float32)
            offset[measured], slope[measured] = adjustment.offset, adjustment.slope
            adjustment = Adjustment(offset, slope)
        scores = np.abs(residual).astype(np.float32)
        u = difficulty(x)[:, None]
        pooled = n < PER_GENE_MIN
        scale = np.maximum(np.asarray(gene_scale, np.float32), 1e-6)
        constant = np.empty(truth.shape[1], np.float32)
        adaptive = np.empty(truth.shape[1], np.float32)
        for out, divided in ((constant, scores), (adaptive, scores / u)):
            # Pooled: one quantile of every measured gene's scores in units of the gene's scale.
            pooled_q, pooled_ok = conformal_quantile((divided / scale[measured]).reshape(-1, 1), alpha)
            out[:] = pooled_q[0] * scale  # genes not measured: the pooled width
            if not pooled:
                out[measured], ok = conformal_quantile(divided, alpha)
        guaranteed = n >= minimum_profiles(alpha)
        intervals = Intervals(alpha, constant, adaptive, difficulty, guaranteed, n)
        adjusted = adjustment(pred) if adjustment is not None else pred
        reliability = Reliability.measure(np.where(measured, adjusted, 0.0), np.where(measured, truth, 0.0), seed)
        reliability.reliable &= measured
        bias = float(np.mean(np.abs((truth[:, measured] - pred[:, measured]).mean(0))))
        return cls(intervals, reliability, adjustment, pooled, n, bias)

    def describe(self) -> str:
        """One line for the log and the provenance."""
        how = ("pooled across genes (scaled by each gene's held-out MAE)" if self.pooled
               else "per gene")
        text = (f"recalibrated on {self.n_profiles} measured profiles of the new cohort: intervals {how}, "
                f"{int(self.reliability.reliable.sum())} genes reliable")
        if self.adjustment is None and self.bias > 0.5:
            text += (f"; the predictions are off by {self.bias:.2f} sd per gene on average for this cohort (another "
                     "platform or scale?): adjust=location_scale corrects that and narrows the intervals")
        if not self.intervals.guaranteed:
            text += (f"; fewer than {minimum_profiles(self.intervals.alpha)} profiles: no conformal guarantee at "
                     f"level {1 - self.intervals.alpha:g}")
        return text


def minimum_profiles(alpha: float) -> int:
    """The fewest profiles for which a per-gene split-conformal interval at level ``1 - alpha`` is finite:
    ``ceil((n + 1)(1 - alpha)) <= n``, i.e. ``n >= (1 - alpha) / alpha`` (9 for a 0.9 interval)."""
    return int(np.ceil((1 - alpha) / alpha - 1e-9))
