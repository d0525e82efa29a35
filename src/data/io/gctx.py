"""Read and write GCTX 1.0 files (the HDF5 layout of the LINCS / CMap data releases).

Layout, as h5py sees it::

    /0/DATA/0/matrix     float, shape (n_samples, n_features)
    /0/META/COL/id       sample ids, one per matrix row
    /0/META/ROW/id       feature (probe or gene) ids, one per matrix column
    /0/META/COL/<name>   per-sample annotations
    /0/META/ROW/<name>   per-feature annotations
    attribute "version" = "GCTX1.0"

GCTX calls features "rows" and samples "columns" (the matrix is stored transposed), so this module
speaks of *samples* and *features* only. Ids may be fixed-length byte strings (the LINCS files) or
variable-length strings; datasets may be gzip-compressed. Everything returned is samples x features.
"""

from __future__ import annotations

import os
from contextlib import ExitStack
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np

from src.common.atomic import atomic_path
from src.data.io.base import MatrixFormatError, check_unique
from src.data.io.hdf5 import hdf5_output, reserve

MATRIX = "0/DATA/0/matrix"
SAMPLE_META = "0/META/COL"
FEATURE_META = "0/META/ROW"
VERSION = "GCTX1.0"


class GCTXError(MatrixFormatError):
    """A file is not a readable GCTX 1.0 file, or lacks what was asked of it."""


@dataclass(frozen=True)
class GCTXHeader:
    """Everything in a GCTX file except the matrix values."""

    path: Path
    sample_ids: np.ndarray  # str, (n_samples,)
    feature_ids: np.ndarray  # str, (n_features,)
    attrs: dict = field(default_factory=dict)
    dtype: np.dtype = np.dtype("float32")

    @property
    def shape(self) -> tuple[int, int]:
        return len(self.sample_ids), len(self.feature_ids)


def _decode(values: np.ndarray) -> np.ndarray:
    """Byte or variable-length string ids -> numpy array of Python str."""
    return np.array([v.decode() if isinstance(v, bytes) else str(v) for v in values.ravel()], dtype=object)


def _open(path: str | os.PathLike) -> h5py.File:
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file (expected a GCTX 1.0 file)")
    if path.stat().st_size == 0:
        raise GCTXError(f"{path}: the file is empty; expected a GCTX 1.0 file (HDF5 with /{MATRIX})")
    try:
        return h5py.File(path, "r")
    except OSError as err:
        raise GCTXError(
            f"{path}: not a readable HDF5 file ({err}); expected a GCTX 1.0 file (HDF5 with /{MATRIX})"
        ) from err


def _check_layout(f: h5py.File, path: Path) -> None:
    missing = [name for name in (MATRIX, f"{SAMPLE_META}/id", f"{FEATURE_META}/id") if name not in f]
    if missing:
        raise GCTXError(
            f"{path}: not a GCTX 1.0 file: missing dataset(s) {', '.join('/' + m for m in missing)}; "
            f"expected /{MATRIX} with sample ids in /{SAMPLE_META}/id and feature ids in /{FEATURE_META}/id"
        )
    shape = f[MATRIX].shape
    n_samples, n_features = len(f[f"{SAMPLE_META}/id"]), len(f[f"{FEATURE_META}/id"])
    if len(shape) != 2 or shape != (n_samples, n_features):
        raise GCTXError(
            f"{path}: matrix shape {shape} does not match {n_samples} sample ids x {n_features} feature ids"
        )
    if not np.issubdtype(f[MATRIX].dtype, np.number):
        raise GCTXError(f"{path}: matrix has dtype {f[MATRIX].dtype}; expected a numeric (float) matrix")


def read_header(path: str | os.PathLike) -> GCTXHeader:
    """Read ids, root attributes and dtype of a GCTX file without touching the matrix values."""
    with _open(path) as f:
        _check_layout(f, Path(path))
        header = GCTXHeader(
            path=Path(path),
            sample_ids=_decode(f[f"{SAMPLE_META}/id"][()]),
            feature_ids=_decode(f[f"{FEATURE_META}/id"][()]),
            attrs={k: _attr(v) for k, v in f.attrs.items()},
            dtype=f[MATRIX].dtype,
        )
    check_unique(header.sample_ids, "sample", path)
    check_unique(header.feature_ids, "feature", path)
    return header


def _attr(value):
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, np.generic):
        return value.item()
    return value


def read_meta(path: str | os.PathLike, axis: str = "feature") -> dict[str, np.ndarray]:
    """Per-feature (``axis="feature"``) or per-sample (``axis="sample"``) annotations, by name."""
    group = {"feature": FEATURE_META, "sample": SAMPLE_META}[axis]
    with _open(path) as f:
        _check_layout(f, Path(path))
        out = {}
        for name, ds in f[group].items():
            values = ds[()]
            out[name] = _decode(values) if values.dtype.kind in "SOU" else values
        return out


