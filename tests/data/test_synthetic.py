import numpy as np

from src.data.io.gctx import read_header, read_meta
from src.data.synthetic import SyntheticSpec, ensure_synthetic_gctx, generate

SMALL = SyntheticSpec(n_samples=4000, n_landmarks=60, n_targets=200, seed=3)


def _standardised(values, reference):
    return (values - reference.mean(0)) / reference.std(0)


def test_same_spec_same_data_and_the_file_is_reused(tmp_path):
    a, b = generate(SMALL), generate(SMALL)
    np.testing.assert_array_equal(a["matrix"], b["matrix"])
    path = ensure_synthetic_gctx(SMALL, tmp_path)
    mtime = path.stat().st_mtime_ns
    assert ensure_synthetic_gctx(SMALL, tmp_path) == path and path.stat().st_mtime_ns == mtime
    assert ensure_synthetic_gctx(SyntheticSpec(n_samples=50, n_landmarks=60, n_targets=200), tmp_path) != path


def test_file_layout_roles_and_recorded_noise_floor(tmp_path):
    path = ensure_synthetic_gctx(SMALL, tmp_path)
    header, meta = read_header(path), read_meta(path)
    assert header.shape == (4000, 260)
    assert (meta["role"] == "landmark").sum() == 60 and (meta["role"] == "target").sum() == 200
    assert 0.05 < header.attrs["noise_floor_mae"] < 0.4


def test_values_look_like_log2_expression():
    m = generate(SMALL)["matrix"]
    means, sds = m.mean(0), m.std(0)
    assert 4.5 < means.min() and means.max() < 10.5
    assert 0.15 < sds.min() and sds.max() < 2.5
    assert -5 < m.min() and m.max() < 20


def test_noise_floor_is_the_mae_of_the_true_function():
    data = generate(SMALL, with_signal=True)
    y, truth = data["matrix"][:, 60:], data["signal"][:, 60:]
    empirical = np.abs(_standardised(truth, y) - _standardised(y, y)).mean()
    assert abs(empirical - data["attrs"]["noise_floor_mae"]) < 0.01


def test_targets_are_not_a_linear_function_of_the_landmarks():
    """A linear fit from the noise-free landmarks leaves much more error than the noise floor."""
    data = generate(SMALL, with_signal=True)
    x, y = data["signal"][:, :60], data["signal"][:, 60:]
    xs = np.c_[_standardised(x, x), np.ones(len(x))]
    ys = _standardised(y, y)
    w, *_ = np.linalg.lstsq(xs[:3000], ys[:3000], rcond=None)
    linear_mae = np.abs(xs[3000:] @ w - ys[3000:]).mean()
    assert linear_mae > 0.15  # a perfect predictor of the noise-free targets would reach 0


def test_another_cohort_shares_the_genes_but_not_the_samples():
    from dataclasses import replace

    a, b = generate(SMALL, with_signal=True), generate(replace(SMALL, sample_seed=5), with_signal=True)
    assert a["feature_ids"] == b["feature_ids"] and a["attrs"]["noise_floor_mae"] == b["attrs"]["noise_floor_mae"]
    assert not np.allclose(a["matrix"][:5], b["matrix"][:5])
    np.testing.assert_allclose(a["matrix"].mean(0), b["matrix"].mean(0), atol=0.15)  # same gene means
