"""Per-gene reliability, split-conformal intervals and the difficulty model against theory and direct
computations, on synthetic numpy data."""

import io
import math
from fractions import Fraction

import numpy as np
import pytest
import torch
from scipy import stats

from src.models.trust import (
    DifficultyModel,
    Intervals,
    Reliability,
    benjamini_hochberg,
    conformal_quantile,
    coverage,
    fisher_p_values,
    null_correlations,
    per_gene_pearson,
)


def _checkpoint_round_trip(d: dict) -> dict:
    """What a checkpoint does to a dict: torch.save, then torch.load with weights_only=True."""
    buffer = io.BytesIO()
    torch.save(d, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=True)


# ---------------------------------------------------------------- conformal_quantile


@pytest.mark.parametrize("n, alpha", [(50, 0.1), (50, 0.2), (19, 0.05), (30, 0.1)])
def test_conformal_quantile_has_the_finite_sample_coverage(n, alpha):
    """2000 exchangeable repetitions side by side (columns): mean coverage >= 1 - alpha, at most
    1 - alpha + 1/(n + 1), and equal to k/(n + 1) for continuous scores."""
    rng = np.random.default_rng(n + int(100 * alpha))
    reps = 2000
    calibration = np.abs(rng.standard_normal((n, reps)))
    test = np.abs(rng.standard_normal((200, reps)))
    q, guaranteed = conformal_quantile(calibration, alpha)
    assert guaranteed
    assert q.shape == (reps,) and q.dtype == np.float32
    covered = float((test <= q).mean())
    k = math.ceil((n + 1) * (1 - alpha))
    # SE of the mean coverage is ~0.001 (Beta(k, n + 1 - k) coverage per column, 200 test points each)
    assert covered >= 1 - alpha - 0.003
    assert covered <= 1 - alpha + 1 / (n + 1) + 0.003
    assert abs(covered - k / (n + 1)) < 0.004
    # and per column it is exactly the k-th smallest score
    np.testing.assert_array_equal(q, np.sort(calibration, axis=0)[k - 1].astype(np.float32))


def test_conformal_quantile_is_the_kth_smallest_per_column():
    scores = np.stack([np.arange(1, 11, dtype=float), np.arange(10, 0, -1, dtype=float) * 2], axis=1)
    q, ok = conformal_quantile(scores, 0.2)  # k = ceil(11 * 0.8) = 9
    assert ok
    np.testing.assert_array_equal(q, [9.0, 18.0])
    q, ok = conformal_quantile(scores, 0.5)  # k = ceil(5.5) = 6
    np.testing.assert_array_equal(q, [6.0, 12.0])


@pytest.mark.parametrize("alpha", [0.5, 0.25, 0.2, 0.1, 0.05])
def test_guaranteed_flag_iff_n_at_least_one_over_alpha_minus_one(alpha):
    rng = np.random.default_rng(0)
    bound = 1 / Fraction(alpha).limit_denominator(1000) - 1
    for n in range(1, 45):
        scores = rng.random((n, 3))
        q, guaranteed = conformal_quantile(scores, alpha)
        assert guaranteed == (n >= bound), (n, alpha)
        if not guaranteed:  # no finite interval has the guarantee: the widest score is used
            np.testing.assert_array_equal(q, scores.max(0).astype(np.float32))


def test_conformal_quantile_without_samples_fails():
    with pytest.raises(ValueError, match="calibration"):
        conformal_quantile(np.zeros((0, 4)), 0.1)


def test_conformal_rank_is_exact_for_decimal_levels():
    scores = np.arange(1, 100, dtype=float)[:, None]  # n = 99
    q, _ = conformal_quantile(scores, 1 - 0.55)  # level 0.55 as calibrate_run passes it: alpha = 1 - level
    assert q[0] == 55.0


# ---------------------------------------------------------------- intervals


