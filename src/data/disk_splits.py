"""Preprocessed splits on disk: data larger than memory, one copy per node shared by its DDP processes.

The DataModule's ``storage=disk`` path (chosen automatically when the data would not fit, see
:func:`choose_storage`). Nothing of the data is ever loaded whole:

1. the source's cache is opened by rows (:class:`~src.data.rowfile.RowFile`), not read;
2. the preprocessing is fitted in streaming passes over blocks of the training rows
   (:meth:`~src.data.preprocessing.Preprocessing.fit_rows`: exact, the same sums over the same blocks as in memory);
3. every sample is transformed once and written, split after split in the in-memory path's order
   (train | val | calibration | test), as plain row-major float32 ``.npy`` matrices in a store folder beside
   the cache::

       <cache folder>/splits/<cache name>_<fingerprint>/
           landmarks.npy  targets.npy  [deployed.npy: held-out landmarks as src.predict makes them]
           preprocessing.pt

   The fingerprint covers the cache file, the split (its sample order) and the options, so a run with the
   same data and split (another seed, another model of a sweep) reuses the store. The folder is written
   under a temporary name and renamed, by whichever process of the node comes first (an ``flock`` on
   ``<folder>.lock``); the others wait and then open it.
4. batches are read from it by rows through the page cache (:class:`~src.data.batches.DiskBatches`): every
   process of the node shares one cached copy, and each holds only its current batch.

A store is as large as the preprocessed data (samples x genes x 4 bytes); delete the ``splits`` folder to
reclaim the space (it is rebuilt when needed).
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import time
from pathlib import Path

import numpy as np
import torch

from src.common.atomic import locked
from src.common.progress import progress_bar
from src.data.batches import DiskBatches
from src.data.cache import file_identity, fingerprint
from src.data.preprocessing import Preprocessing
from src.data.rowfile import NpyWriter, RowFile
from src.data.sources.base import ExpressionData

log = logging.getLogger(__name__)

STORE_VERSION = 1
BLOCK = 2048  # samples transformed and written at a time (about 85 MB at 10^4 genes)
#: ``storage=auto`` holds the data in memory when every process of the node together takes at most this share
#: of the memory available; else it trains from disk.
MEMORY_SHARE = 0.5


def available_memory() -> int:
    """Bytes of memory this process may still use: the system's ``MemAvailable``, or less under a cgroup limit
    (a container or a SLURM allocation)."""
    available = None
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    available = int(line.split()[1]) * 1024
                    break
    except OSError:
        pass
    if available is None:
        available = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES")
    try:
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        used = int(Path("/sys/fs/cgroup/memory.current").read_text())
        if limit != "max":
            available = min(available, int(limit) - used)
    except (OSError, ValueError):
        pass
    return max(int(available), 0)


def choose_storage(requested: str, nbytes: int, processes: int, available: int | None = None) -> str:
    """``memory`` or ``disk`` for data whose preprocessed splits take ``nbytes``, held by each of ``processes``
    processes of this node: ``requested`` unless it is ``auto``; then memory when all of them together take at
    most :data:`MEMORY_SHARE` of the :func:`available_memory`. The choice and its reason are logged."""
    if requested != "auto":
        log.info("Data: %.2f GB preprocessed, held %s (data.storage=%s)", nbytes / 1e9,
                 "in memory by each process" if requested == "memory" else "on disk, read by rows", requested)
        return requested
    available = available_memory() if available is None else available
    need = nbytes * processes
    if need <= MEMORY_SHARE * available:
        log.info("Data: %.2f GB preprocessed x %d process(es) fit in %.0f%% of the %.1f GB of memory available: held in "
                 "memory (data.storage=auto; data.storage=disk reads batches from a cache on disk instead)",
                 nbytes / 1e9, processes, MEMORY_SHARE * 100, available / 1e9)
        return "memory"
    log.info("Data: %.2f GB preprocessed x %d process(es) is more than %.0f%% of the %.1f GB of memory available: "
             "batches are read from a preprocessed cache on disk, one copy in the page cache shared by this node's "
             "processes (data.storage=auto; data.storage=memory holds it in memory)",
             nbytes / 1e9, processes, MEMORY_SHARE * 100, available / 1e9)
    return "disk"


def _digest(values: np.ndarray | None) -> str | None:
    return None if values is None else hashlib.sha256(np.ascontiguousarray(values).tobytes()).hexdigest()[:16]


def store_folder(data: ExpressionData, parts: dict[str, np.ndarray], quantile_normalize: bool) -> Path:
    """Where the preprocessed splits of ``data`` split as ``parts`` (name -> sample indices) are stored."""
    cache = Path(data.info["cache"])
    key = fingerprint({
        "store": STORE_VERSION,
        "cache": file_identity(cache),
        "parts": {name: [len(rows), _digest(np.asarray(rows, dtype=np.int64))] for name, rows in parts.items()},
        "quantile_normalize": quantile_normalize,
        "reference": _digest(data.reference),
    })
    return cache.parent / "splits" / f"{cache.stem}_{key}"


def _write(folder: Path, data: ExpressionData, parts: dict[str, np.ndarray], fitted: Preprocessing) -> None:
    """Transform every sample once, split after split, into ``folder``'s matrices."""
    n = sum(map(len, parts.values()))
    n_lm, n_tg = data.landmarks.shape[1], data.targets.shape[1]
    held_out = sum(len(rows) for name, rows in parts.items() if name != "train")
    writers = {"landmarks": NpyWriter(folder / "landmarks.npy", (n, n_lm)),
               "targets": NpyWriter(folder / "targets.npy", (n, n_tg))}
    if fitted.quantile_normalized:  # the held-out landmarks rank-mapped alone, as src.predict does
        writers["deployed"] = NpyWriter(folder / "deployed.npy", (held_out, n_lm))
    try:
        with progress_bar("Writing the preprocessed splits", n) as advance:
            for name, rows in parts.items():
                for start in range(0, len(rows), BLOCK):
                    index = rows[start : start + BLOCK]
                    landmarks, targets = data.landmarks[index], data.targets[index]
                    x, y = fitted.transform_training_rows(landmarks, targets)
                    writers["landmarks"].write(x)
                    writers["targets"].write(y)
                    if "deployed" in writers and name != "train":
                        writers["deployed"].write(fitted.transform_landmarks(landmarks, log2=False))
                    advance(len(index))
    except BaseException:
        for writer in writers.values():
            writer.abort()
        raise
    for writer in writers.values():
        writer.close()
    torch.save(fitted.to_dict(), folder / "preprocessing.pt")


