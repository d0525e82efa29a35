"""Missing landmarks: the Gaussian conditional expectation of LandmarkImputer against the formula with
the true covariance, and Preprocessing.transform_landmarks for incomplete panels."""

import io

import numpy as np
import pytest
import torch

from src.data.impute import RIDGE, LandmarkImputer
from src.data.preprocessing import Preprocessing, panel_reference
from src.data.sources.base import ExpressionData


def _covariance(d, seed=0):
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((d, 3))
    s = a @ a.T + 0.5 * np.eye(d)  # three shared factors: landmarks strongly correlated
    sd = np.sqrt(np.diag(s))
    return s / np.outer(sd, sd)  # unit variances, as standardised landmarks


def _draw(cov, n, rng):
    return rng.multivariate_normal(np.zeros(len(cov)), cov, size=n)


D = 8
PRESENT = np.array([True, False, True, True, False, True, False, True])


@pytest.fixture(scope="module")
def gaussian():
    cov = _covariance(D)
    rng = np.random.default_rng(1)
    return cov, _draw(cov, 20000, rng).astype(np.float32), _draw(cov, 2000, rng).astype(np.float32)


def _conditional_weights(cov, present, lam=0.0):
    s_pp = cov[np.ix_(present, present)]
    return np.linalg.solve(s_pp + lam * np.eye(len(s_pp)), cov[np.ix_(present, ~present)]).T


# ---------------------------------------------------------------- LandmarkImputer


def test_fit_is_the_covariance_of_the_training_rows(gaussian):
    _, train, _ = gaussian
    imputer = LandmarkImputer.fit(train, block=3001)
    np.testing.assert_allclose(imputer.covariance, np.cov(train.astype(np.float64), rowvar=False, bias=True), atol=1e-5)
    assert imputer.covariance.dtype == np.float32 and imputer.ridge == RIDGE


def test_fit_on_rows_equals_fit_on_the_subset(gaussian):
    _, train, _ = gaussian
    x = train[:500] * np.linspace(0.5, 2, D).astype(np.float32) + 1.0  # not centred: the mean is subtracted
    rows = np.random.default_rng(0).permutation(500)[:137]
    np.testing.assert_allclose(LandmarkImputer.fit(x, rows, block=16).covariance, LandmarkImputer.fit(x[rows]).covariance,
                               rtol=1e-5, atol=1e-6)
    assert not np.allclose(LandmarkImputer.fit(x, rows).covariance, LandmarkImputer.fit(x).covariance, atol=1e-2)


def test_impute_approaches_the_true_conditional_expectation(gaussian):
    cov, train, test = gaussian
    fitted = LandmarkImputer.fit(train)
    exact = LandmarkImputer(fitted.covariance, ridge=0.0)
    expected = test[:, PRESENT].astype(np.float64) @ _conditional_weights(cov, PRESENT).T
    out = exact.impute(test, PRESENT)
    # sampling error of a 20000-sample covariance: weights within ~0.02
    np.testing.assert_allclose(exact.weights(PRESENT), _conditional_weights(cov, PRESENT), atol=0.03)
    err = out[:, ~PRESENT] - expected
    assert np.sqrt(np.mean(err**2)) < 0.03 * np.sqrt(np.mean(expected**2)) + 0.01
    # the default (small) ridge is the same formula with lambda = RIDGE * mean variance of the present
    lam = RIDGE * np.mean(np.diag(cov)[PRESENT])
    ridged = test[:, PRESENT].astype(np.float64) @ _conditional_weights(cov, PRESENT, lam).T
    np.testing.assert_allclose(fitted.impute(test, PRESENT)[:, ~PRESENT], ridged, atol=0.15)
    assert np.sqrt(np.mean((fitted.impute(test, PRESENT)[:, ~PRESENT] - ridged) ** 2)) < 0.03


def test_imputation_error_is_the_conditional_variance(gaussian):
    """E[x_m | x_p] is the best predictor: its mean squared error is diag(S_mm - S_mp S_pp^-1 S_pm)."""
    cov, train, test = gaussian
    imputer = LandmarkImputer(LandmarkImputer.fit(train).covariance, ridge=0.0)
    hidden = test.copy()
    hidden[:, ~PRESENT] = np.nan  # the missing values are never read
    out = imputer.impute(hidden, PRESENT)
    assert np.isfinite(out).all()
    mse = ((out[:, ~PRESENT] - test[:, ~PRESENT]) ** 2).mean(0)
    s = cov
    conditional = np.diag(s[np.ix_(~PRESENT, ~PRESENT)] - _conditional_weights(s, PRESENT) @ s[np.ix_(PRESENT, ~PRESENT)])
    np.testing.assert_allclose(mse, conditional, rtol=0.12)
    assert np.all(conditional < 0.8)  # the design is informative: much better than the prior variance 1


