"""Write samples x features matrices block by block in the format a path asks for (GCTX, ``.h5ad``, CSV/TSV).

A writer takes several named layers of the same shape (e.g. predictions on the expression scale and
on the standardised scale) and writes them as each format allows:

* ``.h5ad``: the first layer is ``X``, the others go to ``layers[name]`` (scverse: samples are rows);
* GCTX: one file per layer, the first at ``path``, the others at ``<stem>_<name>.gctx``;
* CSV/TSV: likewise one file per layer, samples as rows, a header of feature ids.

Every file is written under a temporary name and renamed only when complete.
"""

from __future__ import annotations

import csv
import gzip
import os
from collections.abc import Sequence
from contextlib import ExitStack
from pathlib import Path

import h5py
import numpy as np

from src.common.atomic import atomic_path
from src.data.io.gctx import GCTXWriter
from src.data.io.base import detect_format
from src.data.io.table import guess_separator


def layer_path(path: Path, name: str) -> Path:
    """Where a secondary layer goes for one-matrix formats: ``out.gctx`` -> ``out_<name>.gctx``."""
    gz = path.name.endswith(".gz")
    base = path.name[:-3] if gz else path.name
    stem, dot, suffix = base.rpartition(".")
    return path.with_name(f"{stem}_{name}.{suffix}" + (".gz" if gz else "") if dot else f"{base}_{name}")


class MatrixWriter:
    """Write ``layers`` (name -> block of consecutive samples) for ``sample_ids`` x ``feature_ids``.

    Use as a context manager; an exception inside removes every temporary file.
    """

    def __init__(self, path: str | os.PathLike, sample_ids: Sequence[str], feature_ids: Sequence[str],
                 layers: Sequence[str], format: str = "auto"):
        self.path = Path(path)
        self.layers = list(layers)
        self.format = detect_format(self.path, key=None) if format == "auto" else format
        self.sample_ids, self.feature_ids = [str(s) for s in sample_ids], [str(f) for f in feature_ids]
        self.paths = [self.path] + ([] if self.format == "h5ad" else [layer_path(self.path, n) for n in self.layers[1:]])
        self._stack = ExitStack()
        self._done = 0
        if self.format == "gctx":
            self._sinks = [self._stack.enter_context(GCTXWriter(p, self.sample_ids, self.feature_ids)) for p in self.paths]
        elif self.format == "h5ad":
            self._sinks = self._open_h5ad()
        elif self.format == "table":
            self._sinks = [self._open_table(p) for p in self.paths]
        else:
            raise ValueError(f"{self.path}: cannot write format {self.format!r}; expected gctx, h5ad or table")

    def write(self, blocks: dict[str, np.ndarray]) -> None:
        """Append the next samples of every layer (same rows in each)."""
        rows = {len(blocks[name]) for name in self.layers}
        if len(rows) != 1:
            raise ValueError(f"{self.path}: layers of one block must have the same rows, got {sorted(rows)}")
        n = rows.pop()
        for name, sink in zip(self.layers, self._sinks):
            block = np.asarray(blocks[name], dtype=np.float32)
            if self.format == "gctx":
                sink.write(block)
            elif self.format == "h5ad":
                sink[self._done : self._done + n] = block
            else:
                writer = sink
                for sample, values in zip(self.sample_ids[self._done : self._done + n], block):
                    writer.writerow([sample, *(f"{v:.6g}" for v in values)])
        self._done += n

    def _open_h5ad(self) -> list:
        import anndata
        import pandas as pd

        tmp = self._stack.enter_context(atomic_path(self.path))
        skeleton = anndata.AnnData(obs=pd.DataFrame(index=self.sample_ids), var=pd.DataFrame(index=self.feature_ids))
        skeleton.write_h5ad(tmp)
        f = self._stack.enter_context(h5py.File(tmp, "a"))
        shape = (len(self.sample_ids), len(self.feature_ids))
        chunks = (max(1, min(256, shape[0])), max(1, shape[1])) if all(shape) else None
        datasets = []
        for i, name in enumerate(self.layers):
            key = "X" if i == 0 else f"layers/{name}"
            ds = f.create_dataset(key, shape=shape, dtype="float32", chunks=chunks)
            ds.attrs["encoding-type"], ds.attrs["encoding-version"] = "array", "0.2.0"
            datasets.append(ds)
        return datasets

    def _open_table(self, path: Path):
        tmp = self._stack.enter_context(atomic_path(path))
        opener = gzip.open if path.name.endswith(".gz") else open
        handle = self._stack.enter_context(opener(tmp, "wt", newline=""))
        writer = csv.writer(handle, delimiter=guess_separator(path))
        writer.writerow(["sample", *self.feature_ids])
        return writer

    def close(self) -> list[Path]:
        if self._done != len(self.sample_ids):
            raise ValueError(f"{self.path}: wrote {self._done} samples; expected {len(self.sample_ids)}")
        self._stack.close()  # closes files (GCTX writers add their ids) and renames them into place
        return self.paths

    def __enter__(self) -> "MatrixWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self._stack.__exit__(exc_type, exc, tb)
