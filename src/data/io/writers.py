"""Write samples x features matrices block by block in the format a path asks for (GCTX, ``.h5ad``, CSV/TSV).

A writer takes several named layers of the same shape (e.g. predictions on the expression scale and
on the standardised scale) and writes them as each format allows:

* ``.h5ad``: the first layer is ``X``, the others go to ``layers[name]`` (scverse: samples are rows);
* GCTX: one file per layer, the first at ``path``, the others at ``<stem>_<name>.gctx``;
* CSV/TSV: likewise one file per layer, samples as rows, a header of feature ids.

Optional annotations travel with the matrices (given as ``name -> one value per feature/sample``; bool,
int, float or str columns) and provenance strings (``uns``, e.g. checkpoint path and hash):

* ``.h5ad``: ``var`` / ``obs`` columns (dtypes kept: bool stays bool, str stays str), ``uns[name]`` strings;
* GCTX: ``/0/META/ROW/<name>`` / ``/0/META/COL/<name>`` and string root attributes, in every file written;
* CSV/TSV: sidecars ``<stem>_genes.<ext>`` (header ``gene,<names...>``, one row per feature),
  ``<stem>_samples.<ext>`` (header ``sample,<names...>``) and ``<stem>_provenance.json``.

GCTX metadata follows the CMap layout that cmapPy's parser reads: strings as fixed-length UTF-8 byte strings like the
ids, numbers as int/float datasets, bools as int8 0/1, missing floats (NaN) as CMap's null -666 (cmapPy reads
it back as NaN; ``src.data.io.gctx.read_meta`` returns the stored -666). The CSV/TSV sidecars use the matrix's separator and
compression; an empty mapping is the same as none (no sidecar).

Every file is written under a temporary name and renamed only when complete; an exception (or too few
samples at :meth:`MatrixWriter.close`) leaves none of them behind, and temporary files of a writer that was
killed are removed by the next writer of the same files (:func:`src.common.atomic.atomic_path`). An output
that cannot be written fails naming the output, not the temporary file. :meth:`MatrixWriter.planned_paths`
and :func:`check_outputs` let a caller refuse, before any work, outputs that would replace its input or an
existing file.
"""

from __future__ import annotations

import csv
import errno
import gzip
import json
import os
from collections.abc import Mapping, Sequence
from contextlib import ExitStack
from pathlib import Path

import numpy as np

from src.common.errors import InputError, NoRoomError
from src.common.atomic import atomic_path
from src.data.io.gctx import GCTXWriter
from src.data.io.hdf5 import hdf5_output
from src.data.io.base import output_format
from src.data.io.table import guess_separator


def layer_path(path: Path, name: str) -> Path:
    """Where a secondary layer goes for one-matrix formats: ``out.gctx`` -> ``out_<name>.gctx``."""
    gz = path.name.endswith(".gz")
    base = path.name[:-3] if gz else path.name
    stem, dot, suffix = base.rpartition(".")
    return path.with_name(f"{stem}_{name}.{suffix}" + (".gz" if gz else "") if dot else f"{base}_{name}")


def provenance_path(path: Path) -> Path:
    """Where a CSV/TSV output's provenance goes: ``out.csv.gz`` -> ``out_provenance.json``."""
    base = path.name[:-3] if path.name.endswith(".gz") else path.name
    stem, dot, _ = base.rpartition(".")
    return path.with_name(f"{stem if dot else base}_provenance.json")


