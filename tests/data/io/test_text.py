"""Text in the encodings spreadsheets export is read as written; what is not text is refused by name."""

import codecs
import gzip
import zipfile

import numpy as np
import pytest

from src.common.errors import InputError
from src.data.genes import read_gene_map
from src.data.io.table import TableReader
from src.data.io.text import detect_encoding, read_text

TABLE = "gene\tS1\tS2\nENSG1\t1.5\t2\nENSG2\t3\t4.25\n"


@pytest.mark.parametrize("encoding, raw", [
    ("utf-8-sig", TABLE.encode("utf-8")),
    ("utf-8-sig", codecs.BOM_UTF8 + TABLE.encode("utf-8")),
    ("utf-16", TABLE.encode("utf-16")),  # Excel's "Unicode text": a byte-order mark, then UTF-16
    ("latin-1", TABLE.replace("S2", "Süd").encode("latin-1")),
])
def test_a_table_in_any_exported_encoding_reads_as_the_utf8_one(tmp_path, encoding, raw):
    assert detect_encoding(raw, "x") == encoding
    path = tmp_path / "t.tsv"
    path.write_bytes(raw)
    reader = TableReader(path, orientation="features_in_rows")
    np.testing.assert_array_equal(reader.values, [[1.5, 3], [2, 4.25]])
    assert reader.sample_ids[1] in ("S2", "Süd")


def test_a_gene_map_with_a_latin1_byte_is_read(tmp_path):
    path = tmp_path / "map.txt"
    path.write_bytes("Ä1\tENSG01\tp1_at\nB\tENSG02\tp2_at\n".encode("latin-1"))
    assert read_gene_map(path).symbols == ["Ä1", "B"]


def test_a_workbook_binary_data_and_a_cut_gzip_file_are_refused_by_name(tmp_path):
    book = tmp_path / "book.csv"
    with zipfile.ZipFile(book, "w") as z:
        z.writestr("a", "b")
    with pytest.raises(InputError, match=r"book.csv: a zip archive \(an Excel .xlsx workbook\?\)"):
        read_text(book)
    binary = tmp_path / "panel.txt"
    binary.write_bytes(b"ab\x00cd")
    with pytest.raises(InputError, match="panel.txt: binary data, not text"):
        read_text(binary)
    cut = tmp_path / "map.txt.gz"
    cut.write_bytes(gzip.compress(b"A\tENSG1\tp1\n" * 1000)[:40])
    with pytest.raises(InputError, match="map.txt.gz: a truncated or damaged gzip file"):
        read_text(cut)


def test_a_european_export_and_thousands_separators_read_as_numbers(tmp_path):
    european = tmp_path / "eu.csv"
    european.write_text("gene;S1;S2\nENSG1;1,5;1.234,25\nENSG2;3;-0,5\n")
    np.testing.assert_array_equal(TableReader(european, orientation="features_in_rows").values, [[1.5, 3], [1234.25, -0.5]])
    grouped = tmp_path / "us.csv"
    grouped.write_text('gene,S1,S2\nENSG1,"1,234.5",2\nENSG2,3,"12,000"\n')
    np.testing.assert_array_equal(TableReader(grouped, orientation="features_in_rows").values, [[1234.5, 3], [2, 12000]])
    # thousands=null: such a cell is not a number, and the error names it.
    with pytest.raises(ValueError, match="column 'S1' has non-numeric value '1,234.5'"):
        TableReader(grouped, orientation="features_in_rows", thousands=None)