def _heteroscedastic(n, rng, scale_of_x, genes=10):
    x = rng.uniform(-1, 1, size=(n, 3)).astype(np.float32)
    pred = rng.standard_normal((n, genes)).astype(np.float32)
    gene_scale = np.linspace(0.5, 2.0, genes)
    truth = pred + scale_of_x(x)[:, None] * gene_scale * rng.standard_normal((n, genes))
    return x, pred, truth.astype(np.float32)


def _calibrated(scale_of_x, seed=0, alpha=0.1):
    rng = np.random.default_rng(seed)
    x_val, p_val, t_val = _heteroscedastic(3000, rng, scale_of_x)
    difficulty = DifficultyModel.fit(x_val, np.abs(p_val - t_val).mean(1), alpha=1e-4)
    x_cal, p_cal, t_cal = _heteroscedastic(3000, rng, scale_of_x)
    intervals = Intervals.calibrate(p_cal, t_cal, x_cal, difficulty, alpha)
    x_test, p_test, t_test = _heteroscedastic(20000, rng, scale_of_x)
    out = {}
    for name, adaptive in (("constant", False), ("adaptive", True)):
        half = intervals.half_width(x_test, adaptive)
        assert half.shape == p_test.shape
        per_gene, width = coverage(p_test, t_test, half)
        out[name] = (per_gene, width)
    return intervals, out


def test_adaptive_intervals_are_narrower_at_the_same_coverage_when_noise_depends_on_x():
    intervals, out = _calibrated(lambda x: 1.05 + x[:, 0])  # noise sd from 0.05 to 2.05
    assert intervals.guaranteed and intervals.n_samples == 3000
    (cov_c, width_c), (cov_a, width_a) = out["constant"], out["adaptive"]
    for per_gene in (cov_c, cov_a):
        assert abs(per_gene.mean() - 0.9) < 0.015
        assert np.all(np.abs(per_gene - 0.9) < 0.03)  # marginal coverage holds for every gene
    assert abs(cov_c.mean() - cov_a.mean()) < 0.02
    assert width_a < 0.9 * width_c


def test_adaptive_and_constant_intervals_agree_when_noise_is_homoscedastic():
    intervals, out = _calibrated(lambda x: np.ones(len(x)))
    (cov_c, width_c), (cov_a, width_a) = out["constant"], out["adaptive"]
    assert abs(cov_c.mean() - 0.9) < 0.015 and abs(cov_a.mean() - 0.9) < 0.015
    assert abs(width_a / width_c - 1) < 0.03
    # the constant half-width per gene is the 90% quantile of |N(0, s_g^2)|: 1.645 s_g
    np.testing.assert_allclose(intervals.constant, 1.645 * np.linspace(0.5, 2.0, 10), rtol=0.06)


def test_constant_half_width_is_the_conformal_quantile_of_the_residuals():
    rng = np.random.default_rng(3)
    x, pred, truth = _heteroscedastic(40, rng, lambda x: np.ones(len(x)), genes=4)
    difficulty = DifficultyModel(np.zeros(3), 2.0, 0.1)  # u(x) = 2 everywhere
    intervals = Intervals.calibrate(pred, truth, x, difficulty, 0.1)
    k = math.ceil(41 * 0.9)
    residual = np.sort(np.abs(pred - truth), axis=0)
    np.testing.assert_allclose(intervals.constant, residual[k - 1], rtol=1e-6)
    np.testing.assert_allclose(intervals.adaptive, residual[k - 1] / 2, rtol=1e-6)
    np.testing.assert_allclose(intervals.half_width(x[:5], adaptive=True), intervals.half_width(x[:5], adaptive=False), rtol=1e-6)


def test_too_few_calibration_samples_use_the_widest_score():
    rng = np.random.default_rng(4)
    x, pred, truth = _heteroscedastic(5, rng, lambda x: np.ones(len(x)), genes=3)
    intervals = Intervals.calibrate(pred, truth, x, DifficultyModel(np.zeros(3), 1.0, 0.1), alpha=0.1)
    assert not intervals.guaranteed
    np.testing.assert_allclose(intervals.constant, np.abs(pred - truth).max(0), rtol=1e-6)


