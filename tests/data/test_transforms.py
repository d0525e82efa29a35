import numpy as np
import pytest

from src.data.transforms import Standardizer, split_indices


def test_split_is_a_seeded_partition_with_the_requested_sizes():
    train, val, test = split_indices(1000, (0.8, 0.1, 0.1), seed=4)
    assert (len(train), len(val), len(test)) == (800, 100, 100)
    assert sorted(np.concatenate([train, val, test])) == list(range(1000))
    again = split_indices(1000, (0.8, 0.1, 0.1), seed=4)
    assert all((a == b).all() for a, b in zip((train, val, test), again))
    assert not (split_indices(1000, (0.8, 0.1, 0.1), seed=5)[0] == train).all()


@pytest.mark.parametrize("fractions", [(0.5, 0.5), (0.9, 0.2, 0.1), (1.2, -0.1, -0.1)])
def test_bad_fractions_fail(fractions):
    with pytest.raises(ValueError, match="split"):
        split_indices(100, fractions, seed=0)


def test_standardizer_matches_direct_computation_with_dgex_epsilon():
    rng = np.random.default_rng(0)
    train = rng.normal(3, 2, size=(500, 4)).astype(np.float32)
    other = rng.normal(5, 1, size=(50, 4)).astype(np.float32)
    scaler = Standardizer.fit(train)
    expected = (other - train.mean(0)) / (train.std(0) + 1e-3)
    np.testing.assert_allclose(scaler.transform(other), expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(scaler.inverse(scaler.transform(other)), other, rtol=1e-5, atol=1e-4)


def _naive_rank_map(matrix, reference):
    out = np.empty(matrix.shape)
    for i, row in enumerate(matrix):
        for j, value in enumerate(row):
            below, equal = (row < value).sum(), (row == value).sum()
            out[i, j] = np.mean(reference[below : below + equal])
    return out


def test_quantile_normalisation_gives_every_sample_the_reference_distribution():
    from src.data.transforms import quantile_normalize

    rng = np.random.default_rng(0)
    matrix = rng.lognormal(size=(6, 20))
    normalised, reference = quantile_normalize(matrix)
    np.testing.assert_allclose(reference, np.sort(matrix, axis=1).mean(0))
    np.testing.assert_allclose(np.sort(normalised, axis=1), np.tile(reference, (6, 1)), rtol=1e-6)
    assert (np.argsort(normalised, axis=1) == np.argsort(matrix, axis=1)).all()  # ranks kept


def test_rank_mapping_with_ties_matches_a_direct_computation():
    from src.data.transforms import rank_map

    rng = np.random.default_rng(1)
    rnaseq = rng.integers(0, 4, size=(5, 12)).astype(float)  # many ties, like zero RPKM values
    reference = np.sort(rng.normal(8, 2, size=12))
    np.testing.assert_allclose(rank_map(rnaseq, reference), _naive_rank_map(rnaseq, reference), rtol=1e-6)
    with pytest.raises(ValueError, match="reference quantiles"):
        rank_map(rnaseq, reference[:5])


def test_split_counts_are_exact_with_the_rest_to_test_and_scale_down_for_small_data():
    from src.data.transforms import split_sizes

    assert split_sizes(111009, [88807, 11101, 11101]) == (88807, 11101, 11101)
    assert split_sizes(120000, [88807, 11101, 11101]) == (88807, 11101, 20092)  # "the rest"
    assert split_sizes(57, [88807, 11101, 11101]) == (45, 6, 6)  # the paper's proportions
    assert split_sizes(10, [0.8, 0.1, 0.1]) == (8, 1, 1)


def test_rank_mapping_in_place_over_blocks_matches_the_naive_computation():
    from src.data.transforms import rank_map, reference_quantiles

    rng = np.random.default_rng(2)
    matrix = rng.integers(0, 6, size=(1100, 9)).astype(np.float32)  # > one block, many ties
    reference = reference_quantiles(matrix, rows=np.arange(0, 1100, 3))
    np.testing.assert_allclose(reference, np.sort(matrix[::3], axis=1).mean(0))
    expected = _naive_rank_map(matrix, reference)
    rank_map(matrix, reference, out=matrix)
    np.testing.assert_allclose(matrix, expected, rtol=1e-6)


def test_standardizer_statistics_come_from_the_training_rows_only():
    rng = np.random.default_rng(3)
    matrix = rng.normal(size=(3000, 5)).astype(np.float32)
    matrix[2500:] += 100  # test rows far away: must not move the statistics
    train = np.arange(2500)
    scaler = Standardizer.fit(matrix, rows=train)
    np.testing.assert_allclose(scaler.mean, matrix[:2500].mean(0), atol=1e-5)
    np.testing.assert_allclose(scaler.std, matrix[:2500].std(0), rtol=1e-5)
    copy = matrix.copy()
    np.testing.assert_allclose(scaler.transform_(copy), scaler.transform(matrix), atol=1e-6)


def test_rows_are_permuted_in_place():
    from src.data.transforms import permute_rows_

    matrix = np.arange(40, dtype=np.float32).reshape(10, 4)
    order = np.random.default_rng(0).permutation(10)
    expected = matrix[order]
    assert permute_rows_(matrix, order) is matrix
    np.testing.assert_array_equal(matrix, expected)
    with pytest.raises(ValueError, match="permutation"):
        permute_rows_(matrix, [0, 0, 1, 2, 3, 4, 5, 6, 7, 8])


def test_fitted_statistics_stream_over_blocks_of_a_memory_mapped_matrix_exactly(tmp_path, monkeypatch):
    """Gene means and sds, quantile references and the landmark covariance are computed block by block over
    the training rows, so they work on a matrix that is only memory-mapped from disk (never read whole), and
    equal the in-memory results (blocks of 7 rows here, to cross many block boundaries)."""
    import src.data.transforms as transforms
    from src.data.impute import LandmarkImputer

    rng = np.random.default_rng(0)
    values = rng.normal(5, 2, size=(103, 11)).astype(np.float32)
    path = tmp_path / "matrix.f32"
    values.tofile(path)
    mapped = np.memmap(path, dtype=np.float32, mode="r", shape=values.shape)
    rows = np.sort(rng.choice(103, size=80, replace=False))
    monkeypatch.setattr(transforms, "BLOCK", 7)
    mean, std = transforms.column_moments(mapped, rows)
    np.testing.assert_allclose(mean, values[rows].astype(np.float64).mean(0), rtol=1e-12)
    np.testing.assert_allclose(std, values[rows].astype(np.float64).std(0), rtol=1e-10)
    np.testing.assert_allclose(transforms.reference_quantiles(mapped, rows),
                               np.sort(values[rows], axis=1).astype(np.float64).mean(0), rtol=1e-12)
    covariance = LandmarkImputer.fit(mapped, rows, block=7).covariance
    np.testing.assert_allclose(covariance, np.cov(values[rows].astype(np.float64), rowvar=False, bias=True), atol=1e-9)
