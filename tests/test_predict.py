"""Prediction on new landmark data: round trips in every format, streaming, and refused input."""

import anndata
import numpy as np
import pandas as pd
import pytest
import torch

from src.data.io.gctx import read_matrix, write_gctx
from src.data.io.matrix import open_matrix
from src.models.checkpoint import load_model
from src.predict import predict
from src.train import build_datamodule, train
from tests.conftest import compose_config


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """An LR model on the debug synthetic data, and raw (unstandardised) landmark profiles of its test split."""
    root = tmp_path_factory.mktemp("predict")
    cfg = compose_config("train", root, ["model=lr", "debug=fast", "logger=none"], root / "data")
    train(cfg)
    ckpt = f"{cfg.paths.output_dir}/checkpoints/best.ckpt"
    dm = build_datamodule(cfg)
    space = dm.preprocessing
    landmarks = space.landmark_scaler.inverse(dm.splits["test"].landmarks.numpy())
    model = load_model(ckpt)
    with torch.no_grad():
        expected = model(dm.splits["test"].landmarks).numpy()
    return ckpt, landmarks, dm.sample_ids["test"], space, expected


def _write_input(path, landmarks, samples, genes):
    if path.suffix == ".h5ad":
        anndata.AnnData(landmarks, obs=pd.DataFrame(index=samples), var=pd.DataFrame(index=genes)).write_h5ad(path)
    elif path.suffix == ".gctx":
        write_gctx(path, landmarks, samples, genes)
    else:
        pd.DataFrame(landmarks.T, index=genes, columns=samples).to_csv(path, sep="\t", index_label="gene")  # genes in rows
    return path


def _predict(tmp_path, ckpt, input_path, output, *overrides):
    cfg = compose_config("predict", tmp_path, [f"ckpt_path={ckpt}", f"input={input_path}", f"output={output}", *overrides])
    return predict(cfg)


@pytest.mark.parametrize("suffix_in, suffix_out", [(".gctx", ".h5ad"), (".h5ad", ".gctx"), (".tsv", ".csv")])
def test_round_trip_in_every_format(tmp_path, trained, suffix_in, suffix_out):
    ckpt, landmarks, samples, space, expected = trained
    genes = list(space.landmark_ids)
    order = np.random.default_rng(0).permutation(len(genes))  # any column order
    source = _write_input(tmp_path / f"in{suffix_in}", landmarks[:, order], samples, [genes[i] for i in order])
    options = ["+reader_options.orientation=features_in_rows"] if suffix_in == ".tsv" else []  # synthetic ids
    written = _predict(tmp_path, ckpt, source, tmp_path / f"out{suffix_out}", "block_size=7", *options)
    assert [p.name for p in written] == ([f"out{suffix_out}"] if suffix_out == ".h5ad" else
                                         [f"out{suffix_out}", f"out_standardised{suffix_out}"])
    if suffix_out == ".h5ad":
        adata = anndata.read_h5ad(written[0])
        standardised, expression = adata.layers["standardised"], adata.X
        assert list(adata.obs_names) == samples and list(adata.var_names) == space.target_ids
    else:
        options = {"orientation": "samples_in_rows"} if suffix_out == ".csv" else {}
        reader = open_matrix(written[1], **options)
        assert list(reader.sample_ids) == samples and list(reader.feature_ids) == space.target_ids
        standardised = next(reader.blocks(block_size=10**6))[1]
        expression = next(open_matrix(written[0], **options).blocks(block_size=10**6))[1]
    np.testing.assert_allclose(standardised, expected, atol=2e-4)
    np.testing.assert_allclose(expression, space.target_scaler.inverse(expected), atol=2e-3)


def test_probe_level_input_of_a_geo_model_is_mapped_and_quantile_normalised(tmp_path, gpl96):
    from tests.conftest import SHARED

    maps = [f"data.source.landmark_map={SHARED}/dgex/map_lm.txt", f"data.source.target_map={SHARED}/dgex/map_tg.txt"]
    cfg = compose_config("train", tmp_path / "geo", ["data=geo", f"data.source.path={gpl96}", *maps, "model=lr",
                                                      "debug=fast", "logger=none"], tmp_path / "data")
    train(cfg)
    out = tmp_path / "pred.gctx"
    _predict(tmp_path, f"{cfg.paths.output_dir}/checkpoints/best.ckpt", gpl96, out)
    values, header = read_matrix(out)
    assert values.shape == (57, 300) and np.isfinite(values).all()
    assert header.feature_ids[0].startswith("ENSG") and 2 < values.mean() < 15  # log2 expression scale


def test_input_lacking_landmarks_or_with_nan_is_refused_and_nothing_is_written(tmp_path, trained):
    ckpt, landmarks, samples, space, _ = trained
    genes = list(space.landmark_ids)
    partial = _write_input(tmp_path / "partial.gctx", landmarks[:, 3:], samples, genes[3:])
    with pytest.raises(ValueError, match=rf"partial.gctx: 3 Ensembl gene ids of .*best.ckpt are missing \(first: {genes[0]}"):
        _predict(tmp_path, ckpt, partial, tmp_path / "out.gctx")
    broken = landmarks.copy()
    broken[5, 2] = np.nan
    nan = _write_input(tmp_path / "nan.gctx", broken, samples, genes)
    with pytest.raises(ValueError, match=rf"nan.gctx: 1 non-finite .*landmark values .* sample {samples[5]} feature {genes[2]}"):
        _predict(tmp_path, ckpt, nan, tmp_path / "out.gctx", "block_size=4")
    assert not list(tmp_path.glob("out*")) and not list(tmp_path.glob(".out*"))


def test_a_failed_prediction_leaves_an_earlier_output_intact(tmp_path, trained):
    ckpt, landmarks, samples, space, _ = trained
    genes = list(space.landmark_ids)
    good = _write_input(tmp_path / "good.gctx", landmarks, samples, genes)
    (out, _) = _predict(tmp_path, ckpt, good, tmp_path / "out.gctx")
    before = out.read_bytes()
    broken = landmarks.copy()
    broken[-1, 0] = np.inf  # fails in the last block, after earlier blocks were written
    bad = _write_input(tmp_path / "bad.gctx", broken, samples, genes)
    with pytest.raises(ValueError, match="non-finite .*landmark values"):
        _predict(tmp_path, ckpt, bad, tmp_path / "out.gctx", "block_size=5")
    assert out.read_bytes() == before and not list(tmp_path.glob(".out*"))