def build_or_open(data: ExpressionData, parts: dict[str, np.ndarray], quantile_normalize: bool) -> tuple[Preprocessing, dict[str, DiskBatches], Path]:
    """The preprocessing and the splits (name -> :class:`DiskBatches`) of ``data`` split as ``parts`` (in order:
    train, val, calibration, test), from the store if one exists, else fitted and written first (by one process
    of the node at a time; the others wait and open it)."""
    folder = store_folder(data, parts, quantile_normalize)
    with locked(folder.with_name(folder.name + ".lock"), f"Waiting for another process to write {folder}"):
        if not (folder / "preprocessing.pt").exists():
            for leftover in folder.parent.glob(f".{folder.name}.*.tmp"):  # of a killed writer (we hold the lock)
                shutil.rmtree(leftover, ignore_errors=True)
            tmp = folder.with_name(f".{folder.name}.{os.getpid()}.tmp")
            tmp.mkdir(parents=True)
            try:
                started = time.perf_counter()
                log.info("Fitting the preprocessing on %d training profiles in streaming passes over %s",
                         len(parts["train"]), Path(data.info["cache"]).name)
                fitted = Preprocessing.fit_rows(data, parts["train"], quantile_normalize)
                _write(tmp, data, parts, fitted)
                os.replace(tmp, folder)
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
            log.info("Wrote the preprocessed splits (%d samples, %.1f GB) to %s in %.0f s", sum(map(len, parts.values())),
                     sum(f.stat().st_size for f in folder.iterdir()) / 1e9, folder, time.perf_counter() - started)
        else:
            log.info("Using the preprocessed splits in %s", folder)
    fitted = Preprocessing.from_dict(torch.load(folder / "preprocessing.pt", weights_only=True))
    landmarks, targets = RowFile.npy(folder / "landmarks.npy"), RowFile.npy(folder / "targets.npy")
    deployed = RowFile.npy(folder / "deployed.npy") if (folder / "deployed.npy").exists() else None
    splits, start, held_start = {}, 0, 0
    for name, rows in parts.items():
        stop = start + len(rows)
        held = None
        if deployed is not None and name != "train":
            held = deployed.rows_between(held_start, held_start + len(rows))
            held_start += len(rows)
        splits[name] = DiskBatches(landmarks.rows_between(start, stop), targets.rows_between(start, stop), held)
        start = stop
    return fitted, splits, folder