def _column(values, n: int, name: str, what: str, path: Path) -> np.ndarray:
    """One annotation column as a 1-d bool, int, float or str numpy array of length ``n``."""
    try:
        array = np.asarray(values)
    except ValueError as err:  # ragged nested sequences
        raise ValueError(f"{path}: {what} annotation {name!r} is not a flat sequence of values ({err})") from err
    if array.ndim != 1 or len(array) != n:
        got = f"{len(array)} values" if array.ndim == 1 else f"an array of shape {array.shape}"
        raise ValueError(f"{path}: {what} annotation {name!r} has {got}; expected {n} (one per {what})")
    kind = array.dtype.kind
    if kind in "biuf" or kind == "U":
        return array
    if kind == "S":
        return np.array([v.decode() for v in array], dtype=str)
    if kind == "O":
        if n and all(isinstance(v, (bool, np.bool_)) for v in array):
            return array.astype(bool)
        return np.array([str(v) for v in array], dtype=str)
    raise ValueError(
        f"{path}: {what} annotation {name!r} has values of dtype {array.dtype}; expected bool, int, float or str"
    )


def _columns(columns: Mapping[str, Sequence] | None, n: int, what: str, key: str, path: Path) -> dict[str, np.ndarray]:
    out = {}
    for name, values in ({} if columns is None else columns).items():  # a DataFrame works too
        if not isinstance(name, str) or not name or "/" in name or name in ("id", "_index", key):
            raise ValueError(
                f"{path}: {what} annotation name {name!r} cannot be used; expected a non-empty string without '/', "
                f"other than 'id' (the GCTX ids), '_index' (reserved by anndata) and {key!r} (the CSV id column)"
            )
        out[name] = _column(values, n, name, what, path)
    return out


def _provenance(uns: Mapping[str, str] | None, path: Path) -> dict[str, str]:
    out = {}
    for name, value in ({} if uns is None else uns).items():
        if not isinstance(name, str) or not name or "/" in name or name == "version":
            raise ValueError(
                f"{path}: provenance name {name!r} cannot be used; expected a non-empty string without '/', other "
                "than 'version' (the GCTX format version attribute; use e.g. 'package_version')"
            )
        if value is None:
            raise ValueError(f"{path}: provenance {name!r} is None; expected a string")
        out[name] = str(value)
    return out


NULL = -666  # CMap's metadata null: cmapPy's parser reads it as NaN (it reads a float "nan" as a string)


