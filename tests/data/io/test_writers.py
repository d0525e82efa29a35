"""MatrixWriter: layers, per-gene / per-sample annotations and provenance in .h5ad, GCTX and CSV/TSV."""

import gzip
import json
import os
import re
import types

import anndata
import h5py
import numpy as np
import pandas as pd
import pytest

from src.data.io.gctx import GCTXWriter, read_header, read_matrix, read_meta
from src.data.io.matrix import open_matrix
from src.data.io.writers import MatrixWriter

SAMPLES = [f"s{i}" for i in range(5)]
GENES = ["ENSG01", "ENSG02", "ENSG03", "ENSG04"]
RNG = np.random.default_rng(0)
EXPRESSION = RNG.normal(size=(5, 4)).astype(np.float32)
STANDARDISED = RNG.normal(size=(5, 4)).astype(np.float32)
GENE_ANN = {
    "symbol": ["TP53", "BRCA1", "EGFR", "MYC"],
    "reliable": [True, False, True, True],
    "heldout_mae": np.array([0.25, 0.5, np.nan, 0.125]),
    "heldout_pearson": np.array([0.9, 0.1, 0.75, 0.5], dtype=np.float32),
    "n_probes": [1, 2, 3, 4],
}
SAMPLE_ANN = {"batch": ["a", "a", "b", "b", "c"], "in_range": [True, True, False, True, True], "depth": [1.5, 2.0, 2.5, 3.0, 3.5]}
UNS = {"checkpoint": "/runs/best.ckpt", "checkpoint_sha256": "ab12", "model": "dgex", "package_version": "0.3.0"}


def write(path, blocks=((0, 3), (3, 5)), **kwargs):
    with MatrixWriter(path, SAMPLES, GENES, ["expression", "standardised"], **kwargs) as writer:
        for start, stop in blocks:
            writer.write({"expression": EXPRESSION[start:stop], "standardised": STANDARDISED[start:stop]})
    return writer


def annotated(path, **kwargs):
    return write(path, feature_annotations=GENE_ANN, sample_annotations=SAMPLE_ANN, uns=UNS, **kwargs)


def leftovers(folder):
    return sorted(p.name for p in folder.iterdir())


# ------------------------------------------------------------------ h5ad


def test_h5ad_keeps_annotations_as_var_obs_and_uns_with_their_dtypes(tmp_path):
    writer = annotated(tmp_path / "pred.h5ad")
    assert writer.paths == [tmp_path / "pred.h5ad"]
    assert leftovers(tmp_path) == ["pred.h5ad"]
    adata = anndata.read_h5ad(tmp_path / "pred.h5ad")
    np.testing.assert_array_equal(adata.X, EXPRESSION)
    np.testing.assert_array_equal(adata.layers["standardised"], STANDARDISED)
    assert list(adata.obs_names) == SAMPLES and list(adata.var_names) == GENES
    var = adata.var
    assert var["reliable"].dtype == bool and list(var["reliable"]) == GENE_ANN["reliable"]
    assert var["heldout_mae"].dtype == np.float64
    np.testing.assert_array_equal(var["heldout_mae"].to_numpy(), GENE_ANN["heldout_mae"])  # NaN kept
    assert var["heldout_pearson"].dtype == np.float32
    assert var["n_probes"].dtype.kind == "i" and list(var["n_probes"]) == [1, 2, 3, 4]
    assert not isinstance(var["symbol"].dtype, pd.CategoricalDtype) and list(var["symbol"]) == GENE_ANN["symbol"]
    obs = adata.obs
    assert not isinstance(obs["batch"].dtype, pd.CategoricalDtype) and list(obs["batch"]) == SAMPLE_ANN["batch"]
    assert obs["in_range"].dtype == bool and list(obs["depth"]) == SAMPLE_ANN["depth"]
    assert {k: adata.uns[k] for k in UNS} == UNS and all(type(adata.uns[k]) is str for k in UNS)


