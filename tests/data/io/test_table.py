import gzip
import re

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
    reader = TableReader(write(tmp_path / "g.csv", "id,ENSG1,ENSG2\ns1,NA,1\ns2,nan,inf\n"))
    values = next(reader.blocks())[1]
    assert np.isnan(values[0, 0]) and np.isnan(values[1, 0]) and np.isinf(values[1, 1])
    # A blank cell is not "NA": outside Expression Atlas tables it is refused unless blanks=missing (or zero).
    blank = write(tmp_path / "b.csv", "id,ENSG1,ENSG2\ns1,NA,1\ns2,,inf\n")
    with pytest.raises(MatrixFormatError, match="1 blank cell, first in sample s2 feature ENSG1"):
        TableReader(blank)
    values = next(TableReader(blank, blanks="missing").blocks())[1]
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
    # The separator comes from the content (tab, comma, semicolon); the suffix only breaks ties.
    assert list(TableReader(write(tmp_path / "g.dat", "id;ENSG1\ns1;1\n")).feature_ids) == ["ENSG1"]
    odd = write(tmp_path / "h.dat", "id ENSG1\ns1 1\n")
    with pytest.raises(MatrixFormatError, match=r"h\.dat: cannot tell the column separator"):
        TableReader(odd)
    assert list(TableReader(odd, sep=" ").feature_ids) == ["ENSG1"]
    with pytest.raises(FileNotFoundError, match="nope.csv"):
        TableReader(tmp_path / "nope.csv")


# --- Files as published: Expression Atlas tables, blanks, header annotations, orientation from symbols ---

from pathlib import Path  # noqa: E402

from hydra.core.override_parser.overrides_parser import OverridesParser  # noqa: E402

from src.data.io.table import HEADER_ANNOTATION, split_header_annotations  # noqa: E402

GEUVADIS_ATLAS = Path(__file__).resolve().parents[3].parent / "shared" / "data" / "geuvadis" / "E-GEUV-1-query-results.tpms.tsv.gz"
ATLAS_COMMENTS = [
    "# Expression Atlas",
    "# Query: Genes matching: 'default query', specifically  expressed above the expression level cutoff: 0 TPM in experiment E-GEUV-1",
    "# Selected columns: 3 (all)",
    "# Timestamp: Fri, 29-Oct-2021 10:27:56",
]
ATLAS_HEADERS = ["British, HG00096", "British, HG00097", "Finland, HG00171"]
ATLAS_ROWS = [
    ["ENSG00000000003", "TSPAN6", "0.1", "", "0.3"],
    ["ENSG00000000005", "TNMD", "", "", "0.2"],
    ["ENSG00000000419", "DPM1", "52", "48.5", ""],
]


def atlas_text(comments=ATLAS_COMMENTS, headers=ATLAS_HEADERS, rows=ATLAS_ROWS) -> str:
    lines = [*comments, "\t".join(["Gene ID", "Gene Name", *headers]), *("\t".join(r) for r in rows)]
    return "\n".join(lines) + "\n"


def paste(override: str, options_key: str = "reader_options") -> dict:
    """The reader options an override printed in an error sets, parsed as Hydra parses the command line."""
    parsed = OverridesParser.create().parse_overrides([override.strip('"')])[0]
    assert parsed.key_or_group.startswith(f"{options_key}.")
    return {parsed.key_or_group.split(".", 1)[1]: parsed.value()}


@pytest.mark.parametrize("name", ["E-GEUV-1-query-results.tpms.tsv", "E-GEUV-1-query-results.tpms.tsv.gz"])
def test_reads_an_expression_atlas_table_as_published(tmp_path, name, caplog):
    caplog.set_level("INFO", logger="src.data.io.table")
    reader = TableReader(write(tmp_path / name, atlas_text()))
    assert reader.comment_lines == 4 and reader.expression_atlas and reader.orientation == "features_in_rows"
    assert list(reader.sample_ids) == ["HG00096", "HG00097", "HG00171"]
    assert list(reader.feature_ids) == ["ENSG00000000003", "ENSG00000000005", "ENSG00000000419"]
    assert list(reader.feature_symbols) == ["TSPAN6", "TNMD", "DPM1"]
    annotations = reader.sample_annotations()
    assert list(annotations) == [HEADER_ANNOTATION] and list(annotations[HEADER_ANNOTATION]) == ["British", "British", "Finland"]
    values = next(reader.blocks())[1]
    np.testing.assert_array_equal(values, np.array([[0.1, 0, 52], [0, 0, 48.5], [0.3, 0.2, 0]], dtype=np.float32))
    assert reader.blanks == "zero" and reader.blank_cells == 4
    assert f"{name}: 4 blank cells read as 0 (Expression Atlas: below the reporting cutoff)" in caplog.text


