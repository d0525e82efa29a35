"""Prediction on new landmark data: round trips in every format, streaming, and refused input."""

import json

import anndata
import numpy as np
import pandas as pd
import pytest
import torch

from src.common.errors import InputError
from src.data.io.gctx import read_matrix, write_gctx
from src.data.io.matrix import open_matrix
from src.models.loading import load_model
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
    written = _predict(tmp_path, ckpt, source, tmp_path / f"out{suffix_out}", "block_size=7", "interval=0.9", *options)
    layers = ["", "_standardised", "_lower", "_upper", "_standardised_lower", "_standardised_upper"]
    sidecars = ["out_genes.csv", "out_samples.csv", "out_provenance.json"] if suffix_out == ".csv" else []
    assert [p.name for p in written] == ([f"out{suffix_out}"] if suffix_out == ".h5ad" else
                                         [f"out{layer}{suffix_out}" for layer in layers] + sidecars)
    trust = load_model(ckpt).trust.reliability
    if suffix_out == ".h5ad":
        adata = anndata.read_h5ad(written[0])
        standardised, expression = adata.layers["standardised"], adata.X
        lower, upper = adata.layers["standardised_lower"], adata.layers["standardised_upper"]
        assert list(adata.obs_names) == samples and list(adata.var_names) == space.target_ids
        genes_table, samples_table = adata.var, adata.obs
        assert adata.uns["model"] == "LinearRegression"
    else:
        options = {"orientation": "samples_in_rows"} if suffix_out == ".csv" else {}
        reader = open_matrix(written[1], **options)
        assert list(reader.sample_ids) == samples and list(reader.feature_ids) == space.target_ids
        standardised, expression, lower, upper = (next(open_matrix(written[i], **options).blocks(block_size=10**6))[1]
                                                  for i in (1, 0, 4, 5))
        if suffix_out == ".gctx":
            from src.data.io.gctx import read_meta

            genes_table = pd.DataFrame(read_meta(written[0], "feature"))
            genes_table["reliable"] = genes_table["reliable"].astype(bool)
            samples_table = pd.DataFrame(read_meta(written[0], "sample"))
        else:
            genes_table, samples_table = pd.read_csv(written[-3]), pd.read_csv(written[-2])
    # Every profile's shift score travels too: these are the training cohort's own, so few are flagged.
    assert {"shift_score", "shift_p", "shift_percentile", "unlike_training"} <= set(samples_table.columns)
    p_values = samples_table["shift_p"].to_numpy(dtype=float)
    assert ((0 < p_values) & (p_values <= 1)).all() and (p_values < 0.01).mean() <= 0.1
    # The calibration split's per-gene verdict travels with the predictions, in every format.
    np.testing.assert_array_equal(genes_table["reliable"].to_numpy(), trust.reliable)
    np.testing.assert_allclose(genes_table["heldout_mae"].to_numpy(), trust.heldout_mae, rtol=1e-5)
    assert (lower < standardised).all() and (standardised < upper).all()
    np.testing.assert_allclose(standardised, expected, atol=2e-4)
    np.testing.assert_allclose(expression, space.target_scaler.inverse(expected), atol=2e-3)


def test_probe_level_input_of_a_geo_model_is_mapped_and_quantile_normalised(tmp_path, gpl96, geo_lr):
    cfg = geo_lr
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
        _predict(tmp_path, ckpt, bad, tmp_path / "out.gctx", "block_size=5", "overwrite=true")
    assert out.read_bytes() == before and not list(tmp_path.glob(".out*"))


