"""The shift score: about 1% of a cohort's own held-out profiles flagged at p < 0.01, shifted profiles flagged,
p-values as defined, and weighted conformal quantiles that reduce to the plain ones without shift and widen
with it."""

import math

import numpy as np
import pytest

from src.models.shift import ShiftModel, ShiftTest, WeightedIntervals, WeightedQuantiles
from src.models.trust import DifficultyModel, conformal_quantile

P, K = 60, 5


def cohort(rng, n, shift=0.0, loadings=None):
    """Low-rank Gaussian landmarks (K factors + noise); ``shift`` moves the factors."""
    z = rng.standard_normal((n, K)) + shift
    return z @ loadings + 0.3 * rng.standard_normal((n, P))


@pytest.fixture(scope="module")
def fitted():
    rng = np.random.default_rng(0)
    loadings = rng.standard_normal((K, P))
    train, val, cal = (cohort(rng, n, loadings=loadings) for n in (300, 200, 200))
    model = ShiftModel.fit(train, val, k=10)
    return model, ShiftTest.against(model, cal), rng, loadings


def test_a_cohorts_own_profiles_are_flagged_about_one_percent_and_shifted_ones_nearly_always(fitted):
    model, test, rng, loadings = fitted
    _, p, percentile = test.test(cohort(rng, 4000, loadings=loadings))
    assert 0.002 <= np.mean(p < 0.01) <= 0.03
    assert 0.07 <= np.mean(p < 0.1) <= 0.13  # the conformal p-values are uniform within the reference's range
    assert ((0 < p) & (p <= 1)).all() and ((0 <= percentile) & (percentile <= 100)).all()
    _, shifted_p, _ = test.test(cohort(rng, 500, shift=4.0, loadings=loadings))  # 9 sd from the centre
    assert np.mean(shifted_p < 0.01) > 0.9
    other = cohort(rng, 500, loadings=rng.standard_normal((K, P)))  # another platform: other correlations
    assert np.mean(test.test(other)[1] < 0.01) > 0.9


def test_p_values_are_the_conformal_rank_within_the_reference_and_the_gamma_tail_beyond(fitted):
    model, test, _, _ = fitted
    n = len(test.reference)
    inside = test.reference[[10, 100, n - 1]]
    expected = [(1 + np.sum(test.reference >= s)) / (n + 1) for s in inside]
    np.testing.assert_allclose(test.p_values(inside), expected)
    far = np.array([test.reference[-1] * 1.01, test.reference[-1] * 10])
    p = test.p_values(far)
    assert (p <= 1 / (n + 1)).all() and p[1] < p[0] < 1e-2


def test_the_model_round_trips_through_its_checkpoint_form(fitted):
    model, _, rng, loadings = fitted
    x = cohort(rng, 20, loadings=loadings)
    np.testing.assert_allclose(ShiftModel.from_dict(model.to_dict()).score(x), model.score(x), rtol=1e-6)


def test_equal_weights_give_the_plain_split_conformal_quantile():
    rng = np.random.default_rng(1)
    scores = np.abs(rng.standard_normal((99, 7))).astype(np.float32)
    weighted = WeightedQuantiles(scores, np.ones(99))(np.ones(3), alpha=0.1)
    plain, _ = conformal_quantile(scores, 0.1)  # the ceil(100 * 0.9) = 90th of 99
    np.testing.assert_allclose(weighted, np.broadcast_to(plain, (3, 7)))
    # An input weighing as much as every calibration profile together: no finite quantile.
    assert np.isinf(WeightedQuantiles(scores, np.ones(99))(np.array([1e6]), alpha=0.1)).all()


def test_weighted_intervals_widen_for_shifted_profiles_and_cover_more_where_errors_grow_with_the_shift(fitted):
    model, test, rng, loadings = fitted
    cal = cohort(rng, 400, loadings=loadings)
    shifted = cohort(rng, 400, shift=1.0, loadings=loadings)
    difficulty = DifficultyModel(np.zeros(P, np.float32), 1.0, 0.1)  # u(x) = 1: constant and adaptive agree

    def errors(x):  # errors grow with distance from the training cohort
        return np.abs(rng.standard_normal((len(x), 3))) * (1 + 0.2 * np.sqrt(model.score(x)))[:, None] / 10

    residual = errors(cal)
    intervals = WeightedIntervals(model, cal, residual, difficulty, shifted, alpha=0.1)
    plain, _ = conformal_quantile(residual, 0.1)
    half = intervals.half_width(shifted, adaptive=False)
    assert np.nanmean(np.where(np.isfinite(half), half, np.nan)) > plain.mean() or np.isinf(half).any()
    truth = errors(shifted)
    assert np.mean(truth <= half) > np.mean(truth <= plain)
    # In-cohort inputs: nearly the plain intervals.
    same = cohort(rng, 400, loadings=loadings)
    close = WeightedIntervals(model, cal, residual, difficulty, same, alpha=0.1).half_width(same, adaptive=False)
    assert math.isclose(float(np.median(close)), float(np.median(plain)), rel_tol=0.25)