def test_atlas_header_alone_is_recognised_and_blanks_can_stay_missing(tmp_path):
    path = write(tmp_path / "atlas.tsv", atlas_text(comments=[]))
    reader = TableReader(path)
    assert reader.expression_atlas and reader.comment_lines == 0 and reader.blank_cells == 4
    missing = TableReader(path, blanks="missing")
    assert missing.blank_cells == 0 and np.isnan(missing.values).sum() == 4


def test_blanks_outside_atlas_are_refused_with_a_fix_that_works_when_pasted(tmp_path, caplog):
    caplog.set_level("INFO", logger="src.data.io.table")
    path = write(tmp_path / "counts.tsv", "gene\tS1\tS2\nENSG1\t1\t\nENSG2\t\t4\nENSG3\t5\t6\n")
    with pytest.raises(MatrixFormatError) as err:
        TableReader(path, options_key="reader_options")
    message = str(err.value)
    assert str(path) in message and "2 blank cells, first in sample S2 feature ENSG1 (line 2)" in message
    fix = re.search(r"pass (\S+blanks=zero)", message).group(1)
    assert fix == "++reader_options.blanks=zero"
    reader = TableReader(path, options_key="reader_options", **paste(fix))
    np.testing.assert_array_equal(reader.values, [[1, 0, 5], [0, 4, 6]])
    assert reader.blank_cells == 2 and "counts.tsv: 2 blank cells read as 0 (blanks=zero)" in caplog.text
    with pytest.raises(MatrixFormatError, match=r"unknown blanks='nil'.*e\.g\. \+\+reader_options\.blanks=zero"):
        TableReader(path, options_key="reader_options", blanks="nil")


@pytest.mark.parametrize(
    "headers, ids, notes",
    [
        (["British, HG00096", "British, HG00097", "Yoruba, NA18486"], ["HG00096", "HG00097", "NA18486"],
         ["British", "British", "Yoruba"]),
        (["HPSI0114i-eipl_1, 35 day", "HPSI0114i-eipl_1, 0 day", "HPSI0214i-wibj_2, 35 day"], None, None),
        (["HPSI0114i-eipl_1, 35 day", "HPSI0114i-kolf_2, 35 day", "HPSI0214i-wibj_2, 0 day"],
         ["HPSI0114i-eipl_1", "HPSI0114i-kolf_2", "HPSI0214i-wibj_2"], ["35 day", "35 day", "0 day"]),
        (["HG00096, British"], ["HG00096"], ["British"]),  # both parts unique: the id-like one
        (["liver, male, S1", "liver, female, S2"], ["S1", "S2"], ["liver, male", "liver, female"]),
        (["British, HG00096", "HG00097"], None, None),  # not every header has the form
    ],
)
def test_header_annotations_are_split_in_either_order(headers, ids, notes):
    split = split_header_annotations(headers)
    if ids is None:
        assert split is None
    else:
        assert list(split[0]) == ids and list(split[1]) == notes


def test_header_annotations_with_the_id_first(tmp_path):
    headers = ["HPSI0114i-eipl_1, 35 day", "HPSI0114i-kolf_2, 35 day", "HPSI0214i-wibj_2, 0 day"]
    reader = TableReader(write(tmp_path / "E-MTAB-0000.tsv", atlas_text(headers=headers)))
    assert list(reader.sample_ids) == ["HPSI0114i-eipl_1", "HPSI0114i-kolf_2", "HPSI0214i-wibj_2"]
    assert list(reader.sample_annotations()[HEADER_ANNOTATION]) == ["35 day", "35 day", "0 day"]
    plain = TableReader(write(tmp_path / "g.txt", geuvadis_text()))
    assert plain.sample_annotations() == {} and list(plain.feature_symbols) == ["SYM0", "SYM1", "SYM2", "SYM3", "SYM4"]


