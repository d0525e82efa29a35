"""Preprocessing as functions on arrays (numpy in, numpy out): splitting, standardisation, quantile
normalisation and rank mapping onto reference quantiles.

Everything works block by block over samples, so a GEO-sized matrix (10^5 samples x 10^4 genes) is
processed in place or with float64 accumulators the size of one gene vector, never a float64 copy.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from src.common.errors import InputError

BLOCK = 2048  # samples per block: a few tens of MB at 10^4 genes


def _blocks(n: int, size: int | None = None) -> Iterator[slice]:
    size = size or BLOCK
    for start in range(0, n, size):
        yield slice(start, min(start + size, n))


def find_unusable(block: np.ndarray, nonnegative: bool = False) -> tuple[str, int, int, int] | None:
    """The first problem among a block's values as ``(problem, count, row, column)``, or None.

    Non-finite values (NaN, inf) come first; with ``nonnegative`` (linear-scale input about to be
    log-transformed), negative values too.
    """
    for problem, bad in (("non-finite", ~np.isfinite(block)), ("negative", block < 0 if nonnegative else None)):
        if bad is not None and bad.any():
            r, c = np.argwhere(bad)[0]
            return problem, int(bad.sum()), int(r), int(c)
    return None


def check_values(
    block: np.ndarray,
    where: str,
    sample_ids: Sequence[str],
    feature_ids: Sequence[str],
    first_row: int = 0,
    nonnegative: bool = False,
    what: str = "",
    log2_key: str = "log2",
) -> None:
    """The one check of input values: raise an :class:`~src.common.errors.InputError` naming the file, the
    sample and the feature of the first non-finite (or, with ``nonnegative``, negative) value of a block;
    ``log2_key`` is the setting that asked for ``log2(x + 1)``, named in the fix.

    ``block`` holds rows ``first_row...`` of ``sample_ids`` and one column per entry of ``feature_ids``.
    Values are checked where they enter (reading a file block by block), never again later.
    """
    found = find_unusable(block, nonnegative=nonnegative)
    if found is None:
        return
    problem, count, r, c = found
    if problem == "negative":
        hint = f"expected linear-scale values >= 0 with {log2_key}=true (for log-scale data, pass {log2_key}=false)"
    else:
        problem, hint = "non-finite (NaN or infinite)", "expected finite values: missing values are not imputed; remove or fill them first"
    raise InputError(
        f"{where}: {count} {problem} {what + ' ' if what else ''}values among samples {first_row}-{first_row + len(block) - 1}, "
        f"first in sample {sample_ids[first_row + r]} feature {feature_ids[c]} ({block[r, c]}); {hint}"
    )


def log2p1(values: np.ndarray) -> np.ndarray:
    """``log2(x + 1)`` in float32: linear-scale expression (MAS5, RPKM) onto a log scale."""
    return np.log2(values + 1.0, dtype=np.float32)


def _listed(values) -> str:
    """Numbers as a command-line list: ``[0.8,0.1,0.1]``."""
    return "[" + ",".join(f"{v:g}" for v in np.asarray(values, dtype=float).ravel()) + "]"


def split_sizes(n: int, split: Sequence[float]) -> tuple[int, int, int]:
    """Train, val and test sizes for ``n`` samples from fractions or counts.

    * Fractions (all at most 1, summing to 1): the test split takes what rounding leaves.
    * Counts (e.g. the D-GEX paper's ``[88807, 11101, 11101]``): used as given when the data has at
      least their sum, with any surplus going to the test split ("the rest"); a smaller data set is
      split in the same proportions.

    Every split gets at least one sample.
    """
    split = np.asarray(split, dtype=float)
    if split.shape != (3,) or (split < 0).any() or split.sum() <= 0:
        raise InputError(f"data.split={_listed(split)}: expected three non-negative fractions or counts, e.g. data.split=[0.8,0.1,0.1]")
    counts = (split > 1).any()
    if not counts and not np.isclose(split.sum(), 1.0):
        raise InputError(f"data.split={_listed(split)}: fractions must sum to 1 (or give three sample counts), e.g. data.split=[0.8,0.1,0.1]")
    if n < 3:
        raise InputError(f"cannot split {n} samples into train, val and test; need at least 3")
    if counts and n >= split.sum():
        n_train, n_val = int(split[0]), int(split[1])
        return n_train, n_val, n - n_train - n_val
    fractions = split / split.sum()
    n_val = max(1, int(round(fractions[1] * n)))
    n_test = max(1, int(round(fractions[2] * n)))
    n_train = n - n_val - n_test
    if n_train < 1:
        raise InputError(f"data.split={_listed(split)} leaves no training samples out of {n}; e.g. data.split=[0.8,0.1,0.1]")
    return n_train, n_val, n_test


def split_indices(n: int, split: Sequence[float], seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Train/val/test sample indices from a seeded permutation of ``range(n)`` (sizes: :func:`split_sizes`)."""
    n_train, n_val, _ = split_sizes(n, split)
    order = np.random.default_rng(seed).permutation(n)
    return order[:n_train], order[n_train : n_train + n_val], order[n_train + n_val :]


def fold_indices(n: int, folds: int, fold: int, split: Sequence[float], seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """k-fold cross-validation: fold ``fold`` of ``folds`` (contiguous parts of a seeded permutation of
    ``range(n)``, sizes differing by at most one) is the test set; the other samples are split into
    train and val in the proportions of ``split``'s first two entries. Returns train, val, test indices.

    Every sample is a test sample in exactly one fold (the same permutation for every ``fold``).
    """
    if not (isinstance(folds, int) and folds >= 2):
        raise InputError(f"data.folds={folds}: expected an integer >= 2 (or null for one train/val/test split)")
    if not (isinstance(fold, int) and 0 <= fold < folds):
        raise InputError(f"data.fold={fold}: expected an integer from 0 to {folds - 1} (data.folds={folds})")
    if n < 2 * folds:
        raise InputError(f"cannot make {folds} folds of {n} samples; need at least {2 * folds}")
    order = np.random.default_rng(seed).permutation(n)
    parts = np.array_split(order, folds)
    test = parts[fold]
    rest = np.concatenate([p for i, p in enumerate(parts) if i != fold])
    train_share = float(split[0]) / (float(split[0]) + float(split[1]))
    n_val = max(1, int(round((1 - train_share) * len(rest))))
    return rest[: len(rest) - n_val], rest[len(rest) - n_val :], test


def permute_rows_(matrix: np.ndarray, order: np.ndarray) -> np.ndarray:
    """Reorder rows in place so that row ``i`` becomes the former row ``order[i]`` (one spare row of memory)."""
    order = np.asarray(order)
    if sorted(order.tolist()) != list(range(len(matrix))):
        raise ValueError(f"order must be a permutation of the {len(matrix)} rows")
    done = np.zeros(len(order), dtype=bool)
    for start in range(len(order)):
        if done[start]:
            continue
        spare, i = matrix[start].copy(), start
        while True:  # follow the cycle through start
            done[i] = True
            j = order[i]
            if j == start:
                matrix[i] = spare
                break
            matrix[i] = matrix[j]
            i = j
    return matrix


def column_moments(matrix: np.ndarray, rows: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Per-column mean and standard deviation over ``rows`` (all if None), in float64, block by block."""
    rows = np.arange(len(matrix)) if rows is None else np.asarray(rows)
    if len(rows) == 0:
        raise ValueError("cannot compute statistics of an empty set of samples")
    mean = np.zeros(matrix.shape[1])
    for part in _blocks(len(rows)):
        mean += matrix[rows[part]].sum(axis=0, dtype=np.float64)
    mean /= len(rows)
    var = np.zeros(matrix.shape[1])
    for part in _blocks(len(rows)):
        var += np.square(matrix[rows[part]] - mean).sum(axis=0)
    return mean, np.sqrt(var / len(rows))


@dataclass
class Standardizer:
    """Per-gene ``(x - mean) / (std + eps)`` with statistics of the training split only (D-GEX used eps=1e-3)."""

    mean: np.ndarray
    std: np.ndarray
    eps: float = 1e-3

    @classmethod
    def fit(cls, matrix: np.ndarray, rows: np.ndarray | None = None, eps: float = 1e-3) -> "Standardizer":
        """Statistics of ``matrix[rows]`` (all rows if None), computed without copying the matrix."""
        mean, std = column_moments(matrix, rows)
        return cls(mean.astype(np.float32), std.astype(np.float32), eps)

    def transform(self, values: np.ndarray) -> np.ndarray:
        return ((values - self.mean) / (self.std + self.eps)).astype(np.float32)

    def transform_(self, values: np.ndarray) -> np.ndarray:
        """Standardise a float32 array in place (no copy of a large split) and return it."""
        values -= self.mean
        values /= self.std + self.eps
        return values

    def inverse(self, values: np.ndarray) -> np.ndarray:
        return (values * (self.std + self.eps) + self.mean).astype(np.float32)


def reference_quantiles(matrix: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
    """Quantile normalisation's reference: the mean over samples (``rows``) of each sample's sorted values.

    ``matrix`` is samples x genes; the result has one value per rank (length n_genes, ascending).
    """
    rows = np.arange(len(matrix)) if rows is None else np.asarray(rows)
    if len(rows) == 0:
        raise ValueError("cannot compute reference quantiles from an empty set of samples")
    total = np.zeros(matrix.shape[1])
    for part in _blocks(len(rows)):
        total += np.sort(matrix[rows[part]], axis=1).sum(axis=0, dtype=np.float64)
    return total / len(rows)


def _rank_map_block(block: np.ndarray, cumulative: np.ndarray) -> np.ndarray:
    n_genes = block.shape[1]
    order = np.argsort(block, axis=1)
    ranked = np.take_along_axis(block, order, axis=1)
    new_run = np.ones(ranked.shape, dtype=bool)
    new_run[:, 1:] = ranked[:, 1:] != ranked[:, :-1]
    positions = np.broadcast_to(np.arange(n_genes), ranked.shape)
    # First rank of each position's run of equal values, and one past its last rank.
    starts = np.maximum.accumulate(np.where(new_run, positions, 0), axis=1)
    run_end = np.ones(ranked.shape, dtype=bool)
    run_end[:, :-1] = new_run[:, 1:]
    ends = np.minimum.accumulate(np.where(run_end, positions + 1, n_genes)[:, ::-1], axis=1)[:, ::-1]
    values = (cumulative[ends] - cumulative[starts]) / (ends - starts)
    out = np.empty(block.shape, dtype=np.float32)
    np.put_along_axis(out, order, values.astype(np.float32), axis=1)
    return out


def rank_map(matrix: np.ndarray, reference: np.ndarray, out: np.ndarray | None = None, progress=None) -> np.ndarray:
    """Replace each sample's values by the reference value of their rank within the sample.

    Tied values share the mean of the reference values over their ranks (so, e.g., all zero RPKM
    values of a sample map to one value). This is quantile normalisation when ``reference`` comes
    from the same samples, and D-GEX's mapping of RNA-seq profiles onto the microarray quantiles when
    it comes from GEO. Works in blocks of samples; ``out=matrix`` maps in place. ``progress(n)`` is
    called after each block with the number of samples done.
    """
    reference = np.asarray(reference, dtype=np.float64)
    if matrix.ndim != 2 or matrix.shape[1] != len(reference):
        raise ValueError(f"rank_map: {matrix.shape} matrix against {len(reference)} reference quantiles")
    cumulative = np.concatenate([[0.0], np.cumsum(reference)])
    out = np.empty(matrix.shape, dtype=np.float32) if out is None else out
    for part in _blocks(len(matrix), 512):
        out[part] = _rank_map_block(np.asarray(matrix[part]), cumulative)
        if progress is not None:
            progress(part.stop - part.start)
    return out


def quantile_normalize(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Quantile-normalise samples (rows) onto their mean sorted profile; returns (values, reference)."""
    reference = reference_quantiles(matrix)
    return rank_map(matrix, reference), reference