def test_coverage_counts_samples_inside_and_the_mean_full_width():
    pred = np.zeros((4, 2))
    truth = np.array([[0.5, -2.0], [1.0, 0.1], [-1.5, 0.0], [0.0, 3.0]])
    per_gene, width = coverage(pred, truth, np.full((4, 2), 1.0))
    np.testing.assert_allclose(per_gene, [0.75, 0.5])  # the boundary (|1.0| <= 1.0) is inside
    assert width == 2.0


# ---------------------------------------------------------------- reliability


def test_predictions_close_to_truth_are_reliable_and_noise_is_not():
    rng = np.random.default_rng(0)
    n, good, bad = 300, 30, 200
    truth = rng.standard_normal((n, good + bad))
    pred = np.concatenate([truth[:, :good] + 0.3 * rng.standard_normal((n, good)), rng.standard_normal((n, bad))], axis=1)
    rel = Reliability.measure(pred, truth, seed=1)
    assert rel.reliable.dtype == bool and rel.n_samples == n
    assert rel.reliable[:good].all()
    assert rel.reliable[good:].mean() <= 0.03
    # independent genes: the null correlations are ~N(0, 1/n), their 95th percentile ~1.645/sqrt(n)
    assert 0.5 * 1.645 / math.sqrt(n) < rel.null_threshold < 1.5 * 1.645 / math.sqrt(n)
    np.testing.assert_allclose(rel.heldout_mae, np.abs(pred - truth).mean(0), rtol=1e-5)
    direct = [np.corrcoef(pred[:, g], truth[:, g])[0, 1] for g in range(good + bad)]
    np.testing.assert_allclose(rel.heldout_pearson, direct, rtol=1e-4, atol=1e-6)


def test_a_shared_factor_raises_the_null_threshold():
    """Genes that share one factor correlate with each other; a prediction that only captures the
    factor correlates with the truth as much as with any other gene's truth, and is not reliable."""
    rng = np.random.default_rng(2)
    n, genes = 300, 100
    factor = rng.standard_normal((n, 1))
    truth = factor + rng.standard_normal((n, genes))  # corr between genes ~0.5
    independent = Reliability.measure(rng.standard_normal((n, genes)) + 0.0, rng.standard_normal((n, genes)))
    only_factor = Reliability.measure(factor + 0.1 * rng.standard_normal((n, genes)), truth)
    assert only_factor.null_threshold > 0.6 > 0.2 > independent.null_threshold
    assert np.all(only_factor.heldout_pearson > 0.55)  # well above chance in the absence of shared structure...
    assert only_factor.reliable.mean() <= 0.15  # ...but not above the shared-structure null
    # a prediction of each gene's own part is reliable despite the shared factor
    own = Reliability.measure(truth + 0.3 * rng.standard_normal((n, genes)), truth)
    assert own.reliable.all()


def test_null_correlations_never_pair_a_gene_with_itself():
    rng = np.random.default_rng(0)
    truth = rng.standard_normal((100, 7))
    null = null_correlations(truth, truth, seed=3, pairs=20)  # prediction == truth: the self-pairing gives 1
    assert len(null) == 140
    assert null.max() < 0.5


def test_fisher_p_values_match_the_formula_and_scipy():
    rng = np.random.default_rng(5)
    n = 200
    x = rng.standard_normal((n, 50))
    y = 0.2 * x * rng.random(50) + rng.standard_normal((n, 50))
    r = per_gene_pearson(x, y)
    p = fisher_p_values(r, n)
    np.testing.assert_allclose(p, stats.norm.sf(np.arctanh(r) * math.sqrt(n - 3)), rtol=1e-10)
    exact = np.array([stats.pearsonr(x[:, g], y[:, g], alternative="greater").pvalue for g in range(50)])
    np.testing.assert_allclose(p, exact, rtol=0.15, atol=2e-3)  # Fisher's z approximates the exact t test
    np.testing.assert_allclose(fisher_p_values(np.array([0.0]), n), [0.5])
    assert fisher_p_values(np.array([-0.5]), n)[0] > 0.99


