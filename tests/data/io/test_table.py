import gzip

import numpy as np
import pytest

from src.data.io.base import MatrixFormatError
from src.data.io.matrix import open_matrix
from src.data.io.table import TableReader, looks_like_feature_ids

GENES = ["ENSG00000152931.6", "ENSG00000183696.9", "ENSG00000139269.2", "ENSG00000169129.8", "ENSG00000134602.11"]
SAMPLES = ["HG00096", "HG00097", "NA06984"]
# GEUVADIS layout: genes x samples, values[g, s]
VALUES = np.array([[0.1013, 0.0, 0.5], [8.49, 9.3, 7.1], [0.39, 0.33, 0.0], [0.02, 0.01, 0.0], [1.5, 2.5, 3.5]])


def geuvadis_text(values=VALUES, samples=SAMPLES, genes=GENES) -> str:
    """The columns of GD462.GeneQuantRPKM.50FN.samplename.resk10.txt, tab-separated."""
    lines = ["\t".join(["TargetID", "Gene_Symbol", "Chr", "Coord", *samples])]
    for i, (gene, row) in enumerate(zip(genes, values)):
        lines.append("\t".join([gene, f"SYM{i}", "5", str(59783540 + i), *map(str, row)]))
    return "\n".join(lines) + "\n"


def write(path, text):
    if path.suffix == ".gz":
        with gzip.open(path, "wt") as f:
            f.write(text)
    else:
        path.write_text(text)
    return path


@pytest.mark.parametrize("name", ["GD462.GeneQuantRPKM.50FN.samplename.resk10.txt", "geuvadis.txt.gz"])
def test_reads_geuvadis_layout_plain_and_gzipped(tmp_path, name):
    reader = TableReader(write(tmp_path / name, geuvadis_text()))
    assert reader.orientation == "features_in_rows"
    assert list(reader.sample_ids) == SAMPLES and list(reader.feature_ids) == GENES
    (rows, block), = reader.blocks()
    assert rows == slice(0, 3) and block.dtype == np.float32
    np.testing.assert_array_equal(block, VALUES.T.astype(np.float32))


def test_reads_samples_in_rows_csv(tmp_path):
    text = "cell," + ",".join(GENES) + "\n" + "".join(f"{s}," + ",".join(map(str, VALUES[:, j])) + "\n"
                                                     for j, s in enumerate(SAMPLES))
    reader = TableReader(write(tmp_path / "cells.csv", text))
    assert reader.orientation == "samples_in_rows"
    assert list(reader.sample_ids) == SAMPLES and list(reader.feature_ids) == GENES
    np.testing.assert_array_equal(next(reader.blocks())[1], VALUES.T.astype(np.float32))


def test_explicit_orientation_overrides_detection(tmp_path):
    path = write(tmp_path / "plain.tsv", "id\ts1\ts2\nA\t1\t2\nB\t3\t4\nC\t5\t6\n")
    rows = TableReader(path, orientation="features_in_rows")
    assert list(rows.sample_ids) == ["s1", "s2"] and list(rows.feature_ids) == ["A", "B", "C"]
    np.testing.assert_array_equal(next(rows.blocks())[1], [[1, 3, 5], [2, 4, 6]])
    cols = TableReader(path, orientation="samples_in_rows")
    assert list(cols.sample_ids) == ["A", "B", "C"] and list(cols.feature_ids) == ["s1", "s2"]


def test_probe_ids_are_recognised():
    assert looks_like_feature_ids(["202954_at", "1007_s_at", "AFFX-BioB-5_at", "1552256_a_at", "GAPDH"])
    assert looks_like_feature_ids(["ENSG00000152931.6", "ENSMUSG00000000001", "ENSG00000228572.7_PAR_Y"])
    assert not looks_like_feature_ids(["HG00096", "NA06984", "202954_at"])


