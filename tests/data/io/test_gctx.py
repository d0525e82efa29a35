import h5py
import numpy as np
import pytest

from src.data.io.gctx import GCTXError, locate, read_header, read_matrix, read_meta, write_gctx


def test_reads_the_real_gpl96_file(gpl96):
    header = read_header(gpl96)
    assert header.shape == (57, 22283)
    assert header.sample_ids[0] == "GSM71019"
    assert "202954_at" in set(header.feature_ids)
    values, _ = read_matrix(gpl96, ["202954_at", "1007_s_at"], block_size=10)
    assert values.shape == (57, 2) and values.dtype == np.float32
    with h5py.File(gpl96) as f:  # direct h5py read of the same column
        col = list(header.feature_ids).index("202954_at")
        np.testing.assert_array_equal(values[:, 0], f["0/DATA/0/matrix"][:, col])
    assert 2.5 < values.min() and values.max() < 14.5  # log2 RMA values
    assert set(read_meta(gpl96, "sample")["cancer"]) == {"Normal", "Cancer", "Biopsy"}


def test_round_trip_keeps_values_ids_and_metadata(tmp_path):
    rng = np.random.default_rng(0)
    m = rng.normal(size=(7, 5)).astype(np.float32)
    path = write_gctx(
        tmp_path / "x.gctx", m, [f"s{i}" for i in range(7)], list("abcde"),
        feature_meta={"kind": np.array(["u", "v", "u", "v", "u"])}, attrs={"note": "hi"},
    )
    values, header = read_matrix(path, ["e", "a"], block_size=3)
    np.testing.assert_array_equal(values, m[:, [4, 0]])
    assert list(header.sample_ids) == [f"s{i}" for i in range(7)]
    assert header.attrs == {"version": "GCTX1.0", "note": "hi"}
    assert list(read_meta(path)["kind"]) == ["u", "v", "u", "v", "u"]
    assert not list(tmp_path.glob(".*.tmp"))  # the temporary file was renamed


def test_reads_gzip_datasets_with_variable_length_string_ids(tmp_path):
    m = np.arange(12, dtype=np.float32).reshape(4, 3)
    path = tmp_path / "vlen.gctx"
    with h5py.File(path, "w") as f:
        f.attrs["version"] = "GCTX1.0"
        f.create_dataset("0/DATA/0/matrix", data=m, compression="gzip", chunks=(2, 3))
        vlen = h5py.string_dtype()
        f.create_dataset("0/META/COL/id", data=np.array(["A", "B", "C", "D"], dtype=object), dtype=vlen, compression="gzip")
        f.create_dataset("0/META/ROW/id", data=np.array(["g1", "g2", "g3"], dtype=object), dtype=vlen)
    values, header = read_matrix(path, ["g3", "g1"])
    np.testing.assert_array_equal(values, m[:, [2, 0]])
    assert list(header.sample_ids) == ["A", "B", "C", "D"]


def test_missing_ids_are_named_with_count_and_file(tmp_path):
    path = write_gctx(tmp_path / "x.gctx", np.zeros((2, 3), np.float32), ["s1", "s2"], ["a", "b", "c"])
    with pytest.raises(GCTXError) as err:
        locate(read_header(path), ["a", "zz1", "zz2"], "landmark")
    message = str(err.value)
    assert str(path) in message and "2 of 3 requested landmark ids are missing" in message and "zz1" in message


@pytest.mark.parametrize(
    "content, expected",
    [(b"", "empty"), (b"symbol\tid\nA\t1\n", "not a readable HDF5 file")],
)
def test_non_gctx_files_fail_clearly(tmp_path, content, expected):
    path = tmp_path / "bad.gctx"
    path.write_bytes(content)
    with pytest.raises(GCTXError, match=expected) as err:
        read_header(path)
    assert str(path) in str(err.value) and "GCTX" in str(err.value)


def test_hdf5_without_gctx_layout_fails_clearly(tmp_path):
    path = tmp_path / "plain.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("values", data=np.zeros((2, 2)))
    with pytest.raises(GCTXError, match="missing dataset.*/0/DATA/0/matrix"):
        read_header(path)


def test_missing_file_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.gctx"):
        read_header(tmp_path / "nope.gctx")


def test_a_matrix_of_the_wrong_dtype_fails_clearly(tmp_path):
    path = tmp_path / "strings.gctx"
    with h5py.File(path, "w") as f:
        f.attrs["version"] = "GCTX1.0"
        f.create_dataset("0/DATA/0/matrix", data=np.array([[b"a", b"b"]], dtype="S1"))
        f.create_dataset("0/META/COL/id", data=np.array([b"s1"]))
        f.create_dataset("0/META/ROW/id", data=np.array([b"g1", b"g2"]))
    with pytest.raises(ValueError, match=r"strings.gctx: matrix has dtype \|S1; expected a numeric"):
        read_header(path)
