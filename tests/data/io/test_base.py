import gzip

import anndata
import numpy as np
import pandas as pd
import pytest

from src.data.io.base import MatrixFormatError, detect_format, output_format, sniff_format
from src.data.io.gctx import GCTXReader, write_gctx
from src.data.io.h5ad import H5ADReader
from src.data.io.matrix import open_matrix
from src.data.io.table import TableReader

VALUES = np.arange(6, dtype=np.float32).reshape(2, 3)


def gctx(path):
    return write_gctx(path, VALUES, ["s1", "s2"], ["ENSG1", "ENSG2", "ENSG3"], sample_meta={"batch": np.array(["a", "b"])})


def h5ad(path):
    anndata.AnnData(X=VALUES, obs=pd.DataFrame(index=["s1", "s2"]), var=pd.DataFrame(index=["g1", "g2", "g3"])).write_h5ad(path)
    return path


def test_format_comes_from_the_content_not_the_name(tmp_path):
    assert detect_format(gctx(tmp_path / "matrix.txt")) == "gctx"
    assert detect_format(h5ad(tmp_path / "cells.gctx")) == "h5ad"
    table = tmp_path / "download.bin"
    table.write_bytes(gzip.compress(b"gene\ts1\nENSG1\t1\n"))
    assert detect_format(table) == "table"
    (tmp_path / "plain.h5").write_text("gene,s1\nENSG1,1\n")
    assert detect_format(tmp_path / "plain.h5") == "table"


def test_open_matrix_reads_a_gctx_file_named_txt(tmp_path):
    reader = open_matrix(gctx(tmp_path / "matrix.txt"), known_features={"ENSG1"})  # not passed to GCTX
    assert isinstance(reader, GCTXReader) and list(reader.sample_ids) == ["s1", "s2"]
    np.testing.assert_array_equal(next(reader.blocks())[1], VALUES)
    assert list(reader.sample_annotations()["batch"]) == ["a", "b"]
    h5 = open_matrix(h5ad(tmp_path / "cells.dat"), known_features={"g1"})
    assert isinstance(h5, H5ADReader)
    h5.close()


def test_the_name_decides_for_outputs_and_unrecognised_content(tmp_path):
    assert detect_format(tmp_path / "pred.h5ad", key=None) == "h5ad"  # does not exist yet: by name
    assert detect_format(tmp_path / "pred.csv", key=None) == "table"
    assert detect_format(tmp_path / "pred.gctx.gz", key=None) == "gctx"
    (tmp_path / "empty.gctx").write_bytes(b"")
    assert sniff_format(tmp_path / "empty.gctx") is None and detect_format(tmp_path / "empty.gctx") == "gctx"
    binary = tmp_path / "profiles.dat"
    binary.write_bytes(bytes(range(256)) * 4)
    with pytest.raises(MatrixFormatError, match=r"profiles\.dat: cannot tell the format from the file's content or name.*input_format=gctx"):
        detect_format(binary)
    with pytest.raises(MatrixFormatError, match=r"out\.xyz: cannot tell the format from the file's name") as err:
        detect_format(tmp_path / "out.xyz", key=None)
    assert "input_format" not in str(err.value)


def test_a_truncated_hdf5_file_goes_to_the_reader_its_name_says(tmp_path):
    raw = gctx(tmp_path / "good.gctx").read_bytes()
    (tmp_path / "truncated.gctx").write_bytes(raw[: len(raw) // 2])
    assert detect_format(tmp_path / "truncated.gctx") == "gctx"
    (tmp_path / "truncated.h5ad").write_bytes(h5ad(tmp_path / "good.h5ad").read_bytes()[:2000])
    assert detect_format(tmp_path / "truncated.h5ad") == "h5ad"


def test_gzipped_table_without_gz_suffix_opens(tmp_path):
    path = tmp_path / "expression.tsv"
    path.write_bytes(gzip.compress(b"gene\ts1\ts2\nENSG1\t1\t2\nENSG2\t3\t4\n"))
    reader = open_matrix(path)
    assert isinstance(reader, TableReader) and list(reader.sample_ids) == ["s1", "s2"]
    np.testing.assert_array_equal(reader.values, [[1, 3], [2, 4]])


def test_an_output_format_comes_from_the_name_even_over_an_existing_file_of_other_content(tmp_path):
    existing = tmp_path / "pred.csv"
    gctx(tmp_path / "g.gctx").rename(existing)  # an HDF5 file where a CSV is about to be written
    assert detect_format(existing) == "gctx" and output_format(existing) == "table"
    with pytest.raises(MatrixFormatError, match=r"out\.xyz: cannot tell the output format from the name.*e\.g\. out\.h5ad"):
        output_format(tmp_path / "out.xyz")