@pytest.mark.parametrize("annotations", [True, False])
def test_h5ad_is_written_where_pandas_infers_its_string_dtype(tmp_path, annotations):
    """pandas 3 (here pandas 2's future.infer_string) makes str ids nullable string arrays, which anndata
    refuses to write (seen on a GPU machine's pandas): ids and str columns are written as plain strings."""
    with pd.option_context("future.infer_string", True):
        (annotated if annotations else write)(tmp_path / "pred.h5ad")
    adata = anndata.read_h5ad(tmp_path / "pred.h5ad")
    assert list(adata.obs_names) == SAMPLES and list(adata.var_names) == GENES
    if annotations:
        assert list(adata.var["symbol"]) == GENE_ANN["symbol"] and list(adata.obs["batch"]) == SAMPLE_ANN["batch"]


def test_h5ad_with_annotations_is_still_read_by_the_repo_reader(tmp_path):
    annotated(tmp_path / "pred.h5ad")
    reader = open_matrix(tmp_path / "pred.h5ad")
    values = np.vstack([block for _, block in reader.blocks(None, 2)])
    np.testing.assert_array_equal(values, EXPRESSION)
    assert list(reader.feature_ids) == GENES


def test_h5ad_without_annotations_has_empty_var_obs_and_uns(tmp_path):
    write(tmp_path / "plain.h5ad")
    adata = anndata.read_h5ad(tmp_path / "plain.h5ad")
    assert adata.var.shape == (4, 0) and adata.obs.shape == (5, 0) and dict(adata.uns) == {}


# ------------------------------------------------------------------ GCTX


def cmap_style_meta(path, group):
    """Parse a metadata group as cmapPy's parse_gctx does: every dataset to str, then to numbers if possible."""
    with h5py.File(path, "r") as f:
        columns = {}
        for name, ds in f[group].items():
            values = np.empty(ds.shape, dtype=ds.dtype)
            ds.read_direct(values)
            columns[name] = values.astype("str")
        version = f.attrs["version"]
    df = pd.DataFrame(columns)
    ids = df.pop("id")
    for name in df:
        try:
            df[name] = pd.to_numeric(df[name])
        except (ValueError, TypeError):
            pass
    df = df.replace([-666, -666.0], np.nan)
    return df.set_index(pd.Index(ids, dtype=str)), version


def test_gctx_writes_row_and_col_metadata_and_attrs_in_every_file(tmp_path):
    writer = annotated(tmp_path / "pred.gctx")
    files = [tmp_path / "pred.gctx", tmp_path / "pred_standardised.gctx"]
    assert writer.paths == files
    assert leftovers(tmp_path) == ["pred.gctx", "pred_standardised.gctx"]
    for path, layer in zip(files, [EXPRESSION, STANDARDISED]):
        values, header = read_matrix(path)
        np.testing.assert_array_equal(values, layer)
        assert header.attrs == {"version": "GCTX1.0", **UNS}
        rows, cols = read_meta(path, "feature"), read_meta(path, "sample")
        assert list(rows["id"]) == GENES and list(cols["id"]) == SAMPLES
        assert list(rows["symbol"]) == GENE_ANN["symbol"]
        assert list(rows["reliable"]) == [1, 0, 1, 1]
        assert list(rows["heldout_mae"]) == [0.25, 0.5, -666, 0.125]  # NaN as CMap's null
        assert list(rows["n_probes"]) == [1, 2, 3, 4]
        assert list(cols["batch"]) == SAMPLE_ANN["batch"] and list(cols["depth"]) == SAMPLE_ANN["depth"]
        with h5py.File(path, "r") as f:
            meta = f["0/META/ROW"]
            # the CMap layout: fixed-length byte strings like the ids, bools as int8, numbers as numbers
            assert meta["symbol"].dtype.kind == "S" and meta["id"].dtype.kind == "S"
            assert meta["reliable"].dtype == np.int8
            assert meta["heldout_mae"].dtype == np.float64 and meta["heldout_pearson"].dtype == np.float32
            assert f["0/META/COL/in_range"].dtype == np.int8
            assert all(isinstance(f.attrs[k], str) for k in UNS)


