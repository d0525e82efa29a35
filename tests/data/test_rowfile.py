"""Row-major matrices on disk read by rows: any order, runs, slices, ``.npy`` files and contiguous HDF5 datasets."""

import h5py
import numpy as np
import pytest

from src.data.rowfile import NpyWriter, RowFile, write_npy


@pytest.fixture
def matrix():
    return np.random.default_rng(0).standard_normal((500, 23)).astype(np.float32)


def test_rows_read_in_any_order_equal_the_array(tmp_path, matrix):
    path = write_npy(tmp_path / "m.npy", matrix.shape, (matrix[i : i + 64] for i in range(0, 500, 64)))
    np.testing.assert_array_equal(np.load(path), matrix)  # a plain .npy file
    rows = RowFile.npy(path)
    index = np.random.default_rng(1).integers(0, 500, 300)  # repeats, any order
    np.testing.assert_array_equal(rows[index], matrix[index])
    np.testing.assert_array_equal(rows[np.arange(40, 90)], matrix[40:90])  # one run, one read
    np.testing.assert_array_equal(rows[7:480], matrix[7:480])
    np.testing.assert_array_equal(rows[3], matrix[3])
    np.testing.assert_array_equal(rows.rows_between(100, 200)[np.array([99, 0, 5])], matrix[[199, 100, 105]])
    np.testing.assert_array_equal(rows.memmap(), matrix)
    with pytest.raises(IndexError):
        rows[np.array([3, 500])]


def test_a_contiguous_hdf5_dataset_is_read_at_its_offset(tmp_path, matrix):
    with h5py.File(tmp_path / "m.h5", "w") as f:
        f.create_dataset("other", data=np.arange(10))
        ds = f.create_dataset("m", shape=matrix.shape, dtype="<f4")
        ds[:] = matrix
    with h5py.File(tmp_path / "m.h5", "r") as f:
        offset = f["m"].id.get_offset()
    np.testing.assert_array_equal(RowFile(tmp_path / "m.h5", offset, matrix.shape)[[5, 1, 499]], matrix[[5, 1, 499]])


def test_a_writer_refuses_missing_or_extra_rows(tmp_path, matrix):
    writer = NpyWriter(tmp_path / "short.npy", (10, 23))
    writer.write(matrix[:4])
    with pytest.raises(ValueError, match="4 rows written of 10"):
        writer.close()
    with pytest.raises(ValueError, match="a block of shape"):
        write_npy(tmp_path / "long.npy", (10, 23), [matrix[:8], matrix[:8]])
    assert not (tmp_path / "long.npy").exists()  # nothing under the final name