def test_fisher_p_values_edge_cases():
    assert np.all(fisher_p_values(np.array([0.9, -0.9, 0.0]), 3) == 1.0)  # n < 4: nothing is significant
    p = fisher_p_values(np.array([np.nan, 1.0, -1.0]), 50)
    assert p[0] == 1.0 and 0 <= p[1] < 1e-10 and p[2] > 0.99 and np.isfinite(p).all()


def test_benjamini_hochberg_matches_a_direct_step_up():
    rng = np.random.default_rng(6)
    for trial in range(20):
        p = np.concatenate([rng.random(80), rng.random(20) * 10.0 ** -rng.uniform(1, 5)])
        rng.shuffle(p)
        m = len(p)
        order = np.sort(p)
        passing = np.nonzero(order <= 0.05 * np.arange(1, m + 1) / m)[0]
        cutoff = order[passing.max()] if len(passing) else -1.0
        np.testing.assert_array_equal(benjamini_hochberg(p, 0.05), p <= cutoff)
        np.testing.assert_array_equal(benjamini_hochberg(p, 0.05), stats.false_discovery_control(p) <= 0.05)


def test_benjamini_hochberg_small_cases():
    # sorted: 0.01 <= 0.0125 yes; 0.03 > 0.025; 0.04 > 0.0375; 0.2 no
    np.testing.assert_array_equal(benjamini_hochberg(np.array([0.01, 0.04, 0.03, 0.2])), [True, False, False, False])
    # step-up: the largest passing rank takes every smaller p-value along, even those above their own bound
    np.testing.assert_array_equal(benjamini_hochberg(np.array([0.04, 0.045, 0.049, 0.05])), [True] * 4)
    np.testing.assert_array_equal(benjamini_hochberg(np.array([0.5, 0.6])), [False, False])


def test_reliability_with_fewer_than_four_samples_calls_nothing_reliable():
    truth = np.array([[0.0, 1.0], [1.0, 0.0], [2.0, 1.0]])
    rel = Reliability.measure(truth.copy(), truth)
    assert not rel.reliable.any() and rel.n_samples == 3
    np.testing.assert_allclose(rel.heldout_pearson, [1.0, 1.0])


def test_constant_gene_is_not_reliable():
    rng = np.random.default_rng(1)
    truth = rng.standard_normal((100, 5))
    pred = truth.copy()
    pred[:, 2] = 0.5  # a constant prediction: correlation undefined
    rel = Reliability.measure(pred, truth)
    assert np.isnan(rel.heldout_pearson[2]) and not rel.reliable[2]
    assert rel.reliable[[0, 1, 3, 4]].all()


# ---------------------------------------------------------------- difficulty model


def test_difficulty_recovers_a_linear_dependence_primal():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((500, 6)) * [1, 2, 0.5, 1, 1, 3] + 4.0
    w = np.array([0.3, -0.1, 0.2, 0.0, 0.05, 0.02])
    mae = 1.0 + (x - 4.0) @ w + 0.01 * rng.standard_normal(500)
    model = DifficultyModel.fit(x, mae, alpha=1e-6)
    np.testing.assert_allclose(model.weight, w, atol=5e-3)
    x_new = rng.standard_normal((50, 6)) * 0.3 + 4.0
    np.testing.assert_allclose(model(x_new), 1.0 + (x_new - 4.0) @ w, atol=0.01)
    assert model(x_new).dtype == np.float32
    assert model.floor == pytest.approx(0.1 * mae.mean())


