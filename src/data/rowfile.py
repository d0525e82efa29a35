"""Row-major float32 matrices on disk, read by rows through the page cache.

A :class:`RowFile` is a plain row-major array stored contiguously at some offset of a file: the data of a
``.npy`` file, or a contiguous (unchunked, uncompressed) HDF5 dataset such as the data cache's. Rows are
read with ``pread`` into fresh arrays: nothing of the file is mapped into the process, so a process holds
only the rows it asked for, and every process on a node reading the same file shares one copy of it in the
operating system's page cache (its pages count in no process's resident or proportional set size). A
batch of random rows is read in ascending file order (one call per row, or one per run of adjacent
rows), the order a disk reads fastest, and lands in the order it was asked for.

:class:`NpyWriter` and :func:`write_npy` write such a matrix block by block, so a matrix larger than memory is
never held whole.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from src.common.atomic import atomic_path

MAX_READ = 1 << 28  # bytes per read call (Linux reads at most ~2 GiB at once)


class RowFile:
    """``shape`` float32 values stored row-major from byte ``offset`` of ``path``.

    Indexing (``rows[index]``, ``rows[a:b]``) reads those rows into a new array, so the functions that fit
    statistics block by block on an in-memory matrix (``matrix[rows[part]]``) run unchanged on a file.
    """

    def __init__(self, path: str | os.PathLike, offset: int, shape: tuple[int, int], dtype=np.float32):
        self.path, self.offset = Path(path), int(offset)
        self.dtype = np.dtype(dtype)
        self.shape = (int(shape[0]), int(shape[1]))
        self.row_bytes = self.shape[1] * self.dtype.itemsize
        self._fd: int | None = None
        self._pid = None

    @classmethod
    def npy(cls, path: str | os.PathLike) -> "RowFile":
        """The data of a 2-D float32 C-order ``.npy`` file (as :func:`write_npy` writes it)."""
        with open(path, "rb") as f:
            version = np.lib.format.read_magic(f)
            read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            shape, fortran, dtype = read_header(f)
            offset = f.tell()
        if fortran or len(shape) != 2 or dtype != np.float32:
            raise ValueError(f"{path}: expected a 2-D float32 C-order array, found {shape} {dtype} fortran={fortran}")
        return cls(path, offset, shape, dtype)

    def __len__(self) -> int:
        return self.shape[0]

    @property
    def nbytes(self) -> int:
        return self.shape[0] * self.row_bytes

    def rows_between(self, start: int, stop: int) -> "RowFile":
        """Rows ``start:stop`` as a RowFile of their own (no read)."""
        start, stop = max(0, start), min(stop, self.shape[0])
        return RowFile(self.path, self.offset + start * self.row_bytes, (max(stop - start, 0), self.shape[1]), self.dtype)

    def _descriptor(self) -> int:
        # One descriptor per process (a forked worker opens its own: offsets are explicit, but be safe).
        if self._fd is None or self._pid != os.getpid():
            self._fd, self._pid = os.open(self.path, os.O_RDONLY), os.getpid()
        return self._fd

    def _read_into(self, buffer: memoryview, offset: int) -> None:
        fd, done = self._descriptor(), 0
        while done < len(buffer):
            n = os.preadv(fd, [buffer[done : done + MAX_READ]], offset + done)
            if n <= 0:
                raise OSError(f"{self.path}: file ends before byte {offset + done} of a {self.shape} matrix at {self.offset}")
            done += n

    def read(self, start: int, stop: int, out: np.ndarray | None = None) -> np.ndarray:
        """Rows ``start:stop`` in one read."""
        out = np.empty((stop - start, self.shape[1]), self.dtype) if out is None else out
        if stop > start:
            self._read_into(memoryview(out).cast("B"), self.offset + start * self.row_bytes)
        return out

    def take(self, index: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """Rows ``index`` (any order, repeats allowed), read in ascending file order, runs of adjacent rows at once."""
        index = np.asarray(index, dtype=np.int64).ravel()
        out = np.empty((len(index), self.shape[1]), self.dtype) if out is None else out
        if len(index) == 0:
            return out
        if index[0] >= 0 and np.all(np.diff(index) == 1):  # a contiguous range: one read
            return self.read(int(index[0]), int(index[-1]) + 1, out)
        if index.min() < 0 or index.max() >= self.shape[0]:
            raise IndexError(f"{self.path}: row index out of range for {self.shape[0]} rows")
        order = np.argsort(index, kind="stable")
        view = memoryview(out).cast("B")
        rb = self.row_bytes
        for position in order:
            self._read_into(view[position * rb : (position + 1) * rb], self.offset + int(index[position]) * rb)
        return out

    def __getitem__(self, key) -> np.ndarray:
        if isinstance(key, slice):
            start, stop, step = key.indices(self.shape[0])
            if step == 1:
                return self.read(start, max(start, stop))
            return self.take(np.arange(start, stop, step))
        if np.isscalar(key):
            return self.read(int(key), int(key) + 1)[0]
        return self.take(np.asarray(key))

    def memmap(self) -> np.ndarray:
        """The whole matrix as a read-only-backed, copy-on-write memory map (for code that needs one array,
        e.g. a closed-form fit; pages it touches count in this process's resident memory)."""
        return np.memmap(self.path, dtype=self.dtype, mode="c", offset=self.offset, shape=self.shape)

    def close(self) -> None:
        if self._fd is not None and self._pid == os.getpid():
            os.close(self._fd)
        self._fd = None

    def __getstate__(self):  # a pickled RowFile (a DDP spawn) opens its own descriptor
        return {**self.__dict__, "_fd": None, "_pid": None}

    def __del__(self):
        try:
            self.close()
        except Exception:  # noqa: BLE001 - interpreter shutdown
            pass


class NpyWriter:
    """Append row blocks to a new float32 ``.npy`` file of a known ``shape`` (header first, then the rows as they
    come), so a matrix larger than memory is never held whole; :meth:`close` checks that every row came."""

    def __init__(self, path: str | os.PathLike, shape: tuple[int, int]):
        self.path, self.shape, self.rows = Path(path), (int(shape[0]), int(shape[1])), 0
        self._file = open(self.path, "wb")
        header = {"descr": np.lib.format.dtype_to_descr(np.dtype(np.float32)), "fortran_order": False, "shape": self.shape}
        np.lib.format.write_array_header_1_0(self._file, header)

    def write(self, block: np.ndarray) -> None:
        block = np.ascontiguousarray(block, dtype=np.float32)
        if block.ndim != 2 or block.shape[1] != self.shape[1] or self.rows + len(block) > self.shape[0]:
            raise ValueError(f"{self.path}: a block of shape {block.shape} after {self.rows} rows of a {self.shape} matrix")
        self._file.write(memoryview(block).cast("B"))
        self.rows += len(block)

    def abort(self) -> None:
        """Close without the check (the write failed; the caller removes the file)."""
        self._file.close()

    def close(self) -> None:
        self._file.close()
        if self.rows != self.shape[0]:
            raise ValueError(f"{self.path}: {self.rows} rows written of {self.shape[0]}")


def write_npy(path: str | os.PathLike, shape: tuple[int, int], blocks: Iterable[np.ndarray]) -> Path:
    """Write a float32 ``shape`` matrix as a ``.npy`` file from its row ``blocks`` (in order), under a temporary name
    renamed into place at the end. Returns ``path``."""
    path = Path(path)
    with atomic_path(path) as tmp:
        writer = NpyWriter(tmp, shape)
        try:
            for block in blocks:
                writer.write(block)
        except BaseException:
            writer.abort()
            raise
        writer.close()
    return path
