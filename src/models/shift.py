"""How unlike the training data a profile is, and intervals that widen with it.

**The shift score** of a profile is the squared Mahalanobis distance of its standardised landmarks (the
network's input, through the deployed path) under a probabilistic PCA model of the training data's
landmarks (Tipping & Bishop, *J R Stat Soc B* 61:611, 1999; the Mahalanobis distance as a detector of
inputs unlike the training data: Lee et al., NeurIPS 2018): the ``k`` leading principal directions come
from the training split; the variance along each of them and the variance left off them (per landmark)
are measured on the validation split, held out from the directions, so that a held-out profile of the
training cohort scores like any other (with fewer training samples than landmarks the training split's own
residual variance is zero). ``score = sum_j z_j^2 / v_j + |r|^2 / s^2``: ``z`` the profile's coordinates
along the directions, ``v`` their variances, ``r`` what the directions leave, ``s^2`` its variance.

**The p-value** of a score is its rank among the calibration split's own scores (profiles that neither
fitted the directions nor the weights): ``(1 + #{calibration scores >= score}) / (n + 1)``, a conformal
p-value, exact when the profile is exchangeable with the calibration profiles (Vovk et al. 2005). With
``n`` calibration profiles it cannot go below ``1 / (n + 1)``; beyond the largest calibration score, a gamma
distribution fitted to the calibration scores (what a squared distance of Gaussian data follows) gives the
tail: ``p = min(1 / (n + 1), gamma survival)``. So a cohort's own held-out profiles are flagged at ``p < 0.01``
about 1% of the time, whatever ``n``.

**What it catches and what it cannot.** It sees the landmarks only: another platform, tissue, cell type,
batch or normalisation moves profiles off the training landmarks' principal subspace or far along it. A
shift in how the targets relate to the landmarks (the same landmark profile, other target levels) leaves the
score unchanged: only measured profiles of the new cohort (``calibrate_with=``) reveal that.

**Shift-weighted intervals** (weighted split conformal under covariate shift: Tibshirani, Barber, Candès
& Ramdas, NeurIPS 2019): each calibration score is weighted by an estimated likelihood ratio
``w(x) = dP_input / dP_training`` (a logistic regression telling calibration from input profiles by their
shift score's two terms, along and off the principal directions), and a profile's interval is the weighted ``1 - alpha`` quantile of the
calibration scores with the profile's own weight on an infinite score. Where the input resembles the
calibration profiles the intervals are the usual ones; where no calibration profile resembles it, they
widen, up to unbounded (``inf``) when the classifier separates the two completely: an honest "we do not
know", not a calibrated interval.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.linalg
import torch
from scipy import stats

MAX_COMPONENTS = 50  # principal directions kept (fewer with fewer training samples)
MAX_FIT_SAMPLES = 20_000  # training profiles the directions are fitted on (an even subsample beyond)
FLAG_P = 0.01  # a profile is "unlike the training data" below this p-value
WEIGHT_BINS = 16  # profiles grouped by weight for the weighted quantiles (each bin uses its largest weight)


def fit_rows(n: int) -> np.ndarray:
    """The training rows the directions are fitted on: all ``n``, or an even subsample of :data:`MAX_FIT_SAMPLES`."""
    return np.linspace(0, n - 1, MAX_FIT_SAMPLES).astype(int) if n > MAX_FIT_SAMPLES else np.arange(n)


@dataclass
class ShiftModel:
    """Principal directions of the training landmarks and the held-out variances along and off them."""

    mean: np.ndarray  # (landmarks,)
    components: np.ndarray  # (k, landmarks), orthonormal rows
    variances: np.ndarray  # (k,), along each direction, on held-out profiles
    residual_variance: float  # per landmark, off the directions, on held-out profiles

    @classmethod
    def fit(cls, train: np.ndarray, heldout: np.ndarray, k: int = MAX_COMPONENTS) -> "ShiftModel":
        """Directions from ``train`` (samples x landmarks, standardised), variances from ``heldout``."""
        if len(train) > MAX_FIT_SAMPLES:  # a subsample first: the training split may be larger than memory
            train = train[fit_rows(len(train))]
        train = np.asarray(train, np.float64)
        mean = train.mean(0)
        p = train.shape[1]
        k = max(1, min(k, len(train) - 1, p - 1))
        # The leading eigenvectors of the training landmarks' scatter matrix (the right singular vectors of the
        # centred matrix), only the k wanted: a fraction of a full SVD's time.
        centred = train - mean
        _, vectors = scipy.linalg.eigh(centred.T @ centred, subset_by_index=[p - k, p - 1])
        components = vectors[:, ::-1].T
        model = cls(mean.astype(np.float32), components.astype(np.float32), np.ones(k, np.float32), 1.0)
        z, residual = model._project(np.asarray(heldout, np.float64))
        floor = 1e-6
        model.variances = np.maximum(np.mean(z**2, 0), floor).astype(np.float32)
        model.residual_variance = float(max(np.mean(residual) / max(train.shape[1] - k, 1), floor))
        return model

    def _project(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Coordinates along the directions and the squared norm of what they leave, per profile."""
        centred = np.asarray(x, np.float64) - self.mean
        z = centred @ self.components.T.astype(np.float64)
        residual = np.maximum((centred**2).sum(1) - (z**2).sum(1), 0.0)
        return z, residual

    def parts(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The score's two terms per profile: along the principal directions and off them."""
        z, residual = self._project(x)
        return (z**2 / self.variances).sum(1), residual / self.residual_variance

    def features(self, x: np.ndarray) -> np.ndarray:
        """What the weighting classifier sees: the log of the score's two terms (two features, so that a few
        dozen profiles fit it without separating a cohort from itself by chance)."""
        along, off = self.parts(x)
        return np.column_stack([np.log1p(along), np.log1p(off)])

    def score(self, x: np.ndarray) -> np.ndarray:
        """The shift score of each profile of ``x`` (samples x landmarks, standardised)."""
        along, off = self.parts(x)
        return (along + off).astype(np.float64)

    def to_dict(self) -> dict:
        return {"mean": torch.from_numpy(self.mean), "components": torch.from_numpy(self.components),
                "variances": torch.from_numpy(self.variances), "residual_variance": self.residual_variance}

    @classmethod
    def from_dict(cls, d: dict) -> "ShiftModel":
        return cls(d["mean"].numpy(), d["components"].numpy(), d["variances"].numpy(), float(d["residual_variance"]))


@dataclass
class ShiftTest:
    """Shift scores turned into p-values against the calibration profiles' own scores."""

    model: ShiftModel
    reference: np.ndarray  # calibration scores, sorted
    tail: tuple[float, float]  # gamma shape and scale fitted to the reference

    @classmethod
    def against(cls, model: ShiftModel, calibration: np.ndarray) -> "ShiftTest":
        """The test of ``model``'s scores against the standardised landmarks of the calibration profiles."""
        reference = np.sort(model.score(calibration))
        shape, _, scale = stats.gamma.fit(reference, floc=0) if len(reference) > 2 else (1.0, 0.0, max(reference.mean(), 1e-6))
        return cls(model, reference, (float(shape), float(scale)))

    def p_values(self, scores: np.ndarray) -> np.ndarray:
        """Conformal p-values of ``scores``, with the gamma tail beyond the largest calibration score."""
        n = len(self.reference)
        above = n - np.searchsorted(self.reference, scores, side="left")
        p = (1.0 + above) / (n + 1.0)
        beyond = scores > self.reference[-1]
        p[beyond] = np.minimum(1.0 / (n + 1.0), stats.gamma.sf(scores[beyond], self.tail[0], scale=self.tail[1]))
        return p

    def percentiles(self, scores: np.ndarray) -> np.ndarray:
        """The share (in %) of calibration profiles scoring below each score."""
        return 100.0 * np.searchsorted(self.reference, scores, side="left") / len(self.reference)

    def test(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(score, p_value, percentile)`` of each profile of ``x`` (standardised landmarks)."""
        scores = self.model.score(x)
        return scores, self.p_values(scores), self.percentiles(scores)


def likelihood_ratio(model: ShiftModel, calibration: np.ndarray, inputs: np.ndarray, seed: int = 0):
    """``w(x) = dP_input / dP_calibration`` estimated by a logistic regression telling the calibration
    profiles from the input profiles (the classifier odds times ``n_calibration / n_input``); returns the
    function and the weights of the calibration profiles."""
    from sklearn.linear_model import LogisticRegression

    a, b = model.features(calibration), model.features(inputs)
    classifier = LogisticRegression(C=1.0, max_iter=1000, random_state=seed)
    classifier.fit(np.vstack([a, b]), np.r_[np.zeros(len(a)), np.ones(len(b))])
    ratio = len(a) / len(b)

    def weight(x_features: np.ndarray) -> np.ndarray:
        logit = np.clip(classifier.decision_function(x_features), -30, 30)
        return np.exp(logit) * ratio

    return weight, weight(a)


class WeightedQuantiles:
    """Per gene, the weighted ``1 - alpha`` quantile of calibration scores (profiles x genes) with the
    calibration profiles' weights and an input profile's own weight on ``+inf`` (Tibshirani et al. 2019, eq. 7)."""

    def __init__(self, scores: np.ndarray, weights: np.ndarray):
        order = np.argsort(scores, axis=0)
        self.sorted = np.take_along_axis(np.asarray(scores, np.float32), order, axis=0)
        self.cumulative = np.cumsum(np.asarray(weights, np.float64)[order], axis=0).astype(np.float32)

    def __call__(self, input_weights: np.ndarray, alpha: float) -> np.ndarray:
        """Quantiles (inputs x genes; ``inf`` where the calibration mass cannot reach ``1 - alpha``). Inputs are
        grouped into at most :data:`WEIGHT_BINS` bins by weight, each computed at its largest weight (wider,
        never narrower, than its own)."""
        total = self.cumulative[-1]
        edges = np.unique(np.quantile(input_weights, np.linspace(0, 1, WEIGHT_BINS + 1)))
        bins = np.clip(np.searchsorted(edges, input_weights, side="left"), 0, len(edges) - 1)
        out = np.empty((len(input_weights), self.sorted.shape[1]), np.float32)
        genes = np.arange(self.sorted.shape[1])
        for b in np.unique(bins):
            needed = (1 - alpha) * (total + edges[b])  # weight of the scores at or below the quantile
            index = (self.cumulative < needed[None, :] * (1 - 1e-6)).sum(0)  # first sorted position reaching it
            finite = index < len(self.sorted)
            q = np.full(len(genes), np.inf, np.float32)
            q[finite] = self.sorted[index[finite], genes[finite]]
            out[bins == b] = q
        return out


class WeightedIntervals:
    """Split-conformal intervals weighted under covariate shift (see the module docstring): constant
    (``|y - f(x)|``) and adaptive (``|y - f(x)| / u(x)``) scores of the calibration profiles, each weighted by the
    estimated likelihood ratio of the input cohort to the training cohort at the calibration profile."""

    def __init__(self, shift: ShiftModel, calibration_x: np.ndarray, residual: np.ndarray, difficulty,
                 input_x: np.ndarray, alpha: float, seed: int = 0):
        self.shift, self.difficulty, self.alpha = shift, difficulty, alpha
        self.weight, calibration_weights = likelihood_ratio(shift, calibration_x, input_x, seed)
        u = difficulty(calibration_x)[:, None]
        self.constant = WeightedQuantiles(residual, calibration_weights)
        self.adaptive = WeightedQuantiles(residual / u, calibration_weights)
        self.effective_samples = float(calibration_weights.sum() ** 2 / max((calibration_weights**2).sum(), 1e-300))

    def half_width(self, x: np.ndarray, adaptive: bool = True) -> np.ndarray:
        """Half-widths (samples x genes) for standardised landmarks ``x``; ``inf`` where no calibration
        profile resembles the input enough."""
        w = self.weight(self.shift.features(x))
        if adaptive:
            return self.adaptive(w, self.alpha) * self.difficulty(x)[:, None]
        return self.constant(w, self.alpha)


def share_flagged(p_values: np.ndarray, level: float = FLAG_P) -> tuple[int, int]:
    """How many of the profiles have ``p < level``, and how many there are."""
    return int(np.sum(p_values < level)), len(p_values)

