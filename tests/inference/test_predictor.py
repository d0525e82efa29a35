"""The inference engine: in memory exactly what src.predict writes, intervals that are the checkpoint's
calibration, reliable genes, the scale policy, and refused input."""

import anndata
import numpy as np
import pandas as pd
import pytest
import torch

from src.common.errors import InputError
from src.inference import Predictor
from src.models.trust import Reliability, conformal_quantile
from src.predict import predict
from tests.conftest import compose_config


def test_in_memory_prediction_is_what_src_predict_writes(tmp_path, trained):
    ckpt, _, adata = trained
    adata.write_h5ad(tmp_path / "in.h5ad")
    (written,) = predict(compose_config("predict", tmp_path, [f"ckpt_path={ckpt}", f"input={tmp_path / 'in.h5ad'}",
                                                              f"output={tmp_path / 'out.h5ad'}", "interval=0.9"]))
    on_disk = anndata.read_h5ad(written)
    in_memory = Predictor.load(ckpt).predict(adata, interval=0.9)
    np.testing.assert_allclose(in_memory.X, on_disk.X, rtol=1e-6, atol=1e-6)
    assert set(in_memory.layers) == set(on_disk.layers) == {"standardised", "lower", "upper", "standardised_lower",
                                                             "standardised_upper"}
    for name in on_disk.layers:
        np.testing.assert_allclose(in_memory.layers[name], on_disk.layers[name], rtol=1e-6, atol=1e-6)
    pd.testing.assert_frame_equal(in_memory.var, on_disk.var)
    pd.testing.assert_frame_equal(in_memory.obs, on_disk.obs)  # the input's obs travel with the predictions
    assert list(in_memory.obs["batch"][:3]) == ["b0", "b1", "b2"]
    assert dict(in_memory.uns) == dict(on_disk.uns) and in_memory.uns["interval"].startswith("0.9")


def test_a_dataframe_predicts_as_the_anndata_and_a_transposed_one_is_explained(trained):
    ckpt, _, adata = trained
    predictor = Predictor.load(ckpt, device="cpu")
    frame = pd.DataFrame(adata.X, index=adata.obs_names, columns=adata.var_names)
    np.testing.assert_array_equal(predictor.predict(frame).X, predictor.predict(adata).X)
    with pytest.raises(InputError, match=r"looks transposed .*transpose it first \(adata.T or df.T\)"):
        predictor.predict(frame.T)
    frame.insert(0, "symbol", "x")  # a column of no landmark is not read
    np.testing.assert_array_equal(predictor.predict(frame).X, predictor.predict(adata).X)
    first = frame.columns[1]
    frame[first] = frame[first].astype(object)
    frame.loc[frame.index[4], first] = "n/a"
    with pytest.raises(InputError, match=rf"column '{first}' holds 'n/a', not a number"):
        predictor.predict(frame)


def test_constant_intervals_are_the_conformal_quantiles_of_the_calibration_split(trained):
    """Recomputed here from the calibration split: the ceil((n + 1) 0.9)-th smallest |truth - prediction| per gene
    (with the truth rounded to float16, as the checkpoint stores it: 0.1% of a width)."""
    ckpt, dm, adata = trained
    predictor = Predictor.load(ckpt, device="cpu")
    cal = dm.splits["calibration"]
    truth = cal.targets.numpy().astype(np.float16).astype(np.float32)  # the checkpoint stores them in float16
    with torch.no_grad():
        residual = np.abs(predictor.model(cal.deployed_landmarks).numpy() - truth)
    n = len(residual)
    expected = np.sort(residual, axis=0)[int(np.ceil((n + 1) * 0.9)) - 1]
    np.testing.assert_allclose(expected, conformal_quantile(residual, 0.1)[0])
    out = predictor.predict(adata, interval=0.9, interval_kind="constant")
    np.testing.assert_allclose(out.layers["standardised_upper"] - out.layers["standardised"],
                               np.broadcast_to(expected, out.shape), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(out.layers["standardised"] - out.layers["standardised_lower"],
                               np.broadcast_to(expected, out.shape), rtol=1e-5, atol=1e-6)
    # Adaptive intervals differ from sample to sample; constant ones do not.
    adaptive = predictor.predict(adata, interval=0.9)
    width = adaptive.layers["standardised_upper"] - adaptive.layers["standardised_lower"]
    assert np.ptp(width[:, 0]) > 0


def test_genes_reliable_keeps_the_genes_reliable_on_the_calibration_split(trained):
    ckpt, dm, adata = trained
    predictor = Predictor.load(ckpt, device="cpu")
    cal = dm.splits["calibration"]
    with torch.no_grad():
        pred = predictor.model(cal.deployed_landmarks).numpy()
    reliable = Reliability.measure(pred, cal.targets.numpy()).reliable  # recomputed, not read from the checkpoint
    assert 0 < reliable.sum() < len(reliable)  # a choice to make
    out = predictor.predict(adata, genes="reliable")
    expected = [g for g, r in zip(predictor.target_ids, reliable) if r]
    assert list(out.var_names) == expected == predictor.reliable_genes() and out.var["reliable"].all()
    everything = predictor.predict(adata)
    np.testing.assert_array_equal(out.X, everything[:, expected].X)


def test_log2_is_taken_when_asked_and_never_otherwise(trained):
    """The synthetic training data are on a log scale (log2: false): log2=auto predicts from the values as
    given; log2=true takes log2(x + 1) first, so 2^x - 1 predicts as x does; and log2=auto follows the
    training data."""
    ckpt, dm, adata = trained
    predictor = Predictor.load(ckpt, device="cpu")
    assert predictor.preprocessing.log2 is False
    linear = anndata.AnnData(np.exp2(adata.X.astype(np.float64)).astype(np.float32) - 1, obs=adata.obs, var=adata.var)
    np.testing.assert_allclose(predictor.predict(linear, log2=True).X, predictor.predict(adata).X, rtol=1e-4, atol=1e-4)
    assert not np.allclose(predictor.predict(linear).X, predictor.predict(adata).X, atol=1e-2)
    # A model whose training data were log2-transformed takes log2(x + 1) of an input with log2=auto.
    predictor.preprocessing.log2 = True
    np.testing.assert_allclose(predictor.predict(linear).X, predictor.predict(adata, log2=False).X, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("option, value, message", [
    ("genes", "some", "genes=some: expected all or reliable"),
    ("interval", 1.5, r"interval=1.5: expected null \(no intervals\) or a level in \(0, 1\), e.g. interval=0.9"),
    ("intervals", 0.9, "intervals: not an option of prediction; expected one of interval, interval_kind"),
    ("interval_kind", "wide", "interval_kind=wide: expected adaptive or constant"),
    ("missing_landmarks", "drop", "missing_landmarks=drop: expected error or impute"),
])
def test_bad_options_name_the_option(trained, option, value, message):
    ckpt, _, adata = trained
    with pytest.raises(InputError, match=message):
        Predictor.load(ckpt, device="cpu").predict(adata, **{option: value})


def test_profiles_with_one_value_for_every_landmark_are_predicted_with_a_warning(trained, caplog):
    ckpt, _, adata = trained
    flat = adata.copy()
    flat.X[2] = 7.0  # an export that wrote one number for every gene of a profile
    with caplog.at_level("WARNING", logger="src.inference.predictor"):
        Predictor.load(ckpt, device="cpu").predict(flat, name="flat.csv")
    assert f"flat.csv: 1 of {flat.n_obs} profiles have the same value for every landmark (e.g. sample {flat.obs_names[2]})" \
        in caplog.text