def test_gctx_metadata_parses_the_way_cmappy_parses_it(tmp_path):
    annotated(tmp_path / "pred.gctx")
    rows, version = cmap_style_meta(tmp_path / "pred.gctx", "0/META/ROW")
    assert version == "GCTX1.0" and list(rows.index) == GENES
    assert list(rows["symbol"]) == GENE_ANN["symbol"]
    assert list(rows["reliable"]) == [1, 0, 1, 1] and rows["reliable"].dtype.kind == "i"
    assert rows["heldout_mae"].dtype.kind == "f" and np.isnan(rows["heldout_mae"].iloc[2])
    cols, _ = cmap_style_meta(tmp_path / "pred.gctx", "0/META/COL")
    assert list(cols.index) == SAMPLES and list(cols["depth"]) == SAMPLE_ANN["depth"]


def test_gctx_is_parsed_by_cmappy_when_installed(tmp_path):
    parse = pytest.importorskip("cmapPy.pandasGEXpress.parse").parse
    annotated(tmp_path / "pred.gctx")
    gctoo = parse(str(tmp_path / "pred.gctx"))
    assert gctoo.data_df.shape == (4, 5)  # genes x samples
    assert list(gctoo.row_metadata_df.loc[GENES, "symbol"]) == GENE_ANN["symbol"]
    assert list(gctoo.row_metadata_df.loc[GENES, "reliable"]) == [1, 0, 1, 1]
    assert np.isnan(gctoo.row_metadata_df.loc["ENSG03", "heldout_mae"])
    assert list(gctoo.col_metadata_df.loc[SAMPLES, "batch"]) == SAMPLE_ANN["batch"]


def test_gctx_without_annotations_has_only_ids(tmp_path):
    write(tmp_path / "plain.gctx")
    assert set(read_meta(tmp_path / "plain.gctx")) == {"id"}
    assert set(read_meta(tmp_path / "plain.gctx", "sample")) == {"id"}
    assert read_header(tmp_path / "plain.gctx").attrs == {"version": "GCTX1.0"}


# ------------------------------------------------------------------ CSV / TSV


@pytest.mark.parametrize("name, sep", [("pred.csv", ","), ("pred.tsv.gz", "\t")])
def test_table_writes_gene_sample_and_provenance_sidecars(tmp_path, name, sep):
    writer = annotated(tmp_path / name)
    stem, ext = name.split(".", 1)
    expected = [f"{stem}.{ext}", f"{stem}_standardised.{ext}", f"{stem}_genes.{ext}", f"{stem}_samples.{ext}",
                f"{stem}_provenance.json"]
    assert writer.paths == [tmp_path / e for e in expected]
    assert leftovers(tmp_path) == sorted(expected)

    genes_path = tmp_path / f"{stem}_genes.{ext}"
    opener = gzip.open if ext.endswith(".gz") else open
    with opener(genes_path, "rt") as handle:
        assert handle.readline().rstrip("\n").split(sep) == ["gene", *GENE_ANN]
    genes = pd.read_csv(genes_path, sep=sep, index_col="gene")
    assert list(genes.index) == GENES and list(genes["symbol"]) == GENE_ANN["symbol"]
    assert genes["reliable"].dtype == bool and list(genes["reliable"]) == GENE_ANN["reliable"]
    np.testing.assert_array_equal(genes["heldout_mae"].to_numpy(), GENE_ANN["heldout_mae"])
    np.testing.assert_allclose(genes["heldout_pearson"].to_numpy(), GENE_ANN["heldout_pearson"], rtol=1e-7)
    assert list(genes["n_probes"]) == [1, 2, 3, 4]

    samples = pd.read_csv(tmp_path / f"{stem}_samples.{ext}", sep=sep, index_col="sample")
    assert list(samples.index) == SAMPLES and list(samples["batch"]) == SAMPLE_ANN["batch"]
    assert samples["in_range"].dtype == bool and list(samples["depth"]) == SAMPLE_ANN["depth"]

    assert json.loads((tmp_path / f"{stem}_provenance.json").read_text()) == UNS

    # the matrix itself is unchanged and still read by the repo's reader
    reader = open_matrix(tmp_path / name)
    values = np.vstack([block for _, block in reader.blocks(None, 2)])
    np.testing.assert_allclose(values, EXPRESSION, rtol=1e-5, atol=1e-6)