def locate(header: GCTXHeader, wanted: Sequence[str], what: str = "feature") -> np.ndarray:
    """Positions of ``wanted`` ids among the file's feature ids; a clear error lists any that are missing."""
    index = {fid: i for i, fid in enumerate(header.feature_ids)}
    missing = [w for w in wanted if w not in index]
    if missing:
        shown = ", ".join(missing[:5]) + (", ..." if len(missing) > 5 else "")
        raise GCTXError(
            f"{header.path}: {len(missing)} of {len(wanted)} requested {what} ids are missing from the file "
            f"(first: {shown}); the file has {len(index)} feature ids such as {', '.join(header.feature_ids[:3])}"
        )
    return np.fromiter((index[w] for w in wanted), dtype=np.int64, count=len(wanted))


def iter_blocks(
    path: str | os.PathLike, columns: np.ndarray | None = None, block_size: int = 4096
) -> Iterator[tuple[slice, np.ndarray]]:
    """Yield ``(sample_slice, values)`` blocks of ``block_size`` samples, optionally keeping ``columns``.

    Rows are read as contiguous slices (fast on row-chunked files) and columns are selected in memory,
    never with h5py fancy indexing (about 100x slower).
    """
    with _open(path) as f:
        _check_layout(f, Path(path))
        ds = f[MATRIX]
        for start in range(0, ds.shape[0], block_size):
            rows = slice(start, min(start + block_size, ds.shape[0]))
            try:
                block = ds[rows]
            except OSError as err:
                raise GCTXError(
                    f"{path}: cannot read samples {rows.start}-{rows.stop - 1} ({err}); "
                    "the file is truncated or corrupted"
                ) from err
            yield rows, (block if columns is None else block[:, columns])


class GCTXReader:
    """A GCTX file as a :class:`~src.data.io.base.MatrixReader` (ids read once, values in blocks)."""

    def __init__(self, path: str | os.PathLike, id_field: str | None = None):
        """``id_field``: take the feature ids from this row-metadata field (``/0/META/ROW/<field>``, e.g.
        CMap's ``pr_gene_symbol`` or ``pr_gene_id``) instead of ``/0/META/ROW/id``."""
        self.path = Path(path)
        self.header = read_header(self.path)
        self.sample_ids, self.feature_ids = self.header.sample_ids, self.header.feature_ids
        if id_field:
            meta = read_meta(self.path, "feature")
            if id_field not in meta:
                raise GCTXError(f"{self.path}: id_field={id_field}: no such row metadata field; "
                                f"the file has: {', '.join(sorted(meta)) or 'none'}")
            self.feature_ids = np.array([str(v.decode() if isinstance(v, bytes) else v) for v in meta[id_field]])
            check_unique(list(self.feature_ids), f"{id_field}", self.path)

    def sample_annotations(self) -> dict[str, np.ndarray]:
        """The column metadata (``/0/META/COL/<name>``, per-sample annotations) other than the ids."""
        return {name: np.array([v.decode() if isinstance(v, bytes) else v for v in values])
                for name, values in read_meta(self.path, "sample").items() if name != "id"}

    def blocks(self, columns: np.ndarray | None = None, block_size: int = 4096) -> Iterator[tuple[slice, np.ndarray]]:
        for rows, block in iter_blocks(self.path, columns, block_size):
            yield rows, block.astype(np.float32, copy=False)


def read_matrix(
    path: str | os.PathLike, feature_ids: Sequence[str] | None = None, block_size: int = 4096
) -> tuple[np.ndarray, GCTXHeader]:
    """Read the matrix (samples x features) as float32, keeping ``feature_ids`` in that order if given."""
    header = read_header(path)
    columns = None if feature_ids is None else locate(header, list(feature_ids))
    n_cols = header.shape[1] if columns is None else len(columns)
    out = np.empty((header.shape[0], n_cols), dtype=np.float32)
    for rows, block in iter_blocks(path, columns, block_size):
        out[rows] = block
    return out, header


def write_gctx(
    path: str | os.PathLike,
    matrix: np.ndarray,
    sample_ids: Sequence[str],
    feature_ids: Sequence[str],
    *,
    feature_meta: Mapping[str, np.ndarray] | None = None,
    sample_meta: Mapping[str, np.ndarray] | None = None,
    attrs: Mapping[str, object] | None = None,
    compression: str | None = None,
    chunk_rows: int = 256,
) -> Path:
    """Write a GCTX 1.0 file atomically (temporary name, then rename); ``matrix`` is samples x features."""
    matrix = np.asarray(matrix)
    if matrix.ndim != 2 or matrix.shape != (len(sample_ids), len(feature_ids)):
        raise ValueError(
            f"matrix shape {matrix.shape} does not match {len(sample_ids)} sample ids x {len(feature_ids)} feature ids"
        )
    return write_gctx_blocks(
        path, sample_ids, feature_ids, [matrix], dtype=matrix.dtype, feature_meta=feature_meta,
        sample_meta=sample_meta, attrs=attrs, compression=compression, chunk_rows=chunk_rows,
    )