def test_present_columns_are_untouched_and_the_input_is_not_modified(gaussian):
    _, train, test = gaussian
    imputer = LandmarkImputer.fit(train)
    before = test.copy()
    out = imputer.impute(test, PRESENT.astype(int))  # any truthy mask
    np.testing.assert_array_equal(out[:, PRESENT], test[:, PRESENT])
    np.testing.assert_array_equal(test, before)
    assert out.dtype == np.float32 and out.shape == test.shape


def test_all_present_returns_a_copy(gaussian):
    _, train, test = gaussian
    imputer = LandmarkImputer.fit(train)
    out = imputer.impute(test, np.ones(D, bool))
    np.testing.assert_array_equal(out, test)
    out[0, 0] += 1.0
    assert out[0, 0] != test[0, 0]
    assert imputer._panel is None  # no solve needed


def test_none_present_raises(gaussian):
    _, train, test = gaussian
    with pytest.raises(ValueError, match="no landmark is present"):
        LandmarkImputer.fit(train).impute(test, np.zeros(D, bool))


def test_weights_are_cached_per_panel(gaussian, monkeypatch):
    _, train, test = gaussian
    imputer = LandmarkImputer.fit(train)
    solves = []
    solve = np.linalg.solve
    monkeypatch.setattr(np.linalg, "solve", lambda *a: solves.append(1) or solve(*a))
    first = imputer.weights(PRESENT)
    assert imputer.weights(PRESENT.copy()) is first
    imputer.impute(test[:10], PRESENT)
    imputer.impute(test[10:20], list(PRESENT))
    assert len(solves) == 1
    other = PRESENT.copy()
    other[1] = True
    w_other = imputer.weights(other)
    assert w_other.shape == (int((~other).sum()), int(other.sum())) and len(solves) == 2
    again = imputer.weights(PRESENT)  # the other panel replaced the cache: solved again, same values
    assert len(solves) == 3
    np.testing.assert_array_equal(again, first)


def test_imputer_round_trips(gaussian):
    _, train, test = gaussian
    imputer = LandmarkImputer(LandmarkImputer.fit(train).covariance, ridge=0.05)
    buffer = io.BytesIO()
    torch.save(imputer.to_dict(), buffer)
    buffer.seek(0)
    back = LandmarkImputer.from_dict(torch.load(buffer, weights_only=True))
    assert back.ridge == 0.05
    np.testing.assert_array_equal(back.impute(test, PRESENT), imputer.impute(test, PRESENT))


# ---------------------------------------------------------------- Preprocessing with a panel


def _expression(n=400, seed=0):
    rng = np.random.default_rng(seed)
    cov = _covariance(12, seed=3)
    z = _draw(cov, n, rng)
    landmarks = (z * np.linspace(0.5, 3.0, 12) + np.linspace(2.0, 10.0, 12)).astype(np.float32)
    targets = (z[:, :5] @ rng.standard_normal((5, 4)) + 6 + 0.3 * rng.standard_normal((n, 4))).astype(np.float32)
    return ExpressionData(landmarks, targets, [f"s{i}" for i in range(n)], [f"L{i}" for i in range(12)],
                          [f"T{i}" for i in range(4)])


TRAIN = np.arange(300)
PANEL = np.array([True, True, False, True, True, False, True, True, False, True, True, True])


@pytest.fixture(scope="module", params=[False, True], ids=["plain", "quantile"])
def fitted(request):
    data = _expression()
    raw = data.landmarks.copy()  # fit transforms data in place
    return Preprocessing.fit(data, TRAIN, quantile_normalize=request.param), raw, data


def test_all_present_equals_the_complete_path(fitted):
    pp, raw, _ = fitted
    complete = pp.transform_landmarks(raw[300:])
    np.testing.assert_array_equal(pp.transform_landmarks(raw[300:], present=np.ones(12, bool)), complete)
    assert complete.dtype == np.float32 and complete.shape == (100, 12)


# Quantile-normalised training data were rank-mapped with the targets (D-GEX's protocol): plain data only.
@pytest.mark.parametrize("fitted", [False], ids=["plain"], indirect=True)
def test_complete_path_is_the_training_standardisation_without_quantile_normalisation(fitted):
    pp, raw, data = fitted
    assert not pp.quantile_normalized
    np.testing.assert_allclose(pp.transform_landmarks(raw), data.landmarks, atol=1e-5)