@pytest.mark.parametrize("n, d", [(400, 8), (15, 40)])
def test_difficulty_is_the_ridge_closed_form(n, d):
    """Both branches (primal n >= d, dual n < d) give ``(Xc'Xc + alpha n I)^-1 Xc'yc``."""
    rng = np.random.default_rng(n)
    x = rng.standard_normal((n, d))
    y = rng.random(n) + 1
    for alpha in (0.5, 10.0):
        model = DifficultyModel.fit(x, y, alpha=alpha)
        xc, yc = x - x.mean(0), y - y.mean()
        w = np.linalg.solve(xc.T @ xc + alpha * n * np.eye(d), xc.T @ yc)
        np.testing.assert_allclose(model.weight, w, rtol=1e-4, atol=1e-7)
        assert model.bias == pytest.approx(y.mean() - x.mean(0) @ w, rel=1e-5)


def test_difficulty_recovers_a_linear_dependence_dual():
    """Fewer samples than landmarks (dual form): landmarks driven by 3 factors; the error linear in them
    is predicted on new samples of the same kind."""
    rng = np.random.default_rng(1)
    mixing = rng.standard_normal((3, 60))
    coef = np.array([0.4, -0.2, 0.1])

    def draw(m):
        z = rng.standard_normal((m, 3))
        return z @ mixing, 1.5 + z @ coef

    x, mae = draw(25)
    model = DifficultyModel.fit(x, mae, alpha=1e-8)
    x_new, mae_new = draw(100)
    np.testing.assert_allclose(model(x_new), np.maximum(mae_new, model.floor), atol=5e-3)


def test_difficulty_is_floored_at_a_tenth_of_the_mean():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((200, 2))
    mae = 1.0 + 0.5 * x[:, 0]
    model = DifficultyModel.fit(x, mae, alpha=1e-6)
    far = np.array([[-10.0, 0.0], [-3.0, 0.0], [0.0, 0.0]])
    out = model(far)
    assert out[0] == pytest.approx(0.1 * mae.mean()) and out[1] == pytest.approx(0.1 * mae.mean())
    assert out[2] == pytest.approx(1.0, abs=0.02)
    assert np.all(model(rng.standard_normal((1000, 2)) * 5) >= model.floor)


# ---------------------------------------------------------------- checkpoint form


def test_reliability_round_trips():
    rng = np.random.default_rng(0)
    truth = rng.standard_normal((60, 8))
    rel = Reliability.measure(truth + rng.standard_normal((60, 8)) * np.linspace(0.1, 5, 8), truth)
    back = Reliability.from_dict(_checkpoint_round_trip(rel.to_dict()))
    for name in ("heldout_mae", "heldout_pearson", "reliable"):
        np.testing.assert_array_equal(getattr(back, name), getattr(rel, name))
    assert back.reliable.dtype == bool
    assert back.null_threshold == rel.null_threshold and back.n_samples == rel.n_samples


def test_intervals_and_difficulty_round_trip():
    rng = np.random.default_rng(1)
    x, pred, truth = _heteroscedastic(100, rng, lambda x: 1.05 + x[:, 0], genes=5)
    difficulty = DifficultyModel.fit(x, np.abs(pred - truth).mean(1))
    d_back = DifficultyModel.from_dict(_checkpoint_round_trip(difficulty.to_dict()))
    np.testing.assert_array_equal(d_back(x), difficulty(x))
    assert (d_back.bias, d_back.floor) == (difficulty.bias, difficulty.floor)
    intervals = Intervals.calibrate(pred, truth, x, difficulty, 0.2)
    back = Intervals.from_dict(_checkpoint_round_trip(intervals.to_dict()))
    assert (back.alpha, back.guaranteed, back.n_samples) == (intervals.alpha, intervals.guaranteed, intervals.n_samples)
    for adaptive in (True, False):
        np.testing.assert_array_equal(back.half_width(x, adaptive), intervals.half_width(x, adaptive))
