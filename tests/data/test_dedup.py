import numpy as np

from src.data.dedup import near_duplicates_kept


def _direct(profiles, labels, threshold):
    keep = []
    for cluster in np.unique(labels):
        kept = []
        for i in np.flatnonzero(labels == cluster):
            if all(np.sqrt(((profiles[i] - profiles[j]) ** 2).sum()) > threshold for j in kept):
                kept.append(i)
        keep += kept
    return sorted(keep)


def test_near_duplicates_are_dropped_and_distinct_profiles_kept():
    rng = np.random.default_rng(0)
    base = rng.normal(0, 5, size=(40, 30)).astype(np.float32)
    copies = base[:10] + rng.normal(0, 0.05, size=(10, 30)).astype(np.float32)  # distance ~0.3 < 1
    profiles = np.concatenate([base, copies])
    keep = near_duplicates_kept(profiles, n_clusters=5, threshold=1.0)
    assert list(keep) == list(range(40))  # every copy goes, every original stays


def test_matches_a_direct_computation_within_one_cluster():
    rng = np.random.default_rng(1)
    profiles = rng.normal(0, 0.6, size=(60, 4)).astype(np.float32)  # many pairs closer than 1
    keep = near_duplicates_kept(profiles, n_clusters=1, threshold=1.0)
    assert list(keep) == _direct(profiles, np.zeros(60, dtype=int), 1.0)
    assert 0 < len(keep) < 60


def test_matches_the_direct_computation_across_blocks_with_chains_of_near_profiles():
    from src.data.dedup import _first_of_each_near_group

    rng = np.random.default_rng(2)
    walk = np.cumsum(rng.normal(0, 0.45, size=(1300, 3)), axis=0).astype(np.float32) + 50  # far from 0
    kept = _first_of_each_near_group(walk, threshold=1.0, block=256)
    assert list(kept) == _direct(walk, np.zeros(1300, dtype=int), 1.0)