def test_incomplete_panel_is_finite_and_keeps_the_present_standardisation(fitted):
    pp, raw, _ = fitted
    test = raw[300:].copy()
    test[:, ~PANEL] = np.nan  # the absent genes' columns are ignored
    out = pp.transform_landmarks(test, present=PANEL)
    complete = pp.transform_landmarks(raw[300:])
    assert out.shape == complete.shape and out.dtype == np.float32 and np.isfinite(out).all()
    if not pp.quantile_normalized:
        np.testing.assert_allclose(out[:, PANEL], complete[:, PANEL], rtol=1e-6, atol=1e-6)
        # the absent landmarks are estimated from the present ones (the design correlates them strongly)
        for j in np.nonzero(~PANEL)[0]:
            assert np.corrcoef(out[:, j], complete[:, j])[0, 1] > 0.6
        assert ((out - complete)[:, ~PANEL] ** 2).mean() < 0.5 * (complete[:, ~PANEL] ** 2).mean()
    # the absent landmarks are the imputer's conditional expectation of the standardised present values
    np.testing.assert_allclose(out[:, ~PANEL], out[:, PANEL] @ pp.imputer.weights(PANEL).T, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("fitted", [True], ids=["quantile"], indirect=True)  # no rank mapping without it
def test_incomplete_panel_is_rank_mapped_onto_the_panel_reference(fitted):
    pp, raw, _ = fitted
    assert pp.quantile_normalized
    scaler = pp.landmark_scaler
    out = pp.transform_landmarks(raw[300:], present=PANEL)
    unscaled = out[:, PANEL] * (scaler.std[PANEL] + scaler.eps) + scaler.mean[PANEL]
    expected = panel_reference(pp.landmark_reference, int(PANEL.sum()))
    np.testing.assert_allclose(np.sort(unscaled, axis=1), np.broadcast_to(expected, unscaled.shape), rtol=1e-4, atol=1e-4)
    # and the complete panel onto the full landmark reference, each profile keeping its order
    complete = pp.transform_landmarks(raw[300:])
    unscaled = complete * (scaler.std + scaler.eps) + scaler.mean
    np.testing.assert_allclose(np.sort(unscaled, axis=1), np.broadcast_to(pp.landmark_reference, unscaled.shape), rtol=1e-4, atol=1e-4)
    np.testing.assert_array_equal(np.argsort(unscaled, axis=1), np.argsort(raw[300:], axis=1))


def test_quantile_normalised_imputation_beats_zero_fill():
    data = _expression(4000)
    raw = data.landmarks.copy()
    pp = Preprocessing.fit(data, np.arange(3000), quantile_normalize=True)
    out = pp.transform_landmarks(raw[3000:], present=PANEL)
    complete = pp.transform_landmarks(raw[3000:])
    assert ((out - complete)[:, ~PANEL] ** 2).mean() < (complete[:, ~PANEL] ** 2).mean()


def test_panel_survives_the_checkpoint_form(fitted):
    pp, raw, _ = fitted
    buffer = io.BytesIO()
    torch.save(pp.to_dict(), buffer)
    buffer.seek(0)
    back = Preprocessing.from_dict(torch.load(buffer, weights_only=True))
    np.testing.assert_array_equal(back.transform_landmarks(raw[300:], present=PANEL), pp.transform_landmarks(raw[300:], present=PANEL))


def test_incomplete_panel_without_an_imputer_fails(fitted):
    pp, raw, _ = fitted
    d = pp.to_dict()
    d["imputer"] = None
    old = Preprocessing.from_dict(d)
    np.testing.assert_array_equal(old.transform_landmarks(raw[300:]), pp.transform_landmarks(raw[300:]))
    with pytest.raises(ValueError, match="covariance"):
        old.transform_landmarks(raw[300:], present=PANEL)


@pytest.mark.parametrize("length", [1, 2, 7, 12, 50])
def test_panel_reference(length):
    rng = np.random.default_rng(length)
    reference = np.sort(rng.normal(5, 2, size=length))
    np.testing.assert_allclose(panel_reference(reference, length), reference, rtol=1e-12)
    for m in range(1, length + 1):
        panel = panel_reference(reference, m)
        assert panel.shape == (m,)
        assert np.all(np.diff(panel) >= 0)
        assert reference[0] <= panel.min() and panel.max() <= reference[-1]
    assert panel_reference(reference, 1)[0] == pytest.approx(np.median(reference))
    if length > 2:  # a strict sub-panel lies strictly inside the extremes (it misses them with high probability)
        inner = panel_reference(reference, length - 1)
        assert reference[0] < inner[0] and inner[-1] < reference[-1]