def test_table_writes_only_the_sidecars_asked_for(tmp_path):
    writer = write(tmp_path / "pred.csv", feature_annotations={"reliable": [True] * 4}, sample_annotations={})
    assert writer.paths == [tmp_path / "pred.csv", tmp_path / "pred_standardised.csv", tmp_path / "pred_genes.csv"]
    assert leftovers(tmp_path) == ["pred.csv", "pred_genes.csv", "pred_standardised.csv"]
    assert write(tmp_path / "plain.csv").paths == [tmp_path / "plain.csv", tmp_path / "plain_standardised.csv"]


def test_sidecar_that_clashes_with_a_layer_file_is_refused(tmp_path):
    with pytest.raises(ValueError, match="share a file name"):
        MatrixWriter(tmp_path / "pred.csv", SAMPLES, GENES, ["expression", "genes"], feature_annotations={"x": [1] * 4})
    assert leftovers(tmp_path) == []


# ------------------------------------------------------------------ validation and failure


@pytest.mark.parametrize("name", ["pred.h5ad", "pred.gctx", "pred.csv"])
def test_wrong_length_names_the_output_and_the_annotation(tmp_path, name):
    with pytest.raises(ValueError) as err:
        MatrixWriter(tmp_path / name, SAMPLES, GENES, ["expression"], feature_annotations={"reliable": [True, False]})
    message = str(err.value)
    assert str(tmp_path / name) in message and "'reliable'" in message and "2 values" in message and "expected 4" in message
    with pytest.raises(ValueError, match=r"sample annotation 'batch' has 4 values; expected 5"):
        MatrixWriter(tmp_path / name, SAMPLES, GENES, ["expression"], sample_annotations={"batch": list("abcd")})
    with pytest.raises(ValueError, match="'model'"):  # a scalar where a column was expected
        MatrixWriter(tmp_path / name, SAMPLES, GENES, ["expression"], sample_annotations={"model": "dgex"})
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("kwargs, match", [
    ({"feature_annotations": {"id": [1] * 4}}, "'id'"),
    ({"feature_annotations": {"gene": [1] * 4}}, "'gene'"),
    ({"sample_annotations": {"a/b": [1] * 5}}, "'a/b'"),
    ({"uns": {"version": "0.3"}}, "package_version"),
    ({"uns": {"checkpoint": None}}, "'checkpoint' is None"),
])
def test_names_that_cannot_be_written_everywhere_are_refused(tmp_path, kwargs, match):
    with pytest.raises(ValueError, match=match):
        MatrixWriter(tmp_path / "pred.gctx", SAMPLES, GENES, ["expression"], **kwargs)


@pytest.mark.parametrize("name", ["pred.h5ad", "pred.gctx", "pred.csv", "pred.tsv.gz"])
def test_an_exception_inside_the_block_leaves_no_file(tmp_path, name):
    with pytest.raises(RuntimeError, match="boom"):
        with MatrixWriter(tmp_path / name, SAMPLES, GENES, ["expression", "standardised"],
                          feature_annotations=GENE_ANN, sample_annotations=SAMPLE_ANN, uns=UNS) as writer:
            writer.write({"expression": EXPRESSION[:2], "standardised": STANDARDISED[:2]})
            raise RuntimeError("boom")
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("name", ["pred.h5ad", "pred.gctx", "pred.csv"])
def test_too_few_samples_fails_and_leaves_no_file(tmp_path, name):
    with pytest.raises(ValueError, match="wrote 3 samples; expected 5"):
        annotated(tmp_path / name, blocks=((0, 3),))
    assert leftovers(tmp_path) == []


