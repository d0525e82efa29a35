"""The HDF5 cache of a processed data set: written once (temporary name, then rename), read back fast.

Layout: ``/landmarks`` and ``/targets`` (float32, samples x genes, row-chunked), ``/sample_ids``,
``/landmark_ids``, ``/target_ids``, the file's per-sample annotations as ``/sample_annotations/<name>``
(strings, one per sample) and a JSON ``info`` attribute. The cache's name carries a
fingerprint of everything it was made from, so changed inputs or options make a new cache.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import h5py
import numpy as np

from src.common.errors import InputError
from src.common.atomic import atomic_path

FORMAT_VERSION = 3  # 2: info carries the maps' gene symbols; 3: per-sample annotations, absent genes left out


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


def write_cache(path: str | os.PathLike, matrix: np.ndarray, n_landmarks: int, data_ids: dict, info: dict) -> Path:
    """Write ``matrix`` (samples x [landmarks | targets]) and its ids as a cache, atomically.

    ``data_ids`` has ``sample_ids``, ``landmark_ids`` and ``target_ids``, and optionally
    ``sample_annotations`` (name -> one string per sample).
    """
    n, width = matrix.shape
    if width != n_landmarks + len(data_ids["target_ids"]) or n != len(data_ids["sample_ids"]):
        raise InputError(f"cache {path}: matrix {matrix.shape} does not match its ids")
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
        for name, cols in (("landmarks", slice(0, n_landmarks)), ("targets", slice(n_landmarks, width))):
            ds = f.create_dataset(name, shape=(n, cols.stop - cols.start), dtype="float32", chunks=(min(256, max(n, 1)), cols.stop - cols.start))
            for start in range(0, n, 4096):
                ds[start : start + 4096] = matrix[start : start + 4096, cols]
        for name in ("sample_ids", "landmark_ids", "target_ids"):
            f.create_dataset(name, data=_strings(data_ids[name]))
        for name, values in (data_ids.get("sample_annotations") or {}).items():
            f.create_dataset(f"sample_annotations/{name}", data=_strings(values))
        f.attrs["info"] = json.dumps(info, default=str)
    return Path(path)


def read_cache(path: str | os.PathLike, progress=None) -> tuple[np.ndarray, np.ndarray, dict, dict]:
    """Load a cache written by :func:`write_cache` into memory (row blocks, no fancy indexing).

    Returns ``(landmarks, targets, ids, info)`` with ``ids`` as given to :func:`write_cache`.
    ``progress(fraction)`` is called as the blocks arrive (fractions of the whole file, adding up to 1).
    """
    path = Path(path)
    try:
        with h5py.File(path, "r") as f:
            ids = {name: [v.decode() for v in f[name][()]] for name in ("sample_ids", "landmark_ids", "target_ids")}
            group = f.get("sample_annotations")
            ids["sample_annotations"] = {k: [v.decode() for v in group[k][()]] for k in group} if group else {}
            arrays = {}
            total = sum(f[name].size for name in ("landmarks", "targets")) or 1
            for name in ("landmarks", "targets"):
                ds = f[name]
                out = np.empty(ds.shape, dtype=np.float32)
                for start in range(0, ds.shape[0], 4096):
                    out[start : start + 4096] = ds[start : start + 4096]
                    if progress is not None:
                        progress(out[start : start + 4096].size / total)
                arrays[name] = out
            info = json.loads(f.attrs["info"])
    except (OSError, KeyError) as err:
        raise InputError(f"{path}: unreadable data cache ({err}); delete it and the data will be processed again") from err
    return arrays["landmarks"], arrays["targets"], ids, info
