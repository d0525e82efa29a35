"""Missing landmarks filled from the present ones: the Gaussian conditional expectation.

Fitted on the training split's standardised landmarks (mean 0 by construction): with ``S`` their
covariance, the missing landmarks ``m`` of a profile whose landmarks ``p`` were measured are
estimated as ``E[x_m | x_p] = S_mp (S_pp + lambda I)^-1 x_p``, the best linear predictor (exact for
Gaussian data). ``lambda`` (a small ridge, relative to the mean variance) keeps the solve stable when
landmarks are collinear. One solve per panel, then one matrix product per block of profiles.
"""

from __future__ import annotations

import numpy as np
import torch

from src.common.errors import InputError

RIDGE = 1e-2


class LandmarkImputer:
    """Fill missing standardised landmarks from the present ones (see the module docstring)."""

    def __init__(self, covariance: np.ndarray, ridge: float = RIDGE):
        self.covariance = np.asarray(covariance, dtype=np.float32)
        self.ridge = float(ridge)
        self._panel: tuple[bytes, np.ndarray] | None = None

    @classmethod
    def fit(cls, standardised: np.ndarray, rows: np.ndarray | None = None, block: int = 4096) -> "LandmarkImputer":
        """Covariance of the standardised training landmarks ``standardised[rows]`` (samples x landmarks),
        accumulated in float64 blocks (no copy of the training matrix; anything indexable by rows with a
        ``shape`` will do, e.g. a matrix on disk)."""
        x = standardised if hasattr(standardised, "shape") else np.asarray(standardised)
        rows = np.arange(len(x)) if rows is None else np.asarray(rows)
        mean = np.zeros(x.shape[1])
        gram = np.zeros((x.shape[1], x.shape[1]))
        for start in range(0, len(rows), block):
            part = x[rows[start : start + block]].astype(np.float64)
            mean += part.sum(0)
            gram += part.T @ part
        mean /= len(rows)
        return cls(gram / len(rows) - np.outer(mean, mean))

    def weights(self, present: np.ndarray) -> np.ndarray:
        """``S_mp (S_pp + lambda I)^-1`` for the panel ``present`` (cached for the last panel asked)."""
        present = np.asarray(present, dtype=bool)
        key = present.tobytes()
        if self._panel is None or self._panel[0] != key:
            s = self.covariance.astype(np.float64)
            s_pp = s[np.ix_(present, present)]
            lam = self.ridge * float(np.mean(np.diag(s_pp))) if present.any() else 0.0
            w = np.linalg.solve(s_pp + lam * np.eye(len(s_pp)), s[np.ix_(present, ~present)]).T
            self._panel = (key, w.astype(np.float32))
        return self._panel[1]

    def impute(self, standardised: np.ndarray, present: np.ndarray) -> np.ndarray:
        """A copy of ``standardised`` (samples x landmarks) with the columns not ``present`` filled in."""
        present = np.asarray(present, dtype=bool)
        out = np.array(standardised, dtype=np.float32)
        if present.all():
            return out
        if not present.any():
            raise InputError("no landmark is present: nothing to impute the others from")
        out[:, ~present] = out[:, present] @ self.weights(present).T
        return out

    def to_dict(self) -> dict:
        return {"covariance": torch.from_numpy(self.covariance), "ridge": self.ridge}

    @classmethod
    def from_dict(cls, d: dict) -> "LandmarkImputer":
        return cls(d["covariance"].numpy(), d.get("ridge", RIDGE))
