"""The HDF5 cache of a processed data set: written once (temporary name, then rename), read back fast.

Layout: ``/landmarks`` and ``/targets`` (float32, samples x genes, contiguous: one plain row-major array
each, which :func:`open_cache` reads by rows without loading, see :mod:`src.data.rowfile`), ``/sample_ids``,
``/landmark_ids``, ``/target_ids``, the file's per-sample annotations as ``/sample_annotations/<name>``
(strings, one per sample) and a JSON ``info`` attribute. The cache's name carries a
fingerprint of everything it was made from, so changed inputs or options make a new cache.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import h5py
import numpy as np

from src.common.errors import InputError
from src.common.atomic import atomic_path
from src.data.rowfile import RowFile

# 2: info carries the maps' gene symbols; 3: per-sample annotations, absent genes left out; 4: contiguous matrices
FORMAT_VERSION = 4


def file_identity(path: str | os.PathLike) -> dict:
    """What identifies an input file cheaply: resolved path, size and modification time."""
    stat = Path(path).stat()
    return {"path": str(Path(path).resolve()), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def content_hash(path: str | os.PathLike) -> str:
    """SHA-256 of a (small) file's bytes, e.g. a gene map."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def fingerprint(parts: dict) -> str:
    """A short stable hash of a JSON-able description of a cache's inputs."""
    text = json.dumps({"format": FORMAT_VERSION, **parts}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _strings(values) -> np.ndarray:
    return np.array([str(v).encode() for v in values], dtype="S")


class CacheWriter:
    """Write a cache block by block (:func:`writing_cache`): a matrix larger than memory is never held whole."""

    def __init__(self, f: h5py.File, n: int, n_landmarks: int, n_targets: int):
        self.file, self.n, self.n_landmarks = f, n, n_landmarks
        # No chunks, no compression: contiguous datasets, readable by rows at a fixed offset.
        self.landmarks = f.create_dataset("landmarks", shape=(n, n_landmarks), dtype="<f4")
        self.targets = f.create_dataset("targets", shape=(n, n_targets), dtype="<f4")
        self.rows_written = 0

    def write(self, start: int, block: np.ndarray) -> None:
        """Rows ``start...`` of the matrix (samples x [landmarks | targets])."""
        stop = start + len(block)
        self.landmarks[start:stop] = block[:, : self.n_landmarks]
        self.targets[start:stop] = block[:, self.n_landmarks :]
        self.rows_written += len(block)

    def finish(self, data_ids: dict, info: dict) -> None:
        """The ids (``sample_ids``, ``landmark_ids``, ``target_ids``, optional ``sample_annotations``) and info."""
        f = self.file
        if self.rows_written != self.n or len(data_ids["sample_ids"]) != self.n or \
                self.targets.shape[1] != len(data_ids["target_ids"]) or self.n_landmarks != len(data_ids["landmark_ids"]):
            raise InputError(f"cache {f.filename}: {self.rows_written} rows written of {self.n} do not match its ids")
        for name in ("sample_ids", "landmark_ids", "target_ids"):
            f.create_dataset(name, data=_strings(data_ids[name]))
        for name, values in (data_ids.get("sample_annotations") or {}).items():
            f.create_dataset(f"sample_annotations/{name}", data=_strings(values))
        f.attrs["info"] = json.dumps(info, default=str)
        self.finished = True


@contextmanager
def writing_cache(path: str | os.PathLike, n: int, n_landmarks: int, n_targets: int) -> Iterator[CacheWriter]:
    """A :class:`CacheWriter` on a temporary name, renamed to ``path`` once :meth:`CacheWriter.finish` ran
    and the block ended without an error."""
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
        writer = CacheWriter(f, n, n_landmarks, n_targets)
        yield writer
        if not getattr(writer, "finished", False):
            raise RuntimeError(f"cache {path}: written without its ids (CacheWriter.finish was not called)")


def write_cache(path: str | os.PathLike, matrix: np.ndarray, n_landmarks: int, data_ids: dict, info: dict) -> Path:
    """Write ``matrix`` (samples x [landmarks | targets]) and its ids as a cache, atomically.

    ``data_ids`` has ``sample_ids``, ``landmark_ids`` and ``target_ids``, and optionally
    ``sample_annotations`` (name -> one string per sample).
    """
    n, width = matrix.shape
    if width != n_landmarks + len(data_ids["target_ids"]) or n != len(data_ids["sample_ids"]):
        raise InputError(f"cache {path}: matrix {matrix.shape} does not match its ids")
    with writing_cache(path, n, n_landmarks, width - n_landmarks) as writer:
        for start in range(0, n, 4096):
            writer.write(start, matrix[start : start + 4096])
        writer.finish(data_ids, info)
    return Path(path)


def _read_ids(f: h5py.File) -> tuple[dict, dict]:
    ids = {name: [v.decode() for v in f[name][()]] for name in ("sample_ids", "landmark_ids", "target_ids")}
    group = f.get("sample_annotations")
    ids["sample_annotations"] = {k: [v.decode() for v in group[k][()]] for k in group} if group else {}
    return ids, json.loads(f.attrs["info"])


def cache_shape(path: str | os.PathLike) -> tuple[int, int, int]:
    """``(samples, landmarks, targets)`` of a cache, without reading its matrices."""
    try:
        with h5py.File(path, "r") as f:
            return int(f["landmarks"].shape[0]), int(f["landmarks"].shape[1]), int(f["targets"].shape[1])
    except (OSError, KeyError) as err:
        raise InputError(f"{path}: unreadable data cache ({err}); delete it and the data will be processed again") from err


def open_cache(path: str | os.PathLike) -> tuple[RowFile, RowFile, dict, dict]:
    """A cache's landmark and target matrices as :class:`~src.data.rowfile.RowFile` (read by rows on demand,
    nothing loaded), with its ids and info as :func:`read_cache` returns them."""
    path = Path(path)
    try:
        with h5py.File(path, "r") as f:
            ids, info = _read_ids(f)
            files = []
            for name in ("landmarks", "targets"):
                ds = f[name]
                offset = ds.id.get_offset()
                if offset is None and ds.size:
                    raise KeyError(f"/{name} is not stored contiguously")
                files.append(RowFile(path, offset or 0, ds.shape))
    except (OSError, KeyError) as err:
        raise InputError(f"{path}: unreadable data cache ({err}); delete it and the data will be processed again") from err
    return files[0], files[1], ids, info


def read_cache(path: str | os.PathLike, progress=None) -> tuple[np.ndarray, np.ndarray, dict, dict]:
    """Load a cache written by :func:`write_cache` into memory: :func:`open_cache`'s matrices read in row blocks.

    Returns ``(landmarks, targets, ids, info)`` with ``ids`` as given to :func:`write_cache`.
    ``progress(fraction)`` is called as the blocks arrive (fractions of the whole file, adding up to 1).
    """
    *matrices, ids, info = open_cache(path)
    total = sum(m.shape[0] * m.shape[1] for m in matrices) or 1
    arrays = []
    for matrix in matrices:
        out = np.empty(matrix.shape, dtype=np.float32)
        for start in range(0, len(matrix), 4096):
            block = matrix.read(start, min(start + 4096, len(matrix)), out[start : start + 4096])
            if progress is not None:
                progress(block.size / total)
        matrix.close()
        arrays.append(out)
    return arrays[0], arrays[1], ids, info