@pytest.mark.parametrize("suffix", [".gctx", ".h5ad", ".csv"])
def test_an_output_that_cannot_fit_is_refused_before_any_work_and_a_disk_filling_while_writing_is_one_message(
        tmp_path, trained, monkeypatch, suffix):
    """``ulimit -f`` below the output's size: refused at the start with the sizes (the same check as the free
    space of the output's disk); and where the limit is only hit while writing (the check bypassed here), one
    error naming the output, no temporary file left, and the process alive. (Before: a segmentation fault
    for GCTX, two tracebacks naming a hidden file for the others.)"""
    import resource

    import src.inference.predictor as engine
    from src.common.errors import NoRoomError

    ckpt, landmarks, samples, space, _ = trained
    source = _write_input(tmp_path / "in.gctx", np.tile(landmarks, (20, 1)), [f"{s}_{i}" for i in range(20) for s in samples],
                          list(space.landmark_ids))
    out = tmp_path / "out" / f"pred{suffix}"
    out.parent.mkdir()
    with monkeypatch.context() as disk:
        disk.setattr("os.statvfs", lambda p: type("S", (), {"f_bavail": 10, "f_frsize": 4096})())
        with pytest.raises(NoRoomError, match=r"are needed and 40.0 KB are free on the disk of .*choose another output"):
            _predict(tmp_path, ckpt, source, out)
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (60_000, hard))
    try:
        with pytest.raises(NoRoomError, match=rf"cannot write output={out}: a file of about .* at most 58.6 KB \(ulimit -f\)"):
            _predict(tmp_path, ckpt, source, out)
        assert list(out.parent.iterdir()) == []
        # Past the check (bypassed): GCTX reserves its file's room before writing, the others fail mid-write;
        # either way one error, in this process, which goes on (HDF5 once crashed it here).
        monkeypatch.setattr(engine, "check_room", lambda *a, **k: None)
        with pytest.raises(NoRoomError, match=rf"cannot write {tmp_path / 'out'}/pred.*: File too large"):
            _predict(tmp_path, ckpt, source, out)
        assert list(out.parent.iterdir()) == []
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))


HOLDER = """
import sys, time
from src.common.atomic import claimed
with claimed(sys.argv[1]):
    print("held", flush=True)
    time.sleep(120)
"""


def test_a_second_writer_of_one_output_is_refused_before_any_work_and_a_dead_writers_claim_is_taken(tmp_path, trained):
    """Two predicts into one new output, both with overwrite=false: the one that starts second is refused at
    once (it would otherwise replace the first one's complete output when it finished); once the first
    writer is gone (here killed: its claim is stale), the output can be written."""
    import subprocess
    import sys

    from tests.conftest import REPO

    ckpt, landmarks, samples, space, _ = trained
    source = _write_input(tmp_path / "in.gctx", landmarks, samples, list(space.landmark_ids))
    out = tmp_path / "conc.csv"
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(out)], cwd=REPO, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(FileExistsError, match=rf"output={out} is being written by process {holder.pid} on "):
            _predict(tmp_path, ckpt, source, out)
        assert not list(tmp_path.glob("conc*"))  # refused before any work
    finally:
        holder.kill()
        holder.wait()
    assert (tmp_path / ".conc.csv.claim").exists()  # left by the killed writer
    written = _predict(tmp_path, ckpt, source, out)
    assert written[0] == out and out.exists() and not (tmp_path / ".conc.csv.claim").exists()


@pytest.fixture(scope="module")
def geo_ridge(tmp_path_factory, gpl96):
    """Ridge (lr_l2) trained on the real GPL96 file with D-GEX's GEO preprocessing, all 9,520 targets."""
    from tests.conftest import SHARED

    root = tmp_path_factory.mktemp("geo_ridge")
    maps = [f"data.source.landmark_map={SHARED}/dgex/map_lm.txt", f"data.source.target_map={SHARED}/dgex/map_tg.txt"]
    cfg = compose_config("train", root, ["data=geo", f"data.source.path={gpl96}", *maps, "model=lr_l2", "logger=none"],
                         root / "data")
    metrics = train(cfg)
    return cfg, metrics, f"{cfg.paths.output_dir}/checkpoints/best.ckpt"


def _raw_profiles(path, sample_ids, out):
    values, header = read_matrix(path)
    index = {s: i for i, s in enumerate(header.sample_ids)}
    write_gctx(out, values[[index[s] for s in sample_ids]], sample_ids, header.feature_ids)
    return out


def test_predict_on_the_raw_test_profiles_reproduces_the_deployed_test_mae(tmp_path, gpl96, geo_ridge):
    from src.reporting.run_folder import RunFolder

    cfg, metrics, ckpt = geo_ridge
    # Quantile-normalised data: D-GEX's protocol (landmarks ranked with the true targets) and the
    # deployed path (landmarks alone, as src.predict sees a new profile) are two numbers.
    assert metrics["test/deployed_mae"] != metrics["test/mae"]
    test_ids = RunFolder(cfg.paths.output_dir).read_splits()["test"]
    source = _raw_profiles(gpl96, test_ids, tmp_path / "raw_test.gctx")  # every probe, as the file has them
    written = _predict(tmp_path, ckpt, source, tmp_path / "pred.gctx")
    predicted, header = read_matrix(written[1])  # the standardised predictions
    dm = build_datamodule(cfg)
    assert dm.sample_ids["test"] == test_ids and list(header.sample_ids) == test_ids
    scored = load_model(ckpt).scored_genes.numpy()
    mae = np.abs(predicted - dm.split_data("test").targets.numpy())[:, scored].mean()
    assert mae == pytest.approx(metrics["test/deployed_mae"], abs=1e-5)


