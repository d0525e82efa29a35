"""What every matrix reader shares: the reader protocol, its error type, the format from a file's content
(or name) and the unique-id check. The format modules (gctx, h5ad, table) import this; nothing here imports them.

A reader knows its sample ids and feature (probe or gene) ids up front and yields the values in
blocks of samples, so a file larger than memory can be processed block by block::

    reader = open_matrix("bgedv2_QNORM.gctx")          # src.data.io.matrix
    for rows, values in reader.blocks(columns, block_size=4096):   # values: float32, samples x columns
        ...

Sample and feature ids must be unique; non-finite values are left to the caller (which names them).
"""

from __future__ import annotations

import gzip
import os
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Protocol

import numpy as np

from src.common.errors import InputError

FORMATS = ("gctx", "h5ad", "table", "archs4")


class MatrixFormatError(InputError):
    """A file cannot be read as the expression matrix it claims to be (an input error: one message, no traceback)."""


class MatrixReader(Protocol):
    """Samples x features values of one file, read in blocks of samples."""

    path: Path
    sample_ids: np.ndarray  # str, one per sample (matrix row)
    feature_ids: np.ndarray  # str, one per feature (matrix column)

    def blocks(self, columns: np.ndarray | None = None, block_size: int = 4096) -> Iterator[tuple[slice, np.ndarray]]:
        """Yield ``(sample_slice, float32 values)`` blocks, keeping only ``columns`` (positions) if given."""
        ...


HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
GZIP_MAGIC = b"\x1f\x8b"
SNIFF_BYTES = 8192


def detect_format(path: str | os.PathLike, key: str | None = "input_format") -> str:
    """``gctx``, ``h5ad`` or ``table`` from the file's content if it exists, else from its name.

    Content (:func:`sniff_format`): an HDF5 file is ``h5ad`` when its root has ``obs`` and ``var`` (the
    AnnData layout), else ``gctx``; text, plain or gzipped, is a ``table``. The name (``.gz`` looked
    through) decides for a path that does not exist yet (an output file) or whose content is neither (an
    empty file, other binary data). ``key`` is the config key that sets the format explicitly, named in the
    error (None: there is none).
    """
    sniffed = sniff_format(path)
    if sniffed is not None:
        return sniffed
    by_name = format_from_name(path)
    if by_name is not None:
        return by_name
    fix = f" (or give the format explicitly: {key}=gctx, {key}=h5ad or {key}=table)" if key else ""
    seen = "content or " if Path(path).is_file() else ""
    raise MatrixFormatError(
        f"{path}: cannot tell the format from the file's {seen}name; expected an HDF5 file (GCTX, .h5ad), a text "
        f"table (optionally gzipped) or a name ending in .gctx, .h5ad, .csv, .tsv or .txt{fix}"
    )


def output_format(path: str | os.PathLike) -> str:
    """The format an output file is written in: from its name only (an existing file of that name, about to be
    replaced, does not decide)."""
    by_name = format_from_name(path)
    if by_name is None:
        raise MatrixFormatError(f"{path}: cannot tell the output format from the name; expected a name ending in "
                                f".gctx, .h5ad, .csv or .tsv (optionally .gz), e.g. {Path(path).stem}.h5ad")
    return by_name


def format_from_name(path: str | os.PathLike) -> str | None:
    """``gctx``, ``h5ad`` or ``table`` from the file name's suffix (``.gz`` looked through); None if unknown."""
    name = Path(path).name.lower()
    if name.endswith(".gz"):
        name = name[:-3]
    if name.endswith((".gctx", ".h5", ".hdf5")):
        return "gctx"
    if name.endswith(".h5ad"):
        return "h5ad"
    if name.endswith((".csv", ".tsv", ".txt", ".tab")):
        return "table"
    return None


def sniff_format(path: str | os.PathLike) -> str | None:
    """``gctx``, ``h5ad`` or ``table`` from the first bytes of an existing file; None when the file does not
    exist, cannot be read, is empty or is neither HDF5 nor text (plain or gzipped)."""
    path = Path(path)
    try:
        if not path.is_file():
            return None
        with open(path, "rb") as f:
            head = f.read(SNIFF_BYTES)
        if head.startswith(HDF5_SIGNATURE):
            return _hdf5_format(path)
        if head.startswith(GZIP_MAGIC):
            with gzip.open(path, "rb") as f:
                head = f.read(SNIFF_BYTES)
            return "table" if _looks_like_text(head) else None  # (a gzipped HDF5 file cannot be read in place)
    except (OSError, EOFError):
        return None
    return "table" if _looks_like_text(head) else None


def _hdf5_format(path: Path) -> str:
    """``h5ad`` for an HDF5 file with ``obs`` and ``var`` at its root, ``archs4`` for ARCHS4's layout
    (``data/expression``, ``meta/genes``, ``meta/samples``), else ``gctx`` (also when unreadable: the name
    decides between GCTX and h5ad then, so that the reader reports the problem)."""
    import h5py  # only for HDF5 files

    try:
        with h5py.File(path, "r") as f:
            if "obs" in f and "var" in f:
                return "h5ad"
            return "archs4" if "data/expression" in f and "meta/genes" in f and "meta/samples" in f else "gctx"
    except OSError:
        return "h5ad" if format_from_name(path) == "h5ad" else "gctx"


def _looks_like_text(head: bytes) -> bool:
    """True if ``head`` (a file's first bytes) is non-empty text: UTF-16 with its byte-order mark, or no NUL
    byte and (almost) no control characters."""
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        return True
    if not head or b"\x00" in head:
        return False
    control = sum(b < 32 and b not in (9, 10, 12, 13) for b in head)
    return control <= len(head) // 100


def check_unique(ids: Sequence[str], what: str, path: str | os.PathLike) -> None:
    """Raise a :class:`MatrixFormatError` naming ``path`` and the first repeated ids, if any repeat."""
    if len(set(ids)) == len(ids):
        return
    repeated = [i for i, count in Counter(ids).items() if count > 1]
    raise MatrixFormatError(
        f"{path}: {len(repeated)} {what} ids occur more than once (first: {', '.join(map(str, repeated[:5]))}); "
        f"expected unique {what} ids"
    )
