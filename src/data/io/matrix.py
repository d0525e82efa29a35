"""Open any expression-matrix file (GCTX, ``.h5ad``, CSV/TSV) as a :class:`~src.data.io.base.MatrixReader`."""

from __future__ import annotations

import inspect
import os
from collections.abc import Collection
from pathlib import Path

from src.data.io.archs4 import ARCHS4Reader
from src.data.io.base import FORMATS, MatrixFormatError, MatrixReader, detect_format
from src.data.io.gctx import GCTXReader
from src.data.io.h5ad import H5ADReader
from src.data.io.table import TableReader

READERS = {"gctx": GCTXReader, "h5ad": H5ADReader, "table": TableReader, "archs4": ARCHS4Reader}


def open_matrix(
    path: str | os.PathLike, format: str = "auto", format_key: str = "input_format", options_key: str | None = None,
    known_features: Collection[str] | None = None, **options
) -> MatrixReader:
    """Open ``path`` as a :class:`MatrixReader`; ``format`` is ``auto`` (from the file's content, see
    :func:`~src.data.io.base.detect_format`), ``gctx``, ``h5ad`` or ``table``.

    ``options`` go to the format's reader (e.g. ``annotation_columns`` for tables); ``format_key``
    is the config key that sets the format and ``options_key`` the one that holds ``options``
    (e.g. ``reader_options``), so that errors suggest valid overrides (``++reader_options.sep=','``).
    ``known_features`` (ids and gene symbols the caller knows) go to table readers only, to tell a table's
    orientation; other readers ignore them.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file (expected an expression matrix: GCTX, .h5ad, CSV or TSV)")
    if path.is_dir():
        raise IsADirectoryError(f"{path}: a directory, not a file; expected the path of an expression matrix file "
                                f"(GCTX, .h5ad, CSV or TSV) in it, e.g. {_example_in(path)}")
    kind = detect_format(path, format_key) if format == "auto" else format
    if kind not in READERS:
        raise MatrixFormatError(f"{format_key}={format}: unknown format for {path}; expected one of auto, {', '.join(FORMATS)}")
    accepted = [name for name in inspect.signature(READERS[kind]).parameters if name not in ("self", "path")]
    for name in options:
        if name not in accepted:
            where = f"{options_key}.{name}" if options_key else name
            raise MatrixFormatError(
                f"{where}: not an option of the {kind} reader of {path}; expected one of "
                f"{', '.join(a for a in accepted if a not in ('options_key', 'known_features'))} (drop {where})")
    if kind in ("table", "archs4") and options_key is not None:
        options["options_key"] = options_key
    if kind == "table" and known_features is not None:
        options["known_features"] = known_features
    return READERS[kind](path, **options)


def _example_in(folder: Path) -> str:
    """A file of ``folder`` that looks like a matrix (for the message), else ``<folder>/FILE``."""
    try:
        for child in sorted(folder.iterdir()):
            if child.is_file() and any(s in child.name for s in (".gctx", ".h5ad", ".csv", ".tsv", ".txt")):
                return str(child)
    except OSError:
        pass
    return f"{folder}/FILE"
