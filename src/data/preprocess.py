"""Preprocessing as pure functions on arrays (numpy in, numpy out): splitting, standardisation,
quantile normalisation and rank mapping onto reference quantiles."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def split_indices(n: int, fractions: tuple[float, float, float] | list[float], seed: int) -> tuple[np.ndarray, ...]:
    """Train/val/test sample indices from a seeded permutation of ``range(n)``.

    ``fractions`` are the train, val and test shares (they must sum to 1). Each split gets at least
    one sample; the test split takes what rounding leaves.
    """
    fractions = np.asarray(fractions, dtype=float)
    if fractions.shape != (3,) or (fractions < 0).any() or not np.isclose(fractions.sum(), 1.0):
        raise ValueError(f"split fractions must be three non-negative numbers summing to 1, got {fractions.tolist()}")
    if n < 3:
        raise ValueError(f"cannot split {n} samples into train, val and test; need at least 3")
    n_val = max(1, int(round(fractions[1] * n)))
    n_test = max(1, int(round(fractions[2] * n)))
    n_train = n - n_val - n_test
    if n_train < 1:
        raise ValueError(f"split fractions {fractions.tolist()} leave no training samples out of {n}")
    order = np.random.default_rng(seed).permutation(n)
    return order[:n_train], order[n_train : n_train + n_val], order[n_train + n_val :]


@dataclass
class Standardizer:
    """Per-gene ``(x - mean) / (std + eps)`` with statistics of the training split only (D-GEX used eps=1e-3)."""

    mean: np.ndarray
    std: np.ndarray
    eps: float = 1e-3

    @classmethod
    def fit(cls, train: np.ndarray, eps: float = 1e-3) -> "Standardizer":
        train = np.asarray(train, dtype=np.float64)
        return cls(train.mean(axis=0).astype(np.float32), train.std(axis=0).astype(np.float32), eps)

    def transform(self, values: np.ndarray) -> np.ndarray:
        return ((values - self.mean) / (self.std + self.eps)).astype(np.float32)

    def inverse(self, values: np.ndarray) -> np.ndarray:
        return (values * (self.std + self.eps) + self.mean).astype(np.float32)


def reference_quantiles(matrix: np.ndarray) -> np.ndarray:
    """Quantile normalisation's reference: the mean over samples of each sample's sorted values.

    ``matrix`` is samples x genes; the result has one value per rank (length n_genes, ascending).
    """
    return np.sort(np.asarray(matrix, dtype=np.float64), axis=1).mean(axis=0)


def rank_map(matrix: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Replace each sample's values by the reference value of their rank within the sample.

    Tied values share the mean of the reference values over their ranks (so, e.g., all zero RPKM
    values of a sample map to one value). This is quantile normalisation when ``reference`` comes
    from the same samples, and D-GEX's mapping of RNA-seq profiles onto the microarray quantiles when
    it comes from GEO.
    """
    matrix = np.asarray(matrix)
    reference = np.asarray(reference, dtype=np.float64)
    if matrix.ndim != 2 or matrix.shape[1] != len(reference):
        raise ValueError(f"rank_map: {matrix.shape} matrix against {len(reference)} reference quantiles")
    cumulative = np.concatenate([[0.0], np.cumsum(reference)])
    out = np.empty(matrix.shape, dtype=np.float32)
    for i, row in enumerate(matrix):
        order = np.argsort(row, kind="stable")
        sorted_row = row[order]
        # Start and end (exclusive) rank of each run of equal values.
        starts = np.flatnonzero(np.r_[True, sorted_row[1:] != sorted_row[:-1]])
        ends = np.r_[starts[1:], len(row)]
        run_means = (cumulative[ends] - cumulative[starts]) / (ends - starts)
        out[i, order] = np.repeat(run_means, ends - starts)
    return out


def quantile_normalize(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Quantile-normalise samples (rows) onto their mean sorted profile; returns (values, reference)."""
    reference = reference_quantiles(matrix)
    return rank_map(matrix, reference), reference