def test_open_matrix_dispatches_tables_by_suffix(tmp_path):
    reader = open_matrix(write(tmp_path / "g.txt.gz", geuvadis_text()), annotation_columns=["Gene_Symbol", "Chr", "Coord"])
    assert isinstance(reader, TableReader) and list(reader.sample_ids) == SAMPLES


def test_blocks_with_columns_and_uneven_last_block(tmp_path):
    samples = [f"HG{i:05d}" for i in range(7)]
    values = np.arange(5 * 7, dtype=float).reshape(5, 7)
    reader = TableReader(write(tmp_path / "g.tsv", geuvadis_text(values, samples)))
    blocks = list(reader.blocks(np.array([4, 0]), block_size=3))
    assert [rows for rows, _ in blocks] == [slice(0, 3), slice(3, 6), slice(6, 7)]
    np.testing.assert_array_equal(np.vstack([b for _, b in blocks]), values.T[:, [4, 0]])


def test_missing_values_pass_through_as_nan(tmp_path):
    reader = TableReader(write(tmp_path / "g.csv", "id,ENSG1,ENSG2\ns1,NA,1\ns2,,inf\n"))
    values = next(reader.blocks())[1]
    assert np.isnan(values[0, 0]) and np.isnan(values[1, 0]) and np.isinf(values[1, 1])


@pytest.mark.parametrize(
    "text, orientation, expected",
    [
        ("", "auto", "the file is empty"),
        ("TargetID\tGene_Symbol\tHG00096\n", "auto", "header row but no data rows"),
        ("TargetID\tGene_Symbol\tChr\nENSG1\tA\t1\n", "auto", "no value columns"),
        ("id\ts1\ts2\nA\t1\t2\nB\t3\t4\n", "auto", "orientation='features_in_rows'"),
        ("id\ts1\nA\t1\n", "sideways", "unknown orientation 'sideways'"),
        ("id\ts1\nA\t1\t2\n", "features_in_rows", "the header has 2 columns but the data rows have 3"),
        ("id\ts1\ts1\nENSG1\t1\t2\n", "auto", "sample ids occur more than once (first: s1)"),
        ("id\ts1\ts2\nENSG1\t1\t2\nENSG1\t3\t4\n", "auto", "feature ids occur more than once (first: ENSG1)"),
    ],
)
def test_errors_name_the_file_and_the_problem(tmp_path, text, orientation, expected):
    path = write(tmp_path / "bad.tsv", text)
    with pytest.raises(MatrixFormatError) as err:
        TableReader(path, orientation=orientation)
    assert str(path) in str(err.value) and expected in str(err.value)


def test_non_numeric_value_names_column_row_and_value(tmp_path):
    text = geuvadis_text().replace("TargetID\tGene_Symbol", "TargetID\tGene_Name")
    path = write(tmp_path / "g.txt", text)
    with pytest.raises(MatrixFormatError) as err:
        TableReader(path)
    message = str(err.value)
    assert str(path) in message and "column 'Gene_Name'" in message and "'SYM0'" in message
    assert "ENSG00000152931.6" in message and "annotation_columns" in message
    reader = TableReader(path, annotation_columns=["Gene_Name", "Chr", "Coord"])
    assert list(reader.sample_ids) == SAMPLES


def test_unknown_annotation_column_and_suffix_are_errors(tmp_path):
    path = write(tmp_path / "g.txt", geuvadis_text())
    with pytest.raises(MatrixFormatError, match="annotation column.*Symbl.*not in the header"):
        TableReader(path, annotation_columns=["Symbl"])
    odd = write(tmp_path / "g.dat", "id;ENSG1\ns1;1\n")
    with pytest.raises(MatrixFormatError, match=r"g\.dat: cannot tell the column separator"):
        TableReader(odd)
    assert list(TableReader(odd, sep=";").feature_ids) == ["ENSG1"]
    with pytest.raises(FileNotFoundError, match="nope.csv"):
        TableReader(tmp_path / "nope.csv")
