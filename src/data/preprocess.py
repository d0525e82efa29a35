"""Preprocessing as pure functions on arrays: splitting and standardisation (numpy in, numpy out)."""

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