def _write_meta(f: h5py.File, group: str, ids: Sequence[str], meta: Mapping[str, np.ndarray] | None) -> None:
    f.create_dataset(f"{group}/id", data=np.array([str(i).encode() for i in ids], dtype="S"))
    for name, values in (meta or {}).items():
        values = np.asarray(values)
        if values.dtype.kind in "UO":
            values = np.array([str(v).encode() for v in values], dtype="S")
        f.create_dataset(f"{group}/{name}", data=values)


class GCTXWriter:
    """Write a GCTX 1.0 file block by block; it appears under its name only when :meth:`close` succeeds.

    Use as a context manager: leaving the block with an exception removes the temporary file. Blocks are
    consecutive samples (each samples x features); only one block plus the HDF5 chunk cache is in memory.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        sample_ids: Sequence[str],
        feature_ids: Sequence[str],
        *,
        dtype: str | np.dtype = "float32",
        feature_meta: Mapping[str, np.ndarray] | None = None,
        sample_meta: Mapping[str, np.ndarray] | None = None,
        attrs: Mapping[str, object] | None = None,
        compression: str | None = None,
        chunk_rows: int = 256,
    ):
        self.path = Path(path)
        self.sample_ids, self.feature_ids = sample_ids, feature_ids
        self._meta = (sample_meta, feature_meta)
        n_samples, n_features = len(sample_ids), len(feature_ids)
        dtype = np.dtype(dtype)
        chunks = (min(chunk_rows, n_samples), n_features) if n_samples and n_features else None
        # Cache two whole chunks, so blocks that end mid-chunk are completed in memory, not re-read from disk.
        cache = max(2 * chunks[0] * chunks[1] * dtype.itemsize, 1 << 20) if chunks else 1 << 20
        self._stack = ExitStack()
        tmp = self._stack.enter_context(atomic_path(self.path))
        self._file = self._stack.enter_context(hdf5_output(tmp, "w", rdcc_nbytes=cache))
        self._file.attrs["version"] = VERSION
        for key, value in (attrs or {}).items():
            self._file.attrs[key] = value
        self._ds = self._file.create_dataset(
            MATRIX, shape=(n_samples, n_features), dtype=dtype, chunks=chunks, compression=compression
        )
        # The matrix, and generously its ids and metadata (64 bytes a value) and HDF5's own structures.
        meta = sum(len(m) for m in (sample_meta or {}).values()) + sum(len(m) for m in (feature_meta or {}).values())
        reserve(self._file, n_samples * n_features * dtype.itemsize + 64 * (n_samples + n_features + meta) + (1 << 20),
                self.path)
        self.done = self.blocks = 0

    def write(self, block: np.ndarray) -> None:
        """Append the next samples (rows x all features)."""
        block = np.asarray(block)
        n_samples, n_features = self._ds.shape
        if block.ndim != 2 or block.shape[1] != n_features or self.done + len(block) > n_samples:
            raise ValueError(
                f"{self.path}: block {self.blocks} has shape {block.shape} after {self.done} samples; expected "
                f"(rows, {n_features}) blocks whose rows add up to {n_samples} samples"
            )
        if len(block):
            self._ds[self.done : self.done + len(block)] = block
        self.done += len(block)
        self.blocks += 1

    def close(self) -> Path:
        """Check every sample was written, add the ids and rename the file into place."""
        if self.done != len(self.sample_ids):
            raise ValueError(f"{self.path}: the blocks hold {self.done} samples; expected {len(self.sample_ids)} (one per sample id)")
        _write_meta(self._file, SAMPLE_META, self.sample_ids, self._meta[0])
        _write_meta(self._file, FEATURE_META, self.feature_ids, self._meta[1])
        self._stack.close()
        return self.path

    def __enter__(self) -> "GCTXWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self._stack.__exit__(exc_type, exc, tb)  # removes the temporary file


def write_gctx_blocks(
    path: str | os.PathLike,
    sample_ids: Sequence[str],
    feature_ids: Sequence[str],
    blocks: Iterable[np.ndarray],
    *,
    progress: Callable[[int], None] | None = None,
    **options,
) -> Path:
    """Write a GCTX 1.0 file atomically from ``blocks`` of consecutive samples (each samples x features).

    Only one block (plus the HDF5 chunk cache) is in memory at a time, so files larger than memory can be
    written. The blocks' rows must add up to ``len(sample_ids)``; otherwise a ``ValueError`` is raised and
    no file is left behind. ``progress(n)`` is called after each block with its number of samples.
    ``options`` are those of :class:`GCTXWriter` (dtype, metadata, attrs, compression, chunk_rows).
    """
    with GCTXWriter(path, sample_ids, feature_ids, **options) as writer:
        for block in blocks:
            writer.write(block)
            if progress is not None:
                progress(len(block))
    return Path(path)
