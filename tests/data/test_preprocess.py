import numpy as np
import pytest

from src.data.preprocess import Standardizer, split_indices


def test_split_is_a_seeded_partition_with_the_requested_sizes():
    train, val, test = split_indices(1000, (0.8, 0.1, 0.1), seed=4)
    assert (len(train), len(val), len(test)) == (800, 100, 100)
    assert sorted(np.concatenate([train, val, test])) == list(range(1000))
    again = split_indices(1000, (0.8, 0.1, 0.1), seed=4)
    assert all((a == b).all() for a, b in zip((train, val, test), again))
    assert not (split_indices(1000, (0.8, 0.1, 0.1), seed=5)[0] == train).all()


@pytest.mark.parametrize("fractions", [(0.5, 0.5), (0.9, 0.2, 0.1), (1.2, -0.1, -0.1)])
def test_bad_fractions_fail(fractions):
    with pytest.raises(ValueError, match="split fractions"):
        split_indices(100, fractions, seed=0)


def test_standardizer_matches_direct_computation_with_dgex_epsilon():
    rng = np.random.default_rng(0)
    train = rng.normal(3, 2, size=(500, 4)).astype(np.float32)
    other = rng.normal(5, 1, size=(50, 4)).astype(np.float32)
    scaler = Standardizer.fit(train)
    expected = (other - train.mean(0)) / (train.std(0) + 1e-3)
    np.testing.assert_allclose(scaler.transform(other), expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(scaler.inverse(scaler.transform(other)), other, rtol=1e-5, atol=1e-4)
