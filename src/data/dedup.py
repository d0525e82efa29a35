"""Removal of near-duplicate expression profiles, as D-GEX prepared the GEO compendium."""

from __future__ import annotations

import numpy as np
from sklearn.cluster import MiniBatchKMeans


def near_duplicates_kept(
    profiles: np.ndarray, n_clusters: int = 100, threshold: float = 1.0, seed: int = 0, chunk: int = 4096
) -> np.ndarray:
    """Indices (ascending) of the profiles to keep after D-GEX's duplicate removal.

    Profiles (samples x genes) are grouped by MiniBatchKMeans into ``n_clusters`` clusters; within a
    cluster, profiles are visited in their original order and one is dropped when it lies within
    Euclidean distance ``threshold`` of a profile already kept. Clustering only limits which pairs
    are compared (near duplicates almost always share a cluster).
    """
    profiles = np.asarray(profiles, dtype=np.float32)
    n = len(profiles)
    if n == 0:
        return np.arange(0)
    k = min(n_clusters, n)
    labels = MiniBatchKMeans(n_clusters=k, random_state=seed, batch_size=min(chunk, n), n_init=3).fit_predict(profiles)
    keep = []
    for cluster in range(k):
        members = np.flatnonzero(labels == cluster)
        kept: list[int] = []
        for i in members:
            if kept:
                distances = np.linalg.norm(profiles[kept] - profiles[i], axis=1)
                if distances.min() <= threshold:
                    continue
            kept.append(int(i))
        keep += kept
    return np.sort(np.array(keep, dtype=np.int64))