def test_a_half_landmark_panel_of_real_gpl96_data_gets_values_intervals_and_reliability_for_every_target(
    tmp_path, gpl96, geo_ridge
):
    from tests.conftest import SHARED

    _, _, ckpt = geo_ridge
    values, header = read_matrix(gpl96)
    landmark_probes = [line.split("\t")[2].strip() for line in open(f"{SHARED}/dgex/map_lm.txt")]
    dropped = set(np.random.default_rng(0).permutation(landmark_probes)[: len(landmark_probes) // 2])
    keep = [i for i, f in enumerate(header.feature_ids) if f not in dropped]
    source = write_gctx(tmp_path / "half.gctx", values[:, keep], list(header.sample_ids), [header.feature_ids[i] for i in keep])
    with pytest.raises(ValueError, match=r"471 probes of .*best.ckpt are missing.*missing_landmarks=impute"):
        _predict(tmp_path, ckpt, source, tmp_path / "refused.h5ad")
    (out,) = _predict(tmp_path, ckpt, source, tmp_path / "half.h5ad", "missing_landmarks=impute", "interval=0.9")
    adata = anndata.read_h5ad(out)
    assert adata.shape == (57, 9520) and np.isfinite(adata.X).all()
    lower, upper = adata.layers["lower"], adata.layers["upper"]
    assert np.isfinite(lower).all() and np.isfinite(upper).all() and (lower < adata.X).all() and (adata.X < upper).all()
    assert adata.var["reliable"].dtype == bool and np.isfinite(adata.var["heldout_mae"]).all()
    assert adata.uns["landmarks_present"] == "472 of 943"
    # Provenance and the ids biologists read: symbols next to the Ensembl ids, the checkpoint's hash.
    assert adata.var["symbol"].iloc[0] and adata.var_names[0].startswith("ENSG")
    assert len(adata.uns["checkpoint_sha256"]) == 64 and adata.uns["framework"].startswith("gexinfer")


# ------------------------------------------------------------------ never lose a file


def _never_read(monkeypatch):
    """Fail the test if the input is opened: the refusals below come before any work."""
    def refuse(*args, **kwargs):
        raise AssertionError("the input was read before the outputs were checked")
    monkeypatch.setattr("src.inference.predictor.open_matrix", refuse)


def test_an_output_that_is_the_input_is_refused_in_every_spelling_and_the_input_kept(tmp_path, trained, monkeypatch):
    import re

    ckpt, landmarks, samples, space, _ = trained
    (tmp_path / "data").mkdir()
    source = _write_input(tmp_path / "data" / "in.h5ad", landmarks, samples, list(space.landmark_ids))
    before = source.read_bytes()
    (tmp_path / "link.h5ad").symlink_to(source)
    monkeypatch.chdir(tmp_path)  # for the relative spelling
    _never_read(monkeypatch)
    for output in [source, tmp_path / "data" / ".." / "data" / "in.h5ad", tmp_path / "link.h5ad", "data/in.h5ad"]:
        with pytest.raises(ValueError, match=rf"output={re.escape(str(output))} is the input file .*in.h5ad.*choose another output"):
            _predict(tmp_path, ckpt, source, output, "overwrite=true")
    assert source.read_bytes() == before


@pytest.mark.parametrize("output, input_name", [("pred.gctx", "pred_standardised.gctx"), ("pred.csv", "pred_genes.csv"),
                                                ("pred.csv", "pred_upper.csv")])
def test_an_output_whose_layer_or_sidecar_file_is_the_input_is_refused(tmp_path, trained, monkeypatch, output, input_name):
    ckpt, landmarks, samples, space, _ = trained
    source = tmp_path / input_name
    source.write_text("user data")
    _never_read(monkeypatch)
    with pytest.raises(ValueError, match=rf"{input_name} \(one of the files of output=.*{output}\) is the input file"):
        _predict(tmp_path, ckpt, source, tmp_path / output, "interval=0.9", "overwrite=true")
    assert source.read_text() == "user data" and sorted(p.name for p in tmp_path.glob("pred*")) == [input_name]


def test_an_existing_output_is_replaced_only_with_overwrite_true(tmp_path, trained, monkeypatch):
    ckpt, landmarks, samples, space, _ = trained
    source = _write_input(tmp_path / "in.gctx", landmarks, samples, list(space.landmark_ids))
    earlier = tmp_path / "pred_standardised.gctx"  # a layer file of an earlier run is enough
    earlier.write_text("earlier")
    with monkeypatch.context() as patch:
        _never_read(patch)
        with pytest.raises(FileExistsError, match=rf"^{earlier} exists; pass overwrite=true to replace it, or choose another output"):
            _predict(tmp_path, ckpt, source, tmp_path / "pred.gctx")
    assert earlier.read_text() == "earlier" and not (tmp_path / "pred.gctx").exists()
    written = _predict(tmp_path, ckpt, source, tmp_path / "pred.gctx", "overwrite=true")
    assert written[1] == earlier and read_matrix(earlier)[0].shape == (len(samples), len(space.target_ids))


def test_an_unwritable_output_names_the_output_and_the_problem_before_any_work(tmp_path, trained, monkeypatch):
    ckpt, landmarks, samples, space, _ = trained
    source = _write_input(tmp_path / "in.gctx", landmarks, samples, list(space.landmark_ids))
    (tmp_path / "file").write_text("x")
    output = tmp_path / "file" / "pred.h5ad"  # fails as root too
    _never_read(monkeypatch)
    with pytest.raises(NotADirectoryError) as err:
        _predict(tmp_path, ckpt, source, output)
    assert str(err.value) == f"cannot write {output}: {tmp_path / 'file'} is not a directory; choose another output"


def test_a_prediction_killed_with_sigkill_leaves_a_temporary_file_the_next_run_removes(tmp_path, trained, caplog):
    import signal
    import subprocess
    import sys
    import time

    from tests.conftest import REPO

    ckpt, landmarks, samples, space, expected = trained
    reps = -(-20_000 // len(samples))
    many = [f"{s}_{i}" for i in range(reps) for s in samples]
    source = _write_input(tmp_path / "big.gctx", np.tile(landmarks, (reps, 1)), many, list(space.landmark_ids))
    output = tmp_path / "big.h5ad"
    command = [sys.executable, "-m", "src.predict", f"ckpt_path={ckpt}", f"input={source}", f"output={output}",
               "block_size=1", f"paths.output_root={tmp_path}", f"hydra.run.dir={tmp_path}/killed"]
    proc = subprocess.Popen(command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30  # about 6 s to start
        while time.monotonic() < deadline and not [p for p in tmp_path.glob(".big.h5ad.*.tmp") if p.stat().st_size > 0]:
            time.sleep(0.02)
        time.sleep(0.2)  # in the middle of the prediction (20,000 blocks of one profile)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    (left,) = tmp_path.glob(".big.h5ad.*.tmp")
    assert f".{proc.pid}-" in left.name and left.stat().st_size > 0 and not output.exists()
    with caplog.at_level("WARNING", logger="src.common.atomic"):
        (written,) = _predict(tmp_path, ckpt, source, output)  # the next run writing the same output
    assert not list(tmp_path.glob(".big.h5ad*")) and any(left.name in r.getMessage() for r in caplog.records)
    adata = anndata.read_h5ad(written)
    assert adata.shape == (len(many), len(space.target_ids)) and list(adata.obs_names) == many
    np.testing.assert_allclose(adata.layers["standardised"][-len(samples):], expected, atol=2e-4)


def test_gene_symbols_row_metadata_ids_and_transposed_files(tmp_path, gpl96, geo_lr):
    """Symbols where Ensembl ids are expected, CMap's id_field, and a transposed file named as such."""
    from src.data.genes import read_gene_map
    from tests.conftest import SHARED

    cfg = geo_lr
    ckpt = f"{cfg.paths.output_dir}/checkpoints/best.ckpt"
    lm = read_gene_map(f"{SHARED}/dgex/map_lm.txt")
    values, header = read_matrix(gpl96)
    probes = list(header.feature_ids)
    index = {p: i for i, p in enumerate(probes)}
    cols = [index[p[0]] for p in lm.probes]
    landmarks = values[:, cols]
    # A biologist's CSV: gene symbols (lower case), samples as rows.
    csv = tmp_path / "symbols.csv"
    pd.DataFrame(landmarks, index=list(header.sample_ids), columns=[s.lower() for s in lm.symbols]).to_csv(csv)
    (by_symbol, *_) = _predict(tmp_path, ckpt, csv, tmp_path / "by_symbol.h5ad", "+reader_options.orientation=samples_in_rows")
    (by_probe, *_) = _predict(tmp_path, ckpt, gpl96, tmp_path / "by_probe.h5ad")
    np.testing.assert_allclose(anndata.read_h5ad(by_symbol).X, anndata.read_h5ad(by_probe).X, atol=1e-4)
    # The input's sample annotations (GPL96's /0/META/COL outcome, batch, cancer) are carried into obs.
    assert {"outcome", "batch", "cancer"} <= set(anndata.read_h5ad(by_probe).obs.columns)
    # A CMap GCTX whose row ids are numbers, the symbols in row metadata.
    gctx = write_gctx(tmp_path / "cmap.gctx", landmarks, list(header.sample_ids), [str(i) for i in range(len(cols))],
                      feature_meta={"pr_gene_symbol": np.array(lm.symbols)})
    (by_field, *_) = _predict(tmp_path, ckpt, gctx, tmp_path / "by_field.h5ad", "id_field=pr_gene_symbol")
    np.testing.assert_allclose(anndata.read_h5ad(by_field).X, anndata.read_h5ad(by_probe).X, atol=1e-4)
    # Genes as rows of an h5ad: the message says the file looks transposed.
    transposed = tmp_path / "transposed.h5ad"
    anndata.AnnData(landmarks.T, obs=pd.DataFrame(index=lm.symbols), var=pd.DataFrame(index=list(header.sample_ids))).write_h5ad(transposed)
    with pytest.raises(ValueError, match=r"transposed.h5ad: 943 of the model's landmarks are among the file's sample ids.*transposed"):
        _predict(tmp_path, ckpt, transposed, tmp_path / "t.h5ad")


def test_intervals_or_reliable_genes_from_a_checkpoint_without_calibration_are_refused(tmp_path, trained):
    _, landmarks, samples, space, _ = trained
    cfg = compose_config("train", tmp_path, ["model=lr", "debug=fast", "logger=none", "data.calibration=0"], tmp_path / "data")
    train(cfg)
    ckpt = f"{cfg.paths.output_dir}/checkpoints/best.ckpt"
    assert load_model(ckpt).trust is None
    source = _write_input(tmp_path / "in.h5ad", landmarks, samples, list(space.landmark_ids))
    for option in ("interval=0.9", "genes=reliable"):
        with pytest.raises(InputError, match="holds no calibration.*data.calibration=0.1.*interval=null genes=all"):
            _predict(tmp_path, ckpt, source, tmp_path / "out.h5ad", option)
        assert not (tmp_path / "out.h5ad").exists()
    assert _predict(tmp_path, ckpt, source, tmp_path / "out.h5ad")  # without them it predicts


def _cohort(root, n_samples=80, n_landmarks=30, n_targets=20, absent_landmark=True):
    """Gene maps and one real-looking cohort: targets a noisy linear function of the landmarks (log2 TPM)."""
    rng = np.random.default_rng(3)
    lm, tg = root / "map_lm.txt", root / "map_tg.txt"
    lm.write_text("".join(f"LMK{i}\tENSG1{i:05d}\t{i}_at\n" for i in range(n_landmarks)))
    tg.write_text("".join(f"TGT{i}\tENSG2{i:05d}\t{1000 + i}_at\n" for i in range(n_targets)))
    x = rng.normal(3, 1, size=(n_samples, n_landmarks))
    y = x @ rng.normal(0, 0.3, size=(n_landmarks, n_targets)) + 0.2 * rng.normal(size=(n_samples, n_targets))
    tpm = np.round(np.exp2(np.clip(np.hstack([x, y + 3]), 0, None)) - 1, 1)
    tpm[tpm < 0.5] = 0  # below the cutoff: written blank
    return (lm, tg), tpm


def test_an_expression_atlas_file_and_a_samples_by_symbols_csv_train_and_predict_as_published(tmp_path):
    (lm, tg), tpm = _cohort(tmp_path)
    n_lm = 30
    ens = [f"ENSG1{i:05d}" for i in range(n_lm) if i != 5] + [f"ENSG2{i:05d}" for i in range(20)]  # landmark 5 absent
    values = np.delete(tpm, 5, axis=1)
    samples = [f"NA{10000 + i}" for i in range(len(tpm))]
    atlas = tmp_path / "E-TEST-1-query-results.tpms.tsv"
    lines = ["# Expression Atlas", "# Query: Genes matching: 'default query'", "# Selected columns: 80 (all)", "# Timestamp: now",
             "\t".join(["Gene ID", "Gene Name", *(f"Yoruba, {s}" for s in samples)])]
    for g, column in zip(ens, values.T):
        lines.append("\t".join([g, g.replace("ENSG", "SYM"), *("" if v == 0 else f"{v:g}" for v in column)]))
    atlas.write_text("\n".join(lines) + "\n")
    design = tmp_path / "E-TEST-1-experiment-design.tsv"
    design.write_text("Run\tSample Characteristic[individual]\tSample Characteristic[sex]\n" +
                      "".join(f"ERR{i}\t{s}\t{'male' if i % 2 else 'female'}\n" for i, s in enumerate(samples)))
    cfg = compose_config("train", tmp_path, [
        "data=matrix", f"data.source.path={atlas}", f"data.source.landmark_map={lm}", f"data.source.target_map={tg}",
        "data.source.log2=true", f"data.source.sample_annotations={design}", "model=lr_l2", "logger=none",
    ], tmp_path / "data")
    metrics = train(cfg)
    run = tmp_path / cfg.paths.output_dir
    meta = json.loads((run / "metrics.json").read_text())
    assert meta["genes_dropped"]["landmarks"] == {"count": 1, "symbols": ["LMK5"], "ids": ["ENSG100005"]}
    assert metrics["test/mae"] < 0.6
    splits = pd.read_csv(run / "splits.tsv", sep="\t")
    assert {"header_annotation", "sex"} <= set(splits.columns) and set(splits["header_annotation"]) == {"Yoruba"}
    ckpt = run / "checkpoints" / "best.ckpt"
    assert len(load_model(ckpt).preprocessing.landmark_ids) == n_lm - 1  # the checkpoint names the landmarks it uses
    # The same file predicts as it lies, its header annotations and the design file carried into the output.
    out = tmp_path / "atlas_pred.h5ad"
    _predict(tmp_path, ckpt, atlas, out, "interval=0.9", f"sample_annotations={design}")
    pred = anndata.read_h5ad(out)
    assert list(pred.obs_names) == samples and set(pred.obs["header_annotation"]) == {"Yoruba"}
    assert list(pred.obs["sex"][:2]) == ["female", "male"] and pred.n_vars == 20
    # A samples x symbols CSV (the most common file a biologist has) trains and predicts with no override.
    maps = {f"ENSG1{i:05d}": f"LMK{i}" for i in range(n_lm)} | {f"ENSG2{i:05d}": f"TGT{i}" for i in range(20)}
    csv = tmp_path / "cohort.csv"
    pd.DataFrame(np.log2(tpm + 1), index=samples, columns=list(maps.values())).to_csv(csv, index_label="sample")
    cfg = compose_config("train", tmp_path / "csv", [
        "data=matrix", f"data.source.path={csv}", f"data.source.landmark_map={lm}", f"data.source.target_map={tg}",
        "model=lr_l2", "logger=none",
    ], tmp_path / "data")
    train(cfg)
    ckpt = tmp_path / "csv" / cfg.paths.output_dir / "checkpoints" / "best.ckpt"
    landmarks_only = tmp_path / "landmarks.csv"
    pd.DataFrame(np.log2(tpm[:5, :n_lm] + 1), index=samples[:5], columns=[f"lmk{i}" for i in range(n_lm)]).to_csv(landmarks_only)
    written = _predict(tmp_path, ckpt, landmarks_only, tmp_path / "sym_pred.csv")
    assert pd.read_csv(written[0], index_col=0).shape == (5, 20)
