import warnings

import anndata
import h5py
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from src.data.io.h5ad import H5ADReader
from src.data.io.base import MatrixFormatError
from src.data.io.matrix import open_matrix

X = np.arange(7 * 4, dtype=np.float64).reshape(7, 4)
SAMPLES = [f"cell{i}" for i in range(7)]
GENES = ["ENSG01", "ENSG02", "ENSG03", "ENSG04"]


def write_h5ad(path, x=X, samples=SAMPLES, genes=GENES, layers=None):
    with warnings.catch_warnings():  # anndata warns about non-unique names, tested on purpose
        warnings.simplefilter("ignore")
        adata = anndata.AnnData(X=x, obs=pd.DataFrame(index=samples), var=pd.DataFrame(index=genes), layers=layers)
        adata.write_h5ad(path)
    return path


def read_all(reader, columns=None, block_size=3):
    blocks = list(reader.blocks(columns, block_size))
    assert all(b.dtype == np.float32 for _, b in blocks)
    return [rows for rows, _ in blocks], np.vstack([b for _, b in blocks])


@pytest.mark.parametrize("x", [X, sp.csr_matrix(X), sp.csc_matrix(X)], ids=["dense", "csr", "csc"])
def test_round_trip_dense_and_sparse(tmp_path, x):
    with H5ADReader(write_h5ad(tmp_path / "x.h5ad", x)) as reader:
        assert list(reader.sample_ids) == SAMPLES and list(reader.feature_ids) == GENES
        slices, values = read_all(reader, np.array([3, 1]))
    assert slices == [slice(0, 3), slice(3, 6), slice(6, 7)]
    np.testing.assert_array_equal(values, X[:, [3, 1]])


def test_reads_a_layer(tmp_path):
    path = write_h5ad(tmp_path / "x.h5ad", layers={"counts": sp.csr_matrix(X * 10)})
    reader = H5ADReader(path, layer="counts")
    np.testing.assert_array_equal(read_all(reader)[1], X * 10)
    reader.close()
    with pytest.raises(MatrixFormatError, match="no layer 'raw'; the file's layers are: counts"):
        H5ADReader(path, layer="raw")


def test_open_matrix_dispatch_and_close(tmp_path):
    reader = open_matrix(write_h5ad(tmp_path / "x.h5ad"))
    assert isinstance(reader, H5ADReader)
    np.testing.assert_array_equal(read_all(reader)[1], X)
    reader.close()
    reader.close()  # idempotent
    with pytest.raises(MatrixFormatError, match="reader is closed"):
        next(reader.blocks())
    with h5py.File(tmp_path / "x.h5ad", "r+"):  # no handle left open by the reader
        pass


def truncated(path):
    write_h5ad(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


@pytest.mark.parametrize(
    "make, expected",
    [
        (lambda p: p.write_bytes(b""), "the file is empty"),
        (lambda p: p.write_text("not hdf5 at all\n" * 20), "not a readable HDF5 file"),
        (truncated, "not a readable HDF5 file"),
        (lambda p: h5py.File(p, "w").close(), "not an .h5ad file: no obs, var, X"),
        (lambda p: write_h5ad(p, samples=["a"] * 7), "sample ids occur more than once (first: a)"),
        (lambda p: write_h5ad(p, genes=["g", "g", "h", "i"]), "feature ids occur more than once (first: g)"),
    ],
    ids=["empty", "garbage", "truncated", "plain-hdf5", "duplicate-samples", "duplicate-features"],
)
def test_errors_name_the_file_and_the_problem(tmp_path, make, expected):
    path = tmp_path / "bad.h5ad"
    make(path)
    with pytest.raises(MatrixFormatError) as err:
        H5ADReader(path)
    assert str(path) in str(err.value) and expected in str(err.value)
