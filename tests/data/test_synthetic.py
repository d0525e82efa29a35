import numpy as np
import pytest

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


# The GEO-like regime (data=synthetic_geo): Student-t noise, poorly explained targets, an exact floor.

def test_default_data_are_unchanged_by_the_geo_regime_fields():
    """The new spec fields default to drawing nothing: the default data, their key (file name) and their
    values are those from before the fields existed (sha256 of the matrix then: f84aeb3c11a6d0e9...)."""
    from dataclasses import replace

    spec = SyntheticSpec(n_samples=500, n_landmarks=60, n_targets=200, seed=3)
    assert spec.key() == "c00546353fad"
    m = generate(spec)["matrix"]
    np.testing.assert_array_equal(m, generate(replace(spec, noise_df=None, unexplained_fraction=0.0))["matrix"])
    m = m.astype(np.float64)
    np.testing.assert_allclose(m[0, :5], [9.855786323547363, 5.051280975341797, 8.39332103729248,
                                          9.117993354797363, 7.047546863555908], rtol=1e-6)
    np.testing.assert_allclose(m[:, ::37].std(0), [0.44900144, 0.43281194, 0.74330951, 1.61298237,
                                                   0.85368876, 0.81727624, 0.85027281, 0.5275575], rtol=1e-5)
    assert abs(m.sum() - 950708.6982796192) < 1.0
    assert "noise_df" not in generate(spec)["attrs"]["synthetic_spec"]


def test_mean_abs_noise_of_a_scaled_t():
    from src.data.synthetic import mean_abs_noise

    assert mean_abs_noise(None) == pytest.approx(np.sqrt(2 / np.pi))
    assert mean_abs_noise(1e6) == pytest.approx(np.sqrt(2 / np.pi), rel=1e-5)  # t -> Gaussian
    rng = np.random.default_rng(0)
    for df in (3.0, 4.0, 8.0):
        eps = rng.standard_t(df, 4_000_000) * np.sqrt((df - 2) / df)
        assert np.abs(eps).mean() == pytest.approx(mean_abs_noise(df), rel=3e-3)
    assert mean_abs_noise(4.0) == pytest.approx(1 / np.sqrt(2))  # closed form for df = 4


GEO_SMALL = SyntheticSpec(n_samples=4000, n_landmarks=60, n_targets=400, seed=3, latent_dim=32, n_programs=96,
                          nonlinear_fraction=(0.15, 0.5), target_noise=(0.25, 0.55), noise_df=4.0,
                          unexplained_fraction=0.1)  # conf/data/synthetic_geo.yaml, smaller


def test_heavy_tailed_noise_has_the_requested_sd_and_heavy_tails():
    data = generate(GEO_SMALL, with_signal=True)
    sd = data["feature_meta"]["noise_sd"]
    eps = (data["matrix"] - data["signal"]) / sd  # unit-sd noise if the sd is as requested
    np.testing.assert_allclose(eps.std(0).mean(), 1.0, atol=0.02)
    assert np.median(eps.std(0)) == pytest.approx(1.0, abs=0.03)
    kurtosis = (eps**4).mean() / (eps**2).mean() ** 2
    assert kurtosis > 4.0  # Gaussian: 3; t with 4 df: infinite (large in any sample)
    ratio = data["feature_meta"]["noise_ratio"][60:]
    assert abs((ratio >= 1.0).mean() - 0.1) < 0.01  # the poorly explained targets


def test_geo_noise_floor_is_the_mae_of_the_true_function():
    data = generate(GEO_SMALL, with_signal=True)
    y, truth = data["matrix"][:, 60:], data["signal"][:, 60:]
    empirical = np.abs(_standardised(truth, y) - _standardised(y, y)).mean()
    assert abs(empirical - data["attrs"]["noise_floor_mae"]) < 0.01
    assert data["attrs"]["noise_floor_mae"] > generate(SMALL)["attrs"]["noise_floor_mae"] + 0.03


def test_geo_preset_composes_and_generates_a_small_version(tmp_path, data_dir):
    from hydra.utils import instantiate

    from tests.conftest import compose_config

    cfg = compose_config("train", tmp_path, ["data=synthetic_geo", "model=lr"], data_dir)
    source = instantiate(cfg.data.source)
    assert source.spec.noise_df == 4 and source.spec.unexplained_fraction == 0.1 and source.spec.latent_dim == 32
    data = source.load(max_samples=300, max_targets=150)
    assert data.info["noise_floor_mae"] > 0.25
    assert len(data.target_ids) == 150
