"""Removal of near-duplicate expression profiles, as D-GEX prepared the GEO compendium."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np


def near_duplicates_kept(
    profiles: np.ndarray,
    n_clusters: int = 100,
    threshold: float = 1.0,
    seed: int = 0,
    batch_size: int = 4096,
    progress: Callable[[int], None] | None = None,
) -> np.ndarray:
    """Indices (ascending) of the profiles to keep after D-GEX's duplicate removal.

    Profiles (samples x genes) are grouped by MiniBatchKMeans into ``n_clusters`` clusters; within a
    cluster, profiles are visited in their original order and one is dropped when it lies within
    Euclidean distance ``threshold`` of a profile already kept. Clustering only limits which pairs
    are compared (near duplicates almost always share a cluster). ``progress(n)`` is called after each
    cluster with its number of profiles.
    """
    profiles = np.asarray(profiles, dtype=np.float32)
    n = len(profiles)
    if n == 0:
        return np.arange(0)
    k = min(n_clusters, n)
    from sklearn.cluster import MiniBatchKMeans  # imported on use: it adds half a second to every command's start

    kmeans = MiniBatchKMeans(n_clusters=k, random_state=seed, batch_size=min(batch_size, n), n_init=1)
    labels = kmeans.fit_predict(profiles)
    keep = []
    for cluster in range(k):
        members = np.flatnonzero(labels == cluster)
        if len(members):
            keep.append(members[_first_of_each_near_group(profiles[members], threshold)])
        if progress is not None:
            progress(len(members))
    return np.sort(np.concatenate(keep))


def _first_of_each_near_group(x: np.ndarray, threshold: float, block: int = 512) -> np.ndarray:
    """Positions in ``x`` kept by the greedy pass: a row goes if a kept earlier row is within ``threshold``.

    Pairs closer than the threshold are found with one matrix product per block of rows (on centred
    rows, with a safety margin for float32 rounding) and then confirmed with exact float64 distances.
    """
    x = x - x.mean(axis=0)
    sq = np.einsum("ij,ij->i", x, x, dtype=np.float64)
    m = len(x)
    covered = np.zeros(m, dtype=bool)
    kept = []
    for start in range(0, m, block):
        rows = slice(start, min(start + block, m))
        d2 = sq[rows, None] + sq[None, :] - 2.0 * (x[rows] @ x.T)
        limit = threshold**2 + 1e-4 * (sq[rows, None] + sq[None, :]) + 1e-6
        r, c = np.nonzero(d2 <= limit)
        r = r + start
        later = c > r  # a row only ever removes rows after it
        r, c = r[later], c[later]
        exact = np.sqrt(np.square(x[r].astype(np.float64) - x[c]).sum(axis=1)) <= threshold
        r, c = r[exact], c[exact]
        bounds = np.searchsorted(r, np.arange(rows.start, rows.stop + 1))
        for i in range(rows.start, rows.stop):
            if not covered[i]:
                kept.append(i)
                covered[c[bounds[i - start] : bounds[i - start + 1]]] = True
    return np.array(kept, dtype=np.int64)
