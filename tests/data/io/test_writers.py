"""MatrixWriter: layers, per-gene / per-sample annotations and provenance in .h5ad, GCTX and CSV/TSV."""

import gzip
import json

import anndata
import h5py
import numpy as np
import pandas as pd
import pytest

from src.data.io.gctx import read_header, read_matrix, read_meta
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