def test_samples_by_symbols_csv_is_oriented_by_known_features(tmp_path):
    symbols = ["GAPDH", "ACTB", "Tp53", "MYC"]
    text = "sample," + ",".join(symbols) + "\n" + "".join(f"S{i},{i},2,3,4\n" for i in range(3))
    path = write(tmp_path / "cells.csv", text)
    with pytest.raises(MatrixFormatError, match="cannot tell whether rows are features or samples"):
        TableReader(path)
    known = {"gapdh", "ACTB", "TP53", "ENSG00000136997", "202954_at"}  # 3 of the 4 symbols, any case
    reader = TableReader(path, known_features=known)
    assert reader.orientation == "samples_in_rows" and reader.feature_symbols is None
    assert list(reader.sample_ids) == ["S0", "S1", "S2"] and list(reader.feature_ids) == symbols
    assert open_matrix(path, known_features=known).orientation == "samples_in_rows"
    # the other way round: symbols down the first column
    transposed = write(tmp_path / "genes.tsv", "gene\tS1\tS2\n" + "".join(f"{s}\t1\t2\n" for s in symbols))
    assert TableReader(transposed, known_features=known).orientation == "features_in_rows"


def test_the_side_with_more_feature_ids_wins():
    reader = TableReader.__new__(TableReader)
    reader.path, reader.options_key = Path("x.tsv"), None
    rows = np.array(["GAPDH", "S2", "ACTB"], dtype=object)  # 2 of 3 known
    columns = np.array(["GAPDH", "ACTB", "MYC", "TP53"], dtype=object)  # 4 of 4
    known = ["GAPDH", "ACTB", "MYC", "TP53"]
    assert reader._detect_orientation(rows, columns, known) == "samples_in_rows"
    assert reader._detect_orientation(columns, rows, known) == "features_in_rows"


def test_separator_and_gzip_come_from_the_content(tmp_path):
    csv_text = 'id,"British, HG00096","British, HG00097"\nENSG1,1,2\nENSG2,3,4\n'
    reader = TableReader(write(tmp_path / "quoted.txt", csv_text))  # commas in a .txt file
    assert list(reader.sample_ids) == ["HG00096", "HG00097"]
    gzipped = tmp_path / "atlas_download"  # gzip content, no .gz in the name
    gzipped.write_bytes(gzip.compress(atlas_text().encode()))
    assert list(TableReader(gzipped).sample_ids) == ["HG00096", "HG00097", "HG00171"]
    reader = open_matrix(gzipped)
    assert isinstance(reader, TableReader) and reader.blank_cells == 4
    plain = tmp_path / "plain.tsv.gz"  # a .gz name on plain text
    plain.write_text(geuvadis_text())
    assert list(TableReader(plain).sample_ids) == SAMPLES
    semicolons = write(tmp_path / "eu.csv", "id;S1;S2\nENSG1;1;2\n")
    assert list(TableReader(semicolons).sample_ids) == ["S1", "S2"]


def test_comment_lines_and_a_commented_header(tmp_path):
    reader = TableReader(write(tmp_path / "c.tsv", "# produced by a pipeline\n\n" + geuvadis_text()))
    assert reader.comment_lines == 1 and list(reader.sample_ids) == SAMPLES
    np.testing.assert_array_equal(reader.values, VALUES.T.astype(np.float32))
    # "#gene<TAB>S1..." followed by numbers: the commented line is the header
    reader = TableReader(write(tmp_path / "h.tsv", "# version 2\n#gene\tS1\tS2\nENSG1\t1\t2\nENSG2\t3\t4\n"))
    assert reader.comment_lines == 1 and list(reader.sample_ids) == ["S1", "S2"] and list(reader.feature_ids) == ["ENSG1", "ENSG2"]
    with pytest.raises(MatrixFormatError, match=r"the file is empty \(only 2 comment lines\)"):
        TableReader(write(tmp_path / "e.tsv", "# a\n# b\n"))


def test_opens_the_real_geuvadis_expression_atlas_file():
    if not GEUVADIS_ATLAS.exists():
        pytest.skip(f"reference data {GEUVADIS_ATLAS} not found (it lies in ../shared/data beside the repo)")
    reader = open_matrix(GEUVADIS_ATLAS)
    assert isinstance(reader, TableReader) and reader.orientation == "features_in_rows"
    assert len(reader.sample_ids) == 462 and len(reader.feature_ids) == 50194
    assert reader.sample_ids[0] == "HG00096" and reader.feature_ids[0] == "ENSG00000000003"
    assert reader.feature_symbols[0] == "TSPAN6" and reader.comment_lines == 4 and reader.expression_atlas
    annotation = reader.sample_annotations()[HEADER_ANNOTATION]
    assert annotation[0] == "British" and len(annotation) == 462
    assert reader.values.shape == (462, 50194) and not np.isnan(reader.values).any()
    assert reader.blank_cells == int((reader.values == 0).sum()) > 0
