"""What every matrix reader shares: the reader protocol, its error type, the format from a file name
and the unique-id check. The format modules (gctx, h5ad, table) import this; nothing here imports them.

A reader knows its sample ids and feature (probe or gene) ids up front and yields the values in
blocks of samples, so a file larger than memory can be processed block by block::

    reader = open_matrix("bgedv2_QNORM.gctx")          # src.data.io.matrix
    for rows, values in reader.blocks(columns, block_size=4096):   # values: float32, samples x columns
        ...

Sample and feature ids must be unique; non-finite values are left to the caller (which names them).
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Protocol

import numpy as np

from src.common.errors import InputError

FORMATS = ("gctx", "h5ad", "table")


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


def detect_format(path: str | os.PathLike, key: str | None = "input_format") -> str:
    """``gctx``, ``h5ad`` or ``table`` from the file name (``.gz`` is looked through).

    ``key`` is the config key that sets the format explicitly, named in the error (None: there is none).
    """
    name = Path(path).name.lower()
    if name.endswith(".gz"):
        name = name[:-3]
    if name.endswith((".gctx", ".h5", ".hdf5")):
        return "gctx"
    if name.endswith(".h5ad"):
        return "h5ad"
    if name.endswith((".csv", ".tsv", ".txt", ".tab")):
        return "table"
    fix = f" (or give the format explicitly: {key}=gctx, {key}=h5ad or {key}=table)" if key else ""
    raise MatrixFormatError(
        f"{path}: cannot tell the format from the file name; expected .gctx, .h5ad, .csv, .tsv or .txt{fix}"
    )


def check_unique(ids: Sequence[str], what: str, path: str | os.PathLike) -> None:
    """Raise a :class:`MatrixFormatError` naming ``path`` and the first repeated ids, if any repeat."""
    if len(set(ids)) == len(ids):
        return
    repeated = [i for i, count in Counter(ids).items() if count > 1]
    raise MatrixFormatError(
        f"{path}: {len(repeated)} {what} ids occur more than once (first: {', '.join(map(str, repeated[:5]))}); "
        f"expected unique {what} ids"
    )