def _gctx_meta(columns: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """GCTX (CMap) metadata datasets: bools as int8 0/1, NaN as -666; strings become byte strings in ``GCTXWriter``."""
    out = {}
    for name, values in columns.items():
        if values.dtype.kind == "b":
            values = values.astype(np.int8)
        elif values.dtype.kind == "f" and np.isnan(values).any():
            values = np.where(np.isnan(values), NULL, values).astype(values.dtype)
        out[name] = values
    return out


def _plan(path: Path, format: str, layers: Sequence[str], genes: bool, samples: bool,
          provenance: bool) -> tuple[list[Path], dict[str, Path]]:
    """The matrix files and the sidecars (``genes``, ``samples``, ``provenance`` -> path) a writer writes."""
    matrices = [path] + ([] if format == "h5ad" else [layer_path(path, n) for n in list(layers)[1:]])
    sidecars = {}
    if format == "table":
        if genes:
            sidecars["genes"] = layer_path(path, "genes")
        if samples:
            sidecars["samples"] = layer_path(path, "samples")
        if provenance:
            sidecars["provenance"] = provenance_path(path)
    paths = matrices + list(sidecars.values())
    if len(set(paths)) != len(paths):
        raise ValueError(
            f"{path}: two outputs would share a file name ({', '.join(map(str, paths))}); rename the layer that clashes"
        )
    return matrices, sidecars


def plain_string_frame(columns, ids):
    """A DataFrame of ``columns`` indexed by ``ids`` whose index and str columns hold Python strings
    (object dtype), which anndata writes as plain HDF5 strings under any pandas: with pandas 3 (or
    pandas 2's ``future.infer_string``) they would be its nullable string arrays, which anndata 0.12
    refuses to write (``allow_write_nullable_strings``) and anndata before 0.11 cannot read."""
    import pandas as pd

    index = pd.Index(list(ids), dtype=object)
    frame = {}
    for name, values in dict(columns).items():
        values = np.asarray(values)
        frame[name] = pd.Series(values, index=index, dtype=object if values.dtype.kind in "OUS" else None)
    return pd.DataFrame(frame, index=index)


def to_anndata(sample_ids: Sequence[str], feature_ids: Sequence[str], layers: Mapping[str, np.ndarray], *,
               feature_annotations: Mapping[str, Sequence] | None = None,
               sample_annotations: Mapping[str, Sequence] | None = None,
               uns: Mapping[str, str] | None = None, where: str = "in memory"):
    """The ``AnnData`` that :class:`MatrixWriter` writes to an ``.h5ad`` file, in memory: the first of
    ``layers`` is ``X``, the others ``layers[name]`` (float32), the annotations ``var`` / ``obs`` columns and
    ``uns`` the provenance strings, checked and converted as the writer does them."""
    import anndata

    path = Path(where)
    sample_ids, feature_ids = [str(s) for s in sample_ids], [str(f) for f in feature_ids]
    matrices = {name: np.asarray(values, dtype=np.float32) for name, values in layers.items()}
    first, *others = matrices
    return anndata.AnnData(
        X=matrices[first], layers={name: matrices[name] for name in others},
        obs=plain_string_frame(_columns(sample_annotations, len(sample_ids), "sample", "sample", path), sample_ids),
        var=plain_string_frame(_columns(feature_annotations, len(feature_ids), "feature", "gene", path), feature_ids),
        uns=_provenance(uns, path),
    )


def _given(columns) -> bool:
    """Whether annotations (a mapping, a DataFrame, or just True/False) would write anything."""
    if columns is None or isinstance(columns, bool):
        return bool(columns)
    return len(list(columns.keys())) > 0


def _same_file(a: Path, b: Path) -> bool:
    """``a`` and ``b`` are one file: the same inode (symlinks, hard links) or the same resolved path."""
    try:
        if os.path.exists(a) and os.path.exists(b) and os.path.samefile(a, b):
            return True
    except OSError:
        pass
    return a.resolve() == b.resolve()


def check_outputs(paths: Sequence[str | os.PathLike], *, inputs: Sequence[str | os.PathLike] = (),
                  overwrite: bool = False, key: str = "output") -> None:
    """Refuse, before any work, to write ``paths`` where that would lose a file or cannot succeed.

    * one of ``paths`` is one of ``inputs`` (also through a symlink, a hard link or another spelling of the
      path): ``ValueError``, whatever ``overwrite`` says;
    * one of them exists and ``overwrite`` is false: ``FileExistsError`` naming it and ``overwrite=true``;
    * one of them is a directory, or a folder on its path is a file: ``IsADirectoryError`` /
      ``NotADirectoryError``; a folder this process may not write in: ``PermissionError``.

    ``key`` is the config key the paths come from, for the messages.
    """
    paths = [Path(p) for p in paths]
    for path in paths:
        for source in map(Path, inputs):
            if _same_file(path, source):
                what = f"{key}={paths[0]}" if path == paths[0] else f"{path} (one of the files of {key}={paths[0]})"
                raise InputError(
                    f"{what} is the input file {source}: writing it would destroy the input; choose another {key} "
                    "(overwrite=true does not allow this)"
                )
    for path in paths:
        if path.is_dir():
            raise IsADirectoryError(f"cannot write {path}: it is a directory; choose another {key}")
    existing = [p for p in paths if os.path.lexists(p)]
    if existing and not overwrite:
        others = f" (and {len(existing) - 1} more of the files it would write)" if len(existing) > 1 else ""
        raise FileExistsError(
            f"{existing[0]} exists{others}; pass overwrite=true to replace it, or choose another {key}"
        )
    for path in paths:
        for parent in path.parents:  # the nearest existing folder must be a folder we may write in
            if os.path.lexists(parent):
                if not parent.is_dir():
                    raise NotADirectoryError(f"cannot write {path}: {parent} is not a directory; choose another {key}")
                if not os.access(parent, os.W_OK | os.X_OK):
                    raise PermissionError(f"cannot write {path}: permission denied (to write in {parent})")
                break


BYTES_PER_VALUE = {"gctx": 4, "h5ad": 4, "table": 12}  # float32; a table's "-1.234567" and its separator


def check_room(path: str | os.PathLike, n_samples: int, n_features: int, layers: Sequence[str], format: str = "auto",
               key: str = "output") -> None:
    """Refuse, before any work, an output that cannot fit: a matrix file larger than this process may write
    (``ulimit -f``) or files larger together than the free space of the output's disk. (A disk that fills
    while writing still fails with one message naming the output: :func:`~src.common.atomic.atomic_path`.)"""
    import resource

    path = Path(path)
    format = output_format(path) if format == "auto" else format
    per_layer = n_samples * n_features * BYTES_PER_VALUE[format] // (3 if path.name.endswith(".gz") else 1)
    total = per_layer * len(layers)
    largest = total if format == "h5ad" else per_layer  # an h5ad holds every layer; the others a file each
    limit = resource.getrlimit(resource.RLIMIT_FSIZE)[0]
    if limit != resource.RLIM_INFINITY and largest > limit:
        raise _no_room(errno.EFBIG, f"cannot write {key}={path}: a file of about {_size(largest)} is needed, but this "
                                    f"process may write files of at most {_size(limit)} (ulimit -f); raise the limit or "
                                    "predict fewer profiles per output")
    folder = next((p for p in [path.parent, *path.parent.parents] if p.exists()), None)
    if folder is None:
        return
    stats = os.statvfs(folder)
    free = stats.f_bavail * stats.f_frsize
    if total > free:
        raise _no_room(errno.ENOSPC, f"cannot write {key}={path}: about {_size(total)} are needed and {_size(free)} are "
                                     f"free on the disk of {folder}; free space there or choose another {key}")


def _no_room(code: int, message: str) -> NoRoomError:
    err = NoRoomError(message)
    err.errno = code
    return err


def _size(n: int) -> str:
    for unit in ("bytes", "KB", "MB", "GB", "TB"):
        if n < 1024 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} bytes"


