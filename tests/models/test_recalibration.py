"""Trust recalibrated on a new cohort's measured profiles: leave-one-out residuals that equal refits, the
per-gene or pooled choice, the minimum for a finite interval, and coverage on the cohort's other profiles."""

import numpy as np
import pytest

from src.common.errors import InputError
from src.models.recalibration import PER_GENE_MIN, CohortCalibration, fit_adjustment, minimum_profiles
from src.models.trust import DifficultyModel, coverage

GENES = 40


def shifted_cohort(rng, n):
    """Predictions of a model trained elsewhere: the truth is off by a per-gene offset and scale."""
    pred = rng.standard_normal((n, GENES)).astype(np.float32)
    offset, slope = np.linspace(-1, 1, GENES), np.linspace(0.5, 1.5, GENES)
    truth = offset + slope * pred + 0.3 * rng.standard_normal((n, GENES))
    return pred, truth.astype(np.float32), rng.standard_normal((n, 5)).astype(np.float32)


@pytest.mark.parametrize("kind", ["location", "location_scale"])
def test_leave_one_out_residuals_equal_refits_without_the_profile(kind):
    rng = np.random.default_rng(0)
    pred, truth, _ = shifted_cohort(rng, 12)
    _, loo = fit_adjustment(pred, truth, kind)
    for i in (0, 5, 11):
        rest = np.arange(12) != i
        adjustment, _ = fit_adjustment(pred[rest], truth[rest], kind)
        np.testing.assert_allclose(loo[i], truth[i] - adjustment(pred[i : i + 1])[0], rtol=1e-4, atol=1e-5)


def test_location_scale_recovers_a_known_distortion():
    rng = np.random.default_rng(1)
    pred, truth, _ = shifted_cohort(rng, 4000)
    adjustment, _ = fit_adjustment(pred, truth, "location_scale")
    np.testing.assert_allclose(adjustment.offset, np.linspace(-1, 1, GENES), atol=0.03)
    np.testing.assert_allclose(adjustment.slope, np.linspace(0.5, 1.5, GENES), atol=0.03)


def test_minimum_profiles_for_a_finite_interval():
    assert minimum_profiles(0.1) == 9 and minimum_profiles(0.2) == 4 and minimum_profiles(0.05) == 19


@pytest.mark.parametrize("n, pooled", [(20, True), (PER_GENE_MIN, False)])
def test_recalibrated_intervals_cover_the_cohorts_other_profiles(n, pooled):
    rng = np.random.default_rng(2)
    difficulty = DifficultyModel(np.zeros(5, np.float32), 1.0, 0.1)
    coverages = []
    for _ in range(20):
        pred, truth, x = shifted_cohort(rng, n + 200)
        cal = CohortCalibration.fit(pred[:n], truth[:n], x[:n], difficulty, 0.1, np.ones(GENES), "location_scale")
        assert cal.pooled is pooled and cal.intervals.guaranteed
        adjusted = cal.adjustment(pred[n:])
        per_gene, _ = coverage(adjusted, truth[n:], cal.intervals.half_width(x[n:], adaptive=False))
        coverages.append(per_gene.mean())
    assert 0.86 <= np.mean(coverages) <= 0.95
    # Without the correction the same profiles are covered too (wider intervals), not silently under-covered.
    plain = CohortCalibration.fit(pred[:n], truth[:n], x[:n], difficulty, 0.1, np.ones(GENES))
    per_gene, width = coverage(pred[n:], truth[n:], plain.intervals.half_width(x[n:], adaptive=False))
    assert per_gene.mean() > 0.8 and plain.adjustment is None


def test_few_profiles_pool_without_a_guarantee_and_none_are_refused():
    rng = np.random.default_rng(3)
    pred, truth, x = shifted_cohort(rng, 5)
    difficulty = DifficultyModel(np.zeros(5, np.float32), 1.0, 0.1)
    cal = CohortCalibration.fit(pred, truth, x, difficulty, 0.1, np.ones(GENES))
    assert cal.pooled and not cal.intervals.guaranteed and np.isfinite(cal.intervals.constant).all()
    assert "no conformal guarantee" in cal.describe()
    with pytest.raises(InputError, match="holds no profiles"):
        CohortCalibration.fit(pred[:0], truth[:0], x[:0], difficulty, 0.1, np.ones(GENES))
    with pytest.raises(InputError, match="adjust=location: a correction per gene needs at least 3"):
        CohortCalibration.fit(pred[:2], truth[:2], x[:2], difficulty, 0.1, np.ones(GENES), "location")