def test_annotations_may_be_a_dataframe_with_pandas_dtypes(tmp_path):
    table = pd.DataFrame({"symbol": pd.array(["A", "B", "C", "D"], dtype="string"),
                          "reliable": pd.Series([True, False, True, False]),
                          "group": pd.Categorical(["x", "y", "x", "y"])})
    write(tmp_path / "pred.h5ad", feature_annotations=table)
    var = anndata.read_h5ad(tmp_path / "pred.h5ad").var
    assert list(var["symbol"]) == ["A", "B", "C", "D"] and list(var["group"]) == ["x", "y", "x", "y"]
    assert var["reliable"].dtype == bool
    write(tmp_path / "pred.gctx", feature_annotations=table)
    assert list(read_meta(tmp_path / "pred.gctx")["symbol"]) == ["A", "B", "C", "D"]


# ------------------------------------------------------------------ never lose a file


@pytest.mark.parametrize("name", ["pred.h5ad", "pred.gctx", "pred.csv", "pred.tsv.gz"])
@pytest.mark.parametrize("annotations", [True, False])
def test_planned_paths_are_the_paths_written(tmp_path, name, annotations):
    kwargs = dict(feature_annotations=GENE_ANN, sample_annotations=SAMPLE_ANN, uns=UNS) if annotations else {}
    planned = MatrixWriter.planned_paths(tmp_path / name, ["expression", "standardised"], **kwargs)
    assert leftovers(tmp_path) == []  # nothing written to plan
    assert write(tmp_path / name, **kwargs).paths == planned
    flags = {key: bool(value) for key, value in kwargs.items()}  # or just whether there will be any
    assert MatrixWriter.planned_paths(tmp_path / name, ["expression", "standardised"], **flags) == planned


def test_check_outputs_refuses_the_input_in_every_spelling_whatever_overwrite_says(tmp_path):
    from src.data.io.writers import check_outputs

    source = tmp_path / "data" / "in.csv"
    source.parent.mkdir()
    source.write_text("sample,g\n")
    (tmp_path / "link.csv").symlink_to(source)
    os.link(source, tmp_path / "hard.csv")
    for output in [source, tmp_path / "data" / ".." / "data" / "in.csv", tmp_path / "link.csv", tmp_path / "hard.csv"]:
        with pytest.raises(ValueError, match=rf"output={re.escape(str(output))} is the input file .*overwrite=true does not"):
            check_outputs(MatrixWriter.planned_paths(output, ["expression"]), inputs=[source], overwrite=True)
    # a layer file or a sidecar of the output is the input
    for layer_file in ["pred_standardised.csv", "pred_genes.csv"]:
        (tmp_path / layer_file).write_text("x")
        paths = MatrixWriter.planned_paths(tmp_path / "pred.csv", ["expression", "standardised"], feature_annotations=True)
        with pytest.raises(ValueError, match=rf"{layer_file} \(one of the files of output=.*pred.csv\) is the input file"):
            check_outputs(paths, inputs=[tmp_path / layer_file], overwrite=True)
    assert source.read_text() == "sample,g\n"


