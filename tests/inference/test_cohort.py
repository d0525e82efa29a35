"""Trust on another cohort through the engine: shift scores per profile in every output, the log line,
recalibration from measured profiles (API, src.predict and src.eval agree), shift-weighted intervals, and the
refusals."""

import logging

import numpy as np
import pandas as pd
import pytest

from src.common.errors import InputError
from src.data.synthetic import SyntheticSpec, generate
from src.eval import evaluate
from src.inference import Predictor
from src.models.trust import coverage
from src.predict import predict
from tests.conftest import compose_config

TARGETS = 300  # debug=fast generates 300 targets


def synthetic_cohort(shift: float, n: int = 300) -> pd.DataFrame:
    """Profiles of the training data's genes (the ``trained`` fixture's spec) from another cohort whose latent
    state is moved by ``shift`` sd: landmarks and the model's targets, samples as rows."""
    data = generate(SyntheticSpec(n_samples=n, n_targets=TARGETS, target_noise=(0.1, 10.0), sample_seed=5,
                                  latent_shift=shift))
    return pd.DataFrame(data["matrix"], index=data["sample_ids"], columns=data["feature_ids"])


def covered(predictor, predicted, frame) -> float:
    truth = predictor.preprocessing.transform_measured_targets(frame[predictor.target_ids].to_numpy())
    half = predicted.layers["standardised_upper"] - predicted.layers["standardised"]
    return float(coverage(predicted.layers["standardised"], truth, half)[0].mean())


def test_profiles_of_the_training_cohort_are_rarely_flagged_and_a_shifted_cohorts_mostly(trained, caplog):
    ckpt, _, adata = trained
    predictor = Predictor.load(ckpt, device="cpu")
    own = predictor.predict(adata)
    assert {"shift_score", "shift_p", "shift_percentile", "unlike_training"} <= set(own.obs.columns)
    assert own.obs["unlike_training"].mean() <= 0.1 and "not calibrated" not in own.uns["shift"]
    with caplog.at_level(logging.WARNING):
        shifted = predictor.predict(synthetic_cohort(3.0), name="cohort B")
    assert shifted.obs["unlike_training"].mean() > 0.5
    assert "of 300 profiles are unlike the training data (shift p < 0.01): their intervals" in shifted.uns["shift"]
    assert "cohort B:" in caplog.text and "calibrate_with=FILE" in caplog.text


def test_measured_profiles_recalibrate_the_intervals_and_the_command_line_agrees(trained, tmp_path):
    ckpt, _, _ = trained
    predictor = Predictor.load(ckpt, device="cpu")
    cohort = synthetic_cohort(1.5)
    measured, rest = cohort.iloc[:30], cohort.iloc[30:]
    landmarks = rest[predictor.landmark_ids]
    as_trained = predictor.predict(landmarks, interval=0.9)
    recalibrated = predictor.predict(landmarks, interval=0.9, calibrate_with=measured, adjust="location_scale")
    assert recalibrated.uns["calibration"].startswith("recalibrated on 30 measured profiles of the new cohort: "
                                                      "intervals pooled across genes")
    assert 0.85 <= covered(predictor, recalibrated, rest) <= 0.95
    assert not np.allclose(recalibrated.layers["standardised"], as_trained.layers["standardised"])  # adjusted
    # src.predict reads the measured profiles from a file (here a CSV, samples as rows) to the same values.
    measured.to_csv(tmp_path / "measured.csv", index_label="sample")
    landmarks.to_csv(tmp_path / "new.csv", index_label="sample")
    written = predict(compose_config("predict", tmp_path, [
        f"ckpt_path={ckpt}", f"input={tmp_path / 'new.csv'}", f"output={tmp_path / 'out.h5ad'}", "interval=0.9",
        f"calibrate_with={tmp_path / 'measured.csv'}", "adjust=location_scale"]))
    import anndata

    on_disk = anndata.read_h5ad(written[0])
    np.testing.assert_allclose(on_disk.layers["standardised_upper"], recalibrated.layers["standardised_upper"], atol=1e-5)
    np.testing.assert_allclose(on_disk.obs["shift_p"], recalibrated.obs["shift_p"], rtol=1e-6)
    assert on_disk.uns["calibration"] == recalibrated.uns["calibration"]


def test_shift_weighted_intervals_are_wider_on_a_shifted_cohort(trained):
    ckpt, _, adata = trained
    predictor = Predictor.load(ckpt, device="cpu")
    landmarks = synthetic_cohort(2.0)[predictor.landmark_ids]
    plain = predictor.predict(landmarks, interval=0.9)
    weighted = predictor.predict(landmarks, interval=0.9, interval_shift="weighted")
    half = lambda a: a.layers["standardised_upper"] - a.layers["standardised"]  # noqa: E731
    assert (half(weighted) >= half(plain) - 1e-6).mean() > 0.9 and half(weighted).mean() > half(plain).mean()
    assert "weighted under covariate shift" in weighted.uns["interval"]


@pytest.mark.parametrize("options, message", [
    ({"adjust": "location"}, "adjust=location: a correction for the new cohort is fitted on measured profiles; pass "
                             "calibrate_with=FILE"),
    ({"interval_shift": "weighted"}, "interval_shift=weighted: shift-weighted intervals are for predictions with interval="),
    ({"calibrate_with": 3}, "calibrate_with: a int; expected a file, an AnnData or a DataFrame"),
])
def test_options_that_cannot_work_are_refused(trained, options, message):
    ckpt, _, adata = trained
    with pytest.raises(InputError, match=message):
        Predictor.load(ckpt, device="cpu").predict(adata, **options)


def test_measured_profiles_without_the_targets_are_refused(trained):
    ckpt, _, adata = trained
    predictor = Predictor.load(ckpt, device="cpu")
    with pytest.raises(InputError, match="none of the model's 300 target genes is among the file's features"):
        predictor.predict(adata, interval=0.9, calibrate_with=synthetic_cohort(0.0)[predictor.landmark_ids])


def test_eval_reports_the_shift_flags_and_the_recalibrated_trust(trained, tmp_path):
    ckpt, _, _ = trained
    synthetic_cohort(1.5).iloc[:40].to_csv(tmp_path / "measured.csv", index_label="sample")
    metrics = evaluate(compose_config("eval", tmp_path, [f"ckpt_path={ckpt}", "debug=fast",
                                                         f"calibrate_with={tmp_path / 'measured.csv'}"]))
    assert metrics["test/shift_flagged_fraction"] <= 0.1
    assert 0 < metrics["test/recalibrated_interval_coverage"] <= 1 and metrics["test/recalibrated_interval_width"] > 0
