"""Read CSV/TSV expression tables (optionally gzipped) as a :class:`~src.data.io.base.MatrixReader`.

The first column holds ids; the header row names the other columns. Two layouts are read:

``features_in_rows``
    one row per gene or probe, one column per sample, e.g. the 1000 Genomes GEUVADIS file
    ``GD462.GeneQuantRPKM.50FN.samplename.resk10.txt``::

        TargetID            Gene_Symbol  Chr  Coord     HG00096  NA06984  ...
        ENSG00000152931.6   PART1        5    59783540  0.1013   0.0000   ...

    Annotation columns such as ``Gene_Symbol``, ``Chr`` and ``Coord`` are dropped.
``samples_in_rows``
    one row per sample, one column per feature (the scverse / generic CSV convention).

``orientation="auto"`` picks the layout whose ids look like gene or probe ids (Ensembl
``ENSG00000152931.6``, Affymetrix ``202954_at``, ``1007_s_at``, ``AFFX-...``). The table is small
(hundreds of samples), so it is read into memory once and :meth:`TableReader.blocks` slices it.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from src.data.io.base import MatrixFormatError, check_unique

ORIENTATIONS = ("auto", "features_in_rows", "samples_in_rows")

# Non-value columns of the GEUVADIS and GTEx (GCT text) tables, dropped when present.
ANNOTATION_COLUMNS = (
    "Gene_Symbol", "Chr", "Coord", "Description", "Symbol", "gene_symbol", "gene_name", "chr", "start", "end",
)

SEPARATORS = {".csv": ",", ".tsv": "\t", ".txt": "\t", ".tab": "\t"}
TAB = "\t"

# Ensembl gene ids (ENSG00000152931, ENSMUSG..., optional .version and GTEx _PAR_Y), Affymetrix probe ids.
FEATURE_ID = re.compile(r"ENS[A-Z]*G\d+(\.\d+)?(_PAR_Y)?|\d+(_[a-z])?_at|AFFX-[\w.-]+")


def looks_like_feature_ids(ids: Sequence[str]) -> bool:
    """True if more than half of ``ids`` look like Ensembl gene ids or Affymetrix probe ids."""
    matches = sum(FEATURE_ID.fullmatch(str(i)) is not None for i in ids)
    return matches > len(ids) / 2


def guess_separator(path: str | os.PathLike, fix: str = "pass sep=',' or sep='\\t'") -> str:
    """``,`` for ``.csv``, tab for ``.tsv``, ``.txt`` and ``.tab`` (``.gz`` is looked through); ``fix``
    ends the error (how the caller sets the separator)."""
    suffixes = Path(path).suffixes
    if suffixes and suffixes[-1].lower() == ".gz":
        suffixes = suffixes[:-1]
    suffix = suffixes[-1].lower() if suffixes else ""
    if suffix not in SEPARATORS:
        raise MatrixFormatError(
            f"{path}: cannot tell the column separator from the suffix {suffix or '(none)'!r}; "
            f"expected one of {', '.join(SEPARATORS)} (optionally .gz), or {fix}"
        )
    return SEPARATORS[suffix]


class TableReader:
    """A CSV/TSV expression table as a :class:`~src.data.io.base.MatrixReader` (held in memory).

    ``orientation`` is ``auto``, ``features_in_rows`` or ``samples_in_rows``. ``annotation_columns``
    names non-value columns to drop (default: those of :data:`ANNOTATION_COLUMNS` in the header).
    ``sep`` overrides the separator guessed from the suffix (``\\t``, as typed on a command line, is a tab).
    ``options_key`` is the config key holding these options (e.g. ``reader_options``), if they come from
    a config: errors then suggest command-line overrides (``+reader_options.orientation=...``).
    """

    def __init__(
        self,
        path: str | os.PathLike,
        orientation: str = "auto",
        annotation_columns: Sequence[str] | None = None,
        sep: str | None = None,
        options_key: str | None = None,
    ):
        self.path = Path(path)
        self.options_key = options_key
        if orientation not in ORIENTATIONS:
            raise MatrixFormatError(f"{self.path}: unknown orientation {orientation!r}; expected one of {ORIENTATIONS}"
                                    f", e.g. {self._setting('orientation', 'features_in_rows', given=True)}")
        if sep == "\\t":
            sep = "\t"
        self._annotation_columns = annotation_columns
        if not self.path.exists():
            raise FileNotFoundError(f"{self.path}: no such file (expected a CSV or TSV expression table)")
        fix = f"pass {self._setting('sep', ',')} or {self._setting('sep', TAB)}"
        header, row_ids, body = self._read(sep or guess_separator(self.path, fix))
        value_columns = self._value_columns(header, annotation_columns)
        column_ids = np.array([header[i] for i in value_columns], dtype=object)
        if orientation == "auto":
            orientation = self._detect_orientation(row_ids, column_ids)
        self.orientation = orientation
        values = self._numeric(body, value_columns, header, row_ids)
        if orientation == "features_in_rows":
            self.sample_ids, self.feature_ids, self.values = column_ids, row_ids, np.ascontiguousarray(values.T)
        else:
            self.sample_ids, self.feature_ids, self.values = row_ids, column_ids, values
        check_unique(self.sample_ids, "sample", self.path)
        check_unique(self.feature_ids, "feature", self.path)

    def _setting(self, name: str, value, given: bool = False) -> str:
        """How to set reader option ``name`` to ``value``, as the fix an error ends with: the keyword argument
        (``orientation='features_in_rows'``), or with ``options_key`` an override to paste on the command
        line (``+reader_options.orientation=features_in_rows``; ``+`` adds an option not ``given``, quotes
        keep the shell away from brackets and separators)."""
        if self.options_key is None:
            return f"{name}={value!r}"
        override = f"{'' if given else '+'}{self.options_key}.{name}={_hydra_value(value)}"
        return f'"{override}"' if re.search(r"[\s'\[\]\\(){}*?$]", override) else override

    def blocks(self, columns: np.ndarray | None = None, block_size: int = 4096) -> Iterator[tuple[slice, np.ndarray]]:
        """Yield ``(sample_slice, float32 values)`` blocks, keeping only ``columns`` (positions) if given."""
        n_samples = len(self.sample_ids)
        for start in range(0, n_samples, block_size):
            rows = slice(start, min(start + block_size, n_samples))
            block = self.values[rows]
            yield rows, (block if columns is None else block[:, columns])

    def _read(self, sep: str) -> tuple[list[str], np.ndarray, pd.DataFrame]:
        """Header names (exact, duplicates kept), first-column ids and the body (columns by position)."""
        try:
            header = pd.read_csv(self.path, sep=sep, header=None, nrows=1, dtype=str, keep_default_na=False)
        except pd.errors.EmptyDataError:
            raise MatrixFormatError(
                f"{self.path}: the file is empty; expected a header row, then rows of ids and values"
            ) from None
        header = header.iloc[0].tolist()
        if len(header) < 2:
            other = "," if sep != "," else "\t"
            raise MatrixFormatError(
                f"{self.path}: the header has {len(header)} column(s) with separator {sep!r}; expected an id "
                f"column followed by value columns (if the separator is different, pass e.g. {self._setting('sep', other)})"
            )
        try:
            body = pd.read_csv(self.path, sep=sep, header=None, skiprows=1, dtype={0: str}, low_memory=False)
        except pd.errors.EmptyDataError:
            raise MatrixFormatError(
                f"{self.path}: the file has a header row but no data rows; expected rows of ids and values"
            ) from None
        except pd.errors.ParserError as err:
            raise MatrixFormatError(
                f"{self.path}: not a well-formed table ({err}); expected {len(header)} columns per row"
            ) from err
        if body.shape[1] != len(header):
            raise MatrixFormatError(
                f"{self.path}: the header has {len(header)} columns but the data rows have {body.shape[1]}; "
                "expected the same number (the first header cell names the id column)"
            )
        missing = np.flatnonzero(body[0].isna().to_numpy())
        if len(missing):
            raise MatrixFormatError(
                f"{self.path}: data line {missing[0] + 2} has an empty id; "
                "expected an id in the first column of every row"
            )
        return header, body[0].to_numpy(dtype=object), body

    def _value_columns(self, header: list[str], annotation_columns: Sequence[str] | None) -> list[int]:
        """Positions of the value columns: all but the id column and the annotation columns."""
        if annotation_columns is None:
            drop = set(ANNOTATION_COLUMNS)
        else:
            drop = set(annotation_columns)
            absent = sorted(drop - set(header[1:]))
            if absent:
                raise MatrixFormatError(
                    f"{self.path}: annotation column(s) {', '.join(absent)} are not in the header; "
                    f"expected names among {', '.join(header[1:6])}{', ...' if len(header) > 6 else ''}"
                )
        positions = [i for i, name in enumerate(header) if i > 0 and name not in drop]
        if not positions:
            raise MatrixFormatError(
                f"{self.path}: no value columns left after the id column and annotation columns "
                f"{', '.join(header[1:])}; expected at least one column of numbers"
            )
        return positions

    def _detect_orientation(self, row_ids: np.ndarray, column_ids: np.ndarray) -> str:
        """``features_in_rows`` if the first column holds gene/probe ids, ``samples_in_rows`` if the header does."""
        if looks_like_feature_ids(row_ids):
            return "features_in_rows"
        if looks_like_feature_ids(column_ids):
            return "samples_in_rows"
        raise MatrixFormatError(
            f"{self.path}: cannot tell whether rows are features or samples: neither the first column "
            f"(e.g. {', '.join(row_ids[:3])}) nor the header (e.g. {', '.join(column_ids[:3])}) looks like gene "
            f"or probe ids (Ensembl ENSG..., Affymetrix ..._at); pass {self._setting('orientation', 'features_in_rows')} "
            f"or {self._setting('orientation', 'samples_in_rows')}"
        )

    def _numeric(self, body: pd.DataFrame, positions: list[int], header: list[str], row_ids: np.ndarray) -> np.ndarray:
        """The value columns as float32 (file rows x value columns); a non-numeric cell is named."""
        values = body.loc[:, positions]
        for pos in positions:
            if values[pos].dtype.kind in "iuf":
                continue
            converted = pd.to_numeric(values[pos].astype("string"), errors="coerce")
            bad = np.flatnonzero((converted.isna() & values[pos].notna()).to_numpy())
            if len(bad):
                given = self._annotation_columns is not None
                dropped = list(self._annotation_columns) if given else [c for c in header[1:] if c in ANNOTATION_COLUMNS]
                raise MatrixFormatError(
                    f"{self.path}: column {header[pos]!r} has non-numeric value {values[pos].iloc[bad[0]]!r} "
                    f"(row {row_ids[bad[0]]!r}); expected numbers only. If {header[pos]!r} is an annotation "
                    f"column, pass {self._setting('annotation_columns', [*dropped, header[pos]], given)}"
                )
            values[pos] = converted.to_numpy(dtype=np.float64, na_value=np.nan)
        return values.to_numpy(dtype=np.float32)


def _hydra_value(value) -> str:
    """``value`` in Hydra's override syntax: plain words as they are, other strings quoted, lists in brackets."""
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(map(_hydra_value, value)) + "]"
    text = str(value)
    if re.fullmatch(r"[A-Za-z_][\w.-]*", text):
        return text
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'").replace("\t", "\\t") + "'"