def test_check_outputs_refuses_existing_files_unless_overwrite_and_unwritable_paths(tmp_path):
    from src.data.io.writers import check_outputs

    paths = MatrixWriter.planned_paths(tmp_path / "pred.gctx", ["expression", "standardised"])
    check_outputs(paths, inputs=[tmp_path / "in.gctx"])  # nothing there yet
    paths[1].write_text("earlier")
    with pytest.raises(FileExistsError, match=rf"^{re.escape(str(paths[1]))} exists; pass overwrite=true to replace it"):
        check_outputs(paths)
    paths[0].write_text("earlier")
    with pytest.raises(FileExistsError, match=rf"^{re.escape(str(paths[0]))} exists \(and 1 more .*overwrite=true"):
        check_outputs(paths)
    check_outputs(paths, overwrite=True)
    (tmp_path / "folder.gctx").mkdir()
    with pytest.raises(IsADirectoryError, match="folder.gctx: it is a directory"):
        check_outputs([tmp_path / "folder.gctx"], overwrite=True)
    with pytest.raises(NotADirectoryError, match=rf"cannot write .*pred.gctx/x/out.gctx: .*pred.gctx is not a directory"):
        check_outputs([tmp_path / "pred.gctx" / "x" / "out.gctx"], overwrite=True)


@pytest.mark.parametrize("name", ["pred.h5ad", "pred.gctx", "pred.csv"])
def test_an_output_under_a_file_names_the_output_not_a_temporary_file(tmp_path, name):
    (tmp_path / "file").write_text("x")
    output = tmp_path / "file" / name
    with pytest.raises(NotADirectoryError) as err:
        annotated(output)
    assert str(err.value) == f"cannot write {output}: {tmp_path / 'file'} is not a directory"
    assert leftovers(tmp_path) == ["file"]


def _fail(*args, **kwargs):
    raise RuntimeError("cannot open")


def _fail_second(original):
    calls = []

    def opener(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs) if len(calls) == 1 else _fail()
    return opener


@pytest.mark.parametrize("name, patch", [
    ("pred.h5ad", lambda mp: mp.setattr(anndata.AnnData, "write_h5ad", _fail)),  # writing the skeleton
    ("pred.h5ad", lambda mp: mp.setattr("src.data.io.hdf5.h5py", types.SimpleNamespace(File=_fail))),  # reopening it
    ("pred.gctx", lambda mp: mp.setattr("src.data.io.writers.GCTXWriter", _fail_second(GCTXWriter))),  # second layer
    ("pred.csv", lambda mp: mp.setattr(MatrixWriter, "_write_annotations", _fail)),  # a sidecar, the layers open
    ("pred.csv.gz", lambda mp: mp.setattr("src.data.io.writers.gzip.open", _fail_second(gzip.open))),
])
def test_an_exception_while_opening_leaves_no_file(tmp_path, monkeypatch, name, patch):
    patch(monkeypatch)
    with pytest.raises(RuntimeError, match="cannot open"):
        annotated(tmp_path / name)
    assert leftovers(tmp_path) == []


WRITER = """
import sys, time
import numpy as np
from src.data.io.writers import MatrixWriter

n, genes = 100_000, 1000
block = np.ones((1, genes), dtype=np.float32)
with MatrixWriter(sys.argv[1], [f"s{i}" for i in range(n)], [f"g{j}" for j in range(genes)], ["expression"]) as writer:
    for _ in range(n):
        writer.write({"expression": block})
        time.sleep(0.001)
"""


def test_a_writer_killed_with_sigkill_leaves_a_temporary_file_the_next_writer_of_that_output_removes(tmp_path, caplog):
    import signal
    import subprocess
    import sys
    import time

    from tests.conftest import REPO

    output = tmp_path / "big.h5ad"
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(output)], cwd=REPO)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not [p for p in tmp_path.glob(".big.h5ad.*.tmp") if p.stat().st_size > 0]:
            time.sleep(0.02)
        time.sleep(0.3)  # well inside the writing loop
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    (left,) = tmp_path.glob(".big.h5ad.*.tmp")
    assert f".{proc.pid}-" in left.name and left.stat().st_size > 0 and not output.exists()
    with caplog.at_level("WARNING", logger="src.common.atomic"):
        write(output)  # the next run writing the same output
    assert leftovers(tmp_path) == ["big.h5ad"]
    assert any(left.name in r.getMessage() for r in caplog.records)
    np.testing.assert_array_equal(anndata.read_h5ad(output).X, EXPRESSION)