class MatrixWriter:
    """Write ``layers`` (name -> block of consecutive samples) for ``sample_ids`` x ``feature_ids``.

    ``feature_annotations`` / ``sample_annotations`` (name -> one value per feature / sample) and ``uns``
    (name -> provenance string) are written as the module docstring describes. ``paths`` lists every file
    written (matrices first, then CSV/TSV sidecars); :meth:`planned_paths` lists them before any writer
    exists. Use as a context manager; an exception inside (or while opening the files) removes every
    temporary file.
    """

    def __init__(self, path: str | os.PathLike, sample_ids: Sequence[str], feature_ids: Sequence[str],
                 layers: Sequence[str], format: str = "auto", *,
                 feature_annotations: Mapping[str, Sequence] | None = None,
                 sample_annotations: Mapping[str, Sequence] | None = None,
                 uns: Mapping[str, str] | None = None):
        self.path = Path(path)
        self.layers = list(layers)
        self.format = output_format(self.path) if format == "auto" else format
        if self.format not in ("gctx", "h5ad", "table"):
            raise ValueError(f"{self.path}: cannot write format {self.format!r}; expected gctx, h5ad or table")
        self.sample_ids, self.feature_ids = [str(s) for s in sample_ids], [str(f) for f in feature_ids]
        self.feature_annotations = _columns(feature_annotations, len(self.feature_ids), "feature", "gene", self.path)
        self.sample_annotations = _columns(sample_annotations, len(self.sample_ids), "sample", "sample", self.path)
        self.uns = _provenance(uns, self.path)
        matrices, sidecars = _plan(self.path, self.format, self.layers, bool(self.feature_annotations),
                                   bool(self.sample_annotations), bool(self.uns))
        self.paths = matrices + list(sidecars.values())
        self._stack = ExitStack()
        self._done = 0
        try:
            if self.format == "gctx":
                options = dict(feature_meta=_gctx_meta(self.feature_annotations) or None,
                               sample_meta=_gctx_meta(self.sample_annotations) or None, attrs=self.uns or None)
                self._sinks = [self._stack.enter_context(GCTXWriter(p, self.sample_ids, self.feature_ids, **options))
                               for p in matrices]
            elif self.format == "h5ad":
                self._sinks = self._open_h5ad()
            else:
                self._sinks = [self._open_table(p) for p in matrices]
                if "genes" in sidecars:
                    self._write_annotations(sidecars["genes"], "gene", self.feature_ids, self.feature_annotations)
                if "samples" in sidecars:
                    self._write_annotations(sidecars["samples"], "sample", self.sample_ids, self.sample_annotations)
                if "provenance" in sidecars:
                    tmp = self._stack.enter_context(atomic_path(sidecars["provenance"]))
                    tmp.write_text(json.dumps(self.uns, indent=2) + "\n", encoding="utf-8")
        except BaseException as err:
            self._stack.__exit__(type(err), err, err.__traceback__)  # removes what was opened so far
            raise

    @classmethod
    def planned_paths(cls, path: str | os.PathLike, layers: Sequence[str], format: str = "auto", *,
                      feature_annotations: Mapping[str, Sequence] | bool | None = None,
                      sample_annotations: Mapping[str, Sequence] | bool | None = None,
                      uns: Mapping[str, str] | bool | None = None) -> list[Path]:
        """The files a writer with these arguments would write (its :attr:`paths`), computed without
        writing anything, e.g. to check them first (:func:`check_outputs`). Annotations and ``uns`` may be
        given as the mappings or as ``True``/``False`` (whether there will be any)."""
        path = Path(path)
        format = output_format(path) if format == "auto" else format
        matrices, sidecars = _plan(path, format, layers, _given(feature_annotations), _given(sample_annotations),
                                   _given(uns))
        return matrices + list(sidecars.values())

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
        if self.feature_annotations or self.sample_annotations or self.uns:
            skeleton = anndata.AnnData(
                obs=plain_string_frame(self.sample_annotations, self.sample_ids),
                var=plain_string_frame(self.feature_annotations, self.feature_ids),
                uns=dict(self.uns),
            )
            skeleton.write_h5ad(tmp, convert_strings_to_categoricals=False)  # str columns stay str
        else:  # the layout of files written before annotations existed, unchanged
            skeleton = anndata.AnnData(obs=plain_string_frame({}, self.sample_ids), var=plain_string_frame({}, self.feature_ids))
            skeleton.write_h5ad(tmp)
        f = self._stack.enter_context(hdf5_output(tmp, "a"))
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

    def _write_annotations(self, path: Path, key: str, ids: list[str], columns: dict[str, np.ndarray]) -> None:
        """A sidecar table ``key,<names...>`` with one row per id, renamed into place at :meth:`close`."""
        tmp = self._stack.enter_context(atomic_path(path))
        opener = gzip.open if path.name.endswith(".gz") else open
        with opener(tmp, "wt", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle, delimiter=guess_separator(path))
            writer.writerow([key, *columns])
            for row in zip(ids, *columns.values()):
                writer.writerow([row[0], *(str(v) for v in row[1:])])

    def close(self) -> list[Path]:
        if self._done != len(self.sample_ids):
            err = ValueError(f"{self.path}: wrote {self._done} samples; expected {len(self.sample_ids)}")
            self._stack.__exit__(ValueError, err, None)  # leaves no partial file behind
            raise err
        self._stack.close()  # closes files (GCTX writers add their ids) and renames them into place
        return self.paths

    def __enter__(self) -> "MatrixWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self._stack.__exit__(exc_type, exc, tb)
