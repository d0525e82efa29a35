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
``ENSG00000152931.6``, Affymetrix ``202954_at``, ``1007_s_at``, ``AFFX-...``) or are among the
``known_features`` the caller gives (gene symbols, case-insensitive): the side with the larger share wins.

Files are read as published, e.g. an Expression Atlas table (E-GEUV-1)::

    # Expression Atlas
    # Query: ...
    Gene ID          Gene Name  British, HG00096  British, HG00097  ...
    ENSG00000000003  TSPAN6     0.1                                 ...

* Leading lines starting with ``#`` are comments (counted in ``comment_lines``); the separator (tab,
  comma, semicolon) is sniffed from the header and first data line, the suffix only breaks ties; gzip is
  recognised by its magic bytes, whatever the name.
* ``Gene ID`` is the id column and ``Gene Name`` an annotation column; the gene symbols of the first
  symbol column (``Gene Name``, ``Gene_Symbol``, ...) are kept as ``feature_symbols``.
* Blank cells (``blanks``): Expression Atlas leaves a value below its reporting cutoff blank, so in a
  table recognised as Atlas (a ``# Expression Atlas`` comment, or a header starting ``Gene ID``,
  ``Gene Name``) blanks read as 0 (counted in ``blank_cells``); elsewhere a blank is refused, naming the
  fix (``blanks=zero``, or ``blanks=missing`` to keep NaN). Explicit ``NA``/``NaN`` cells stay NaN.
* Sample headers ``<a>, <b>`` (Atlas: ``British, HG00096``, ``HPSI0114i-eipl_1, 35 day``) are split
  into the sample id and a ``header_annotation`` (see :func:`split_header_annotations`).

The table is small (hundreds of samples), so it is read into memory once and
:meth:`TableReader.blocks` slices it.
"""

from __future__ import annotations

import csv
import gzip
import logging
import os
import re
import warnings
import zlib
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from src.data.io.base import MatrixFormatError, check_unique
from src.data.io.text import text_encoding

log = logging.getLogger(__name__)

ORIENTATIONS = ("auto", "features_in_rows", "samples_in_rows")
BLANKS = ("auto", "zero", "missing")

# Non-value columns of the GEUVADIS, GTEx (GCT text) and Expression Atlas tables, dropped when present.
ANNOTATION_COLUMNS = (
    "Gene_Symbol", "Chr", "Coord", "Description", "Symbol", "gene_symbol", "gene_name", "chr", "start", "end",
    "Gene Name",
)
# Annotation columns holding gene symbols, in order of preference: the first present gives feature_symbols.
SYMBOL_COLUMNS = ("Gene Name", "Gene_Symbol", "Symbol", "gene_symbol", "gene_name")
# The header of an Expression Atlas table starts with these two columns.
ATLAS_HEADER = ("Gene ID", "Gene Name")
# The name of the per-sample annotation split off ``<a>, <b>`` column headers.
HEADER_ANNOTATION = "header_annotation"
# Cells that mean "missing" when written out (pandas' defaults but the blank): NaN, never a blank cell.
NA_TOKENS = frozenset({
    "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN", "<NA>", "N/A", "NA",
    "NULL", "NaN", "None", "n/a", "nan", "null",
})

SEPARATORS = {".csv": ",", ".tsv": "\t", ".txt": "\t", ".tab": "\t"}
SNIFFED = ("\t", ",", ";")
TAB = "\t"

# Ensembl gene ids (ENSG00000152931, ENSMUSG..., optional .version and GTEx _PAR_Y), Affymetrix probe ids.
FEATURE_ID = re.compile(r"ENS[A-Z]*G\d+(\.\d+)?(_PAR_Y)?|\d+(_[a-z])?_at|AFFX-[\w.-]+")


def feature_share(ids: Sequence[str], known: Collection[str] | None = None) -> float:
    """The fraction of ``ids`` that look like Ensembl gene ids or Affymetrix probe ids, or (upper-cased) are
    in ``known`` (upper-cased ids or gene symbols; see :func:`known_upper`)."""
    if len(ids) == 0:
        return 0.0
    known = known or ()
    matches = sum(FEATURE_ID.fullmatch(text := str(i)) is not None or text.upper() in known for i in ids)
    return matches / len(ids)


def known_upper(known_features: Collection[str] | None) -> frozenset[str]:
    """``known_features`` upper-cased (symbols are matched case-insensitively), empty for None."""
    return frozenset(str(k).upper() for k in known_features) if known_features else frozenset()


def looks_like_feature_ids(ids: Sequence[str], known_features: Collection[str] | None = None) -> bool:
    """True if more than half of ``ids`` look like Ensembl gene ids or Affymetrix probe ids, or are among
    ``known_features`` (ids or gene symbols, case-insensitive)."""
    return feature_share(ids, known_upper(known_features)) > 0.5


def guess_separator(path: str | os.PathLike, fix: str = "pass sep=',' or sep='\\t'") -> str:
    """``,`` for ``.csv``, tab for ``.tsv``, ``.txt`` and ``.tab`` (``.gz`` is looked through); ``fix``
    ends the error (how the caller sets the separator)."""
    suffix = _suffix(path)
    if suffix not in SEPARATORS:
        raise MatrixFormatError(
            f"{path}: cannot tell the column separator from the suffix {suffix or '(none)'!r}; "
            f"expected one of {', '.join(SEPARATORS)} (optionally .gz), or {fix}"
        )
    return SEPARATORS[suffix]


def _suffix(path: str | os.PathLike) -> str:
    """The last suffix of ``path`` in lower case, ``.gz`` looked through (``''`` if none)."""
    suffixes = Path(path).suffixes
    if suffixes and suffixes[-1].lower() == ".gz":
        suffixes = suffixes[:-1]
    return suffixes[-1].lower() if suffixes else ""


@dataclass
class TextStart:
    """The first lines of a text table: what decides how the rest is read."""

    gzipped: bool  # gzip magic bytes at the start (whatever the name)
    encoding: str = "utf-8-sig"  # from the first bytes (src.data.io.text)
    comments: list[str] = field(default_factory=list)  # leading comment lines (``#...``), newline stripped
    header: str | None = None  # the header line (None: no line but comments and blanks)
    data: str | None = None  # the first data line (None: none)
    header_start: int = 0  # physical lines before the header line
    body_start: int = 0  # physical lines before the first data line (what pandas skips)


def open_text(path: str | os.PathLike, gzipped: bool | None = None, encoding: str | None = None):
    """``path`` opened as text in ``encoding`` (None: as its first bytes say, :mod:`src.data.io.text`;
    undecodable bytes replaced), gunzipped when it starts with the gzip magic bytes (``gzipped=None``: look)."""
    if gzipped is None or encoding is None:
        encoding, gzipped = text_encoding(path)
    if gzipped:
        return gzip.open(path, "rt", encoding=encoding, errors="replace", newline="")
    return open(path, encoding=encoding, errors="replace", newline="")


def scan_text(path: str | os.PathLike) -> TextStart:
    """The comment lines, header line and first data line of a text table (a ``#`` line just before the
    first line is the header when that first line is a row of numbers with as many fields as it)."""
    encoding, gzipped = text_encoding(path)
    start = TextStart(gzipped=gzipped, encoding=encoding)
    lines_before = last_comment_at = 0
    try:
        with open_text(path, start.gzipped, start.encoding) as f:
            for line in f:
                line = line.rstrip("\r\n")
                if start.header is None:
                    if line.startswith("#") or not line.strip():
                        if line.startswith("#"):
                            start.comments.append(line)
                            last_comment_at = lines_before
                        lines_before += 1
                        continue
                    start.header, start.header_start = line, lines_before
                    lines_before += 1
                    continue
                if line.strip():
                    start.data = line
                    break
                lines_before += 1
    except (OSError, EOFError) as err:
        raise MatrixFormatError(f"{path}: cannot read the file ({err}); expected a text table, plain or gzipped") from err
    start.body_start = lines_before
    if start.header is not None and start.comments and _numeric_row(start.header):
        # "#gene<TAB>S1<TAB>S2" then data: the last comment line is the header.
        candidate = start.comments[-1].lstrip("#").strip()
        sep = _best_separator(candidate, start.header, "")
        if sep and len(_fields(candidate, sep)) == len(_fields(start.header, sep)):
            start.comments.pop()
            start.data, start.header = start.header, candidate
            start.body_start, start.header_start = start.header_start, last_comment_at
    return start


def _fields(line: str, sep: str) -> list[str]:
    """``line`` split at ``sep`` (double quotes respected, as pandas reads them)."""
    return next(csv.reader([line], delimiter=sep), [])


def _numeric_row(line: str) -> bool:
    """True if ``line`` looks like a data row: an id, then (mostly) numbers, under some separator."""
    sep = _best_separator(line, None, "")
    if sep is None:
        return False
    cells = [c.strip() for c in _fields(line, sep)[1:] if c.strip()]  # blank cells say nothing
    numbers = sum(bool(re.fullmatch(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?", c)) for c in cells)
    return numbers > 0 and numbers > len(cells) / 2


def _best_separator(header: str, data: str | None, suffix: str) -> str | None:
    """Of tab, comma and semicolon: the one giving ``header`` the most fields (at least 2) among those giving
    ``data`` as many; ``suffix`` (``.csv``, ...) breaks ties. None when none gives 2 fields."""
    preferred = SEPARATORS.get(suffix)
    scores = {}
    for sep in SNIFFED:
        n = len(_fields(header, sep))
        if n >= 2:
            consistent = data is None or len(_fields(data, sep)) == n
            scores[sep] = (consistent, n, sep == preferred)
    return max(scores, key=scores.get) if scores else None


def sniff_separator(path: str | os.PathLike, start: TextStart, fix: str) -> str:
    """The column separator of a table from its header and first data line (:func:`_best_separator`); the
    suffix's separator when the header has a single column; ``fix`` ends the error (how to set it)."""
    suffix = _suffix(path)
    sep = _best_separator(start.header, start.data, suffix) if start.header is not None else None
    if sep is not None:
        return sep
    if suffix in SEPARATORS or start.header is None:
        return SEPARATORS.get(suffix, TAB)
    raise MatrixFormatError(
        f"{path}: cannot tell the column separator: the header has no tab, comma or semicolon and the suffix "
        f"{suffix or '(none)'!r} is none of {', '.join(SEPARATORS)}; expected a tab-, comma- or semicolon-separated "
        f"table, or {fix}"
    )


def split_header_annotations(headers: Sequence[str]) -> tuple[np.ndarray, np.ndarray] | None:
    """``(sample ids, annotations)`` from column headers of the form ``<a>, <b>``, or None to keep them whole.

    Expression Atlas heads a sample's column with its id and its factor value(s), in either order
    (``British, HG00096`` in E-GEUV-1, ``HPSI0114i-eipl_1, 35 day`` elsewhere). Every header must contain
    ``", "``; the id is the first or the last part (the rest, joined by ``", "``, is the annotation). Rule:
    a part whose values are not unique across the columns cannot be the id; if both are unique, the id is
    the part whose other part repeats across columns (annotations are shared), then the part that looks
    more like an id (no whitespace, a digit), then the first part.
    """
    parts = [str(h).split(", ") for h in headers]
    if not parts or any(len(p) < 2 for p in parts):
        return None
    options = [([p[0] for p in parts], [", ".join(p[1:]) for p in parts]),  # id first
               ([p[-1] for p in parts], [", ".join(p[:-1]) for p in parts])]  # id last
    valid = [(ids, notes) for ids, notes in options
             if all(i.strip() for i in ids) and len(set(ids)) == len(ids)]
    if not valid:
        return None

    def score(option):
        ids, notes = option
        idlike = sum(bool(re.search(r"\d", i)) and not re.search(r"\s", i) for i in ids)
        return len(set(notes)) < len(notes), idlike

    ids, notes = max(valid, key=score)  # max keeps the first (id first) on a tie
    return np.array(ids, dtype=object), np.array(notes, dtype=str)


class TableReader:
    """A CSV/TSV expression table as a :class:`~src.data.io.base.MatrixReader` (held in memory).

    ``orientation`` is ``auto``, ``features_in_rows`` or ``samples_in_rows``. ``annotation_columns``
    names non-value columns to drop (default: those of :data:`ANNOTATION_COLUMNS` in the header).
    ``sep`` overrides the separator sniffed from the content (``\\t``, as typed on a command line, is a tab).
    ``blanks`` says what a blank cell is: ``zero``, ``missing`` (NaN) or ``auto`` (0 in an Expression Atlas
    table, else refused with the fix). ``known_features`` (ids or gene symbols the caller knows, e.g. a gene
    map's) help ``orientation=auto`` tell which side holds the features.
    ``options_key`` is the config key holding these options (e.g. ``reader_options``), if they come from
    a config: errors then suggest command-line overrides (``++reader_options.orientation=...``).

    After reading: ``sample_ids``, ``feature_ids``, ``values`` (float32, samples x features),
    ``orientation`` (as resolved), ``feature_symbols`` (str per feature, or None), ``comment_lines``,
    ``expression_atlas`` (recognised as an Atlas table), ``blanks`` (as resolved: ``zero`` or ``missing``),
    ``blank_cells`` (blanks read as 0) and :meth:`sample_annotations`.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        orientation: str = "auto",
        annotation_columns: Sequence[str] | None = None,
        sep: str | None = None,
        options_key: str | None = None,
        blanks: str = "auto",
        known_features: Collection[str] | None = None,
        decimal: str = "auto",
        thousands: str | None = "auto",
    ):
        self.path = Path(path)
        self.options_key = options_key
        if orientation not in ORIENTATIONS:
            raise MatrixFormatError(f"{self.path}: unknown orientation {orientation!r}; expected one of {ORIENTATIONS}"
                                    f", e.g. {self._setting('orientation', 'features_in_rows')}")
        if blanks not in BLANKS:
            raise MatrixFormatError(f"{self.path}: unknown blanks={blanks!r}; expected one of {BLANKS}, "
                                    f"e.g. {self._setting('blanks', 'zero')}")
        if sep == "\\t":
            sep = "\t"
        if decimal not in ("auto", ".", ","):
            raise MatrixFormatError(f"{self.path}: decimal={decimal!r}; expected auto, '.' or ',', "
                                    f"e.g. {self._setting('decimal', ',')}")
        if thousands not in ("auto", None, ",", ".", " "):
            raise MatrixFormatError(f"{self.path}: thousands={thousands!r}; expected auto, null, ',', '.' or ' ', "
                                    f"e.g. {self._setting('thousands', ',')}")
        self.decimal, self.thousands = decimal, thousands
        self._annotation_columns = annotation_columns
        if not self.path.exists():
            raise FileNotFoundError(f"{self.path}: no such file (expected a CSV or TSV expression table)")
        start = scan_text(self.path)
        self.comment_lines = len(start.comments)
        fix = f"pass {self._setting('sep', ',')} or {self._setting('sep', TAB)}"
        self.sep = sep or sniff_separator(self.path, start, fix)
        header, row_ids, body = self._read(self.sep, start)
        self.expression_atlas = (any(c.lstrip("#").strip().lower().startswith("expression atlas") for c in start.comments)
                                 or tuple(h.strip() for h in header[:2]) == ATLAS_HEADER)
        value_columns = self._value_columns(header, annotation_columns)
        column_ids = np.array([header[i] for i in value_columns], dtype=object)
        if orientation == "auto":
            atlas_layout = header[0].strip() == ATLAS_HEADER[0]  # Atlas: one row per gene
            orientation = ("features_in_rows" if atlas_layout
                           else self._detect_orientation(row_ids, column_ids, known_features))
        self.orientation = orientation
        # Filled in the order that makes the samples x features matrix C-contiguous without a copy.
        order = "F" if orientation == "features_in_rows" else "C"
        values, na_cells = self._numeric(body, value_columns, header, row_ids, order)
        symbols = self._symbols(body, header, value_columns) if orientation == "features_in_rows" else None
        del body
        self.blanks = ("zero" if self.expression_atlas else "missing") if blanks == "auto" else blanks
        self.blank_cells = 0
        if self.blanks == "zero" or blanks == "auto":
            self._blanks_to_zero(values, na_cells, row_ids, column_ids, start.body_start, refuse=self.blanks == "missing")
        if orientation == "features_in_rows":
            self.sample_ids, self.feature_ids, self.values = column_ids, row_ids, np.ascontiguousarray(values.T)
        else:
            self.sample_ids, self.feature_ids, self.values = row_ids, column_ids, values
        self.feature_symbols = symbols
        self._sample_annotations: dict[str, np.ndarray] = {}
        split = split_header_annotations(self.sample_ids)
        if split is not None:
            self.sample_ids, self._sample_annotations[HEADER_ANNOTATION] = split
        check_unique(self.sample_ids, "sample", self.path)
        check_unique(self.feature_ids, "feature", self.path)

    def _setting(self, name: str, value) -> str:
        """How to set reader option ``name`` to ``value``, as the fix an error ends with: the keyword argument
        (``orientation='features_in_rows'``), or with ``options_key`` an override to paste on the command
        line (``++reader_options.orientation=features_in_rows``: ``++`` adds the option or replaces the one given,
        so the line works pasted onto the same command either way; quotes keep the shell away from brackets and
        separators)."""
        if self.options_key is None:
            return f"{name}={value!r}"
        override = f"++{self.options_key}.{name}={_hydra_value(value)}"
        return f'"{override}"' if re.search(r"[\s'\[\]\\(){}*?$]", override) else override

    def sample_annotations(self) -> dict[str, np.ndarray]:
        """Per-sample annotations: ``header_annotation`` (the part of ``<a>, <b>`` column headers that is not
        the sample id; in Expression Atlas tables the experiment's factor values, e.g. the ancestry
        ``British`` in E-GEUV-1), one str per sample; empty when the headers are plain ids."""
        return dict(self._sample_annotations)

    def blocks(self, columns: np.ndarray | None = None, block_size: int = 4096) -> Iterator[tuple[slice, np.ndarray]]:
        """Yield ``(sample_slice, float32 values)`` blocks, keeping only ``columns`` (positions) if given."""
        n_samples = len(self.sample_ids)
        for start in range(0, n_samples, block_size):
            rows = slice(start, min(start + block_size, n_samples))
            block = self.values[rows]
            yield rows, (block if columns is None else block[:, columns])

    def _read(self, sep: str, start: TextStart) -> tuple[list[str], np.ndarray, pd.DataFrame]:
        """Header names (exact, duplicates kept), first-column ids and the body (columns by position; blank
        cells NaN, ``NA``-like cells kept as text)."""
        if start.header is None:
            comments = f" (only {len(start.comments)} comment lines)" if start.comments else ""
            raise MatrixFormatError(
                f"{self.path}: the file is empty{comments}; expected a header row, then rows of ids and values"
            )
        header = _fields(start.header, sep)
        if len(header) < 2:
            other = "," if sep != "," else "\t"
            raise MatrixFormatError(
                f"{self.path}: the header has {len(header)} column(s) with separator {sep!r}; expected an id "
                f"column followed by value columns (if the separator is different, pass e.g. {self._setting('sep', other)})"
            )
        if start.data is None:
            raise MatrixFormatError(
                f"{self.path}: the file has a header row but no data rows; expected rows of ids and values"
            )
        try:
            with warnings.catch_warnings():  # a column of numbers and NA-like text is converted by _numeric
                warnings.simplefilter("ignore", pd.errors.DtypeWarning)
                # Parsed in chunks (low_memory): faster and half the peak memory of one pass on large tables.
                body = pd.read_csv(self.path, sep=sep, header=None, skiprows=start.body_start, dtype={0: str},
                                   keep_default_na=False, na_values=[""], low_memory=True,
                                   compression="gzip" if start.gzipped else None, encoding=start.encoding,
                                   encoding_errors="replace")
        except (EOFError, zlib.error, gzip.BadGzipFile) as err:
            raise MatrixFormatError(f"{self.path}: a truncated or damaged gzip file ({err}); download or compress it "
                                    "again") from None
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
                f"{self.path}: data line {missing[0] + start.body_start + 1} has an empty id; "
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

    def _symbols(self, body: pd.DataFrame, header: list[str], value_columns: list[int]) -> np.ndarray | None:
        """The gene symbols of the first dropped symbol column (:data:`SYMBOL_COLUMNS`), one str per row."""
        dropped = {name: i for i, name in enumerate(header) if i > 0 and i not in set(value_columns)}
        for name in SYMBOL_COLUMNS:
            if name in dropped:
                column = body[dropped[name]]
                return np.array(["" if v is None or v != v else str(v) for v in column], dtype=object)
        return None

    def _detect_orientation(self, row_ids: np.ndarray, column_ids: np.ndarray,
                            known_features: Collection[str] | None = None) -> str:
        """``features_in_rows`` if the first column holds gene/probe ids (or known features), ``samples_in_rows``
        if the header does; when both do, the side with the larger share of them (rows on a tie)."""
        known = known_upper(known_features)
        rows, columns = feature_share(row_ids, known), feature_share(column_ids, known)
        if rows > 0.5 and rows >= columns:
            return "features_in_rows"
        if columns > 0.5:
            return "samples_in_rows"
        symbols = " or the known gene symbols" if known else ""
        raise MatrixFormatError(
            f"{self.path}: cannot tell whether rows are features or samples: neither the first column "
            f"(e.g. {', '.join(map(str, row_ids[:3]))}) nor the header (e.g. {', '.join(map(str, column_ids[:3]))}) "
            f"looks like gene or probe ids (Ensembl ENSG..., Affymetrix ..._at){symbols}; pass "
            f"{self._setting('orientation', 'features_in_rows')} or {self._setting('orientation', 'samples_in_rows')}"
        )

    def _numeric(self, body: pd.DataFrame, positions: list[int], header: list[str], row_ids: np.ndarray,
                 order: str = "C") -> tuple[np.ndarray, list[tuple[int, np.ndarray]]]:
        """The value columns as float32 (file rows x value columns, in memory ``order``), and the NaN cells that
        were written out (``NA``, ``NaN``, ...) as ``(value column, rows)``, so that they are not taken for
        blanks; a non-numeric cell is named."""
        out = np.empty((len(body), len(positions)), dtype=np.float32, order=order)
        written_na = []
        for j, pos in enumerate(positions):
            column = body[pos]
            if column.dtype.kind in "iuf":
                out[:, j] = column.to_numpy()
                continue
            converted = pd.to_numeric(column.astype("string"), errors="coerce")
            na = column.isin(NA_TOKENS).to_numpy()
            bad = np.flatnonzero((converted.isna() & column.notna()).to_numpy() & ~na)
            if len(bad):  # numbers written with a decimal comma or thousands separators?
                converted = self._locale_numbers(column, converted)
                bad = np.flatnonzero((converted.isna() & column.notna()).to_numpy() & ~na)
            if len(bad):
                dropped = list(self._annotation_columns) if self._annotation_columns is not None else [c for c in header[1:] if c in ANNOTATION_COLUMNS]
                raise MatrixFormatError(
                    f"{self.path}: column {header[pos]!r} has non-numeric value {column.iloc[bad[0]]!r} "
                    f"(row {row_ids[bad[0]]!r}); expected numbers only. If {header[pos]!r} is an annotation "
                    f"column, pass {self._setting('annotation_columns', [*dropped, header[pos]])}"
                )
            if na.any():
                written_na.append((j, np.flatnonzero(na)))
            out[:, j] = converted.to_numpy(dtype=np.float64, na_value=np.nan)
        return out, written_na

    def _locale_numbers(self, column: pd.Series, converted: pd.Series) -> pd.Series:
        """``column`` read as numbers written the way spreadsheets of other locales export them: decimal commas
        (``1,5``; the European export, semicolon-separated; ``.`` or a space then groups thousands) or thousands
        separators (``1,234.5``). Chosen by ``decimal``/``thousands`` or, on ``auto``, by the separator (a
        semicolon table has decimal commas) and by what the cells look like; logged once per table."""
        text = column.astype("string").str.strip()
        comma_decimal = self.decimal == "," or (self.decimal == "auto" and self.sep == ";" and self.thousands != ",")
        if comma_decimal:
            grouped = text.str.replace(r"[.\s](?=\d{3}(?:\D|$))", "", regex=True)
            attempt = pd.to_numeric(grouped.str.replace(",", ".", regex=False), errors="coerce")
            how = "decimal commas (e.g. 1,5; a European spreadsheet export)"
        else:
            separator = "," if self.thousands in ("auto", None) else self.thousands
            if self.thousands is None:
                return converted
            pattern = rf"^[-+]?\d{{1,3}}(?:{re.escape(separator)}\d{{3}})+(?:\.\d+)?$"
            looks = text.str.fullmatch(pattern).fillna(False)
            attempt = pd.to_numeric(text.where(~looks, text.str.replace(separator, "", regex=False)), errors="coerce")
            how = f"thousands separators (e.g. 1{separator}234.5)"
        if attempt.notna().sum() > converted.notna().sum():
            if not getattr(self, "_locale_logged", False):
                log.info("%s: numbers read with %s; pass %s to choose otherwise", self.path, how,
                         self._setting("decimal", "."))
                self._locale_logged = True
            return attempt
        return converted

    def _blanks_to_zero(self, values: np.ndarray, written_na: list[tuple[int, np.ndarray]], row_ids: np.ndarray,
                        column_ids: np.ndarray, body_start: int, refuse: bool) -> None:
        """Set the blank cells of ``values`` (file rows x value columns) to 0 and count them in ``blank_cells``;
        with ``refuse``, raise instead (naming the count, the first blank cell and the fix) if there are any."""
        blank = np.isnan(values)
        for j, rows in written_na:
            blank[rows, j] = False
        count = int(np.count_nonzero(blank))
        if not count:
            return
        if refuse:
            r, c = divmod(int(np.argmax(blank)), blank.shape[1])
            in_rows = self.orientation == "features_in_rows"
            sample, feature = (column_ids[c], row_ids[r]) if in_rows else (row_ids[r], column_ids[c])
            raise MatrixFormatError(
                f"{self.path}: {count:,} blank cell{'s' if count > 1 else ''}, first in sample {sample} feature {feature} "
                f"(line {body_start + r + 1}); "
                f"expected a number in every cell (blanks read as 0 only in Expression Atlas tables). If a blank means 0 "
                f"(below a reporting or detection cutoff), pass {self._setting('blanks', 'zero')}; to read blanks as "
                f"missing values, pass {self._setting('blanks', 'missing')}"
            )
        values[blank] = 0.0
        self.blank_cells = count
        why = "Expression Atlas: below the reporting cutoff" if self.expression_atlas else "blanks=zero"
        log.info("%s: %s blank cells read as 0 (%s)", self.path.name, f"{count:,}", why)


def _hydra_value(value) -> str:
    """``value`` in Hydra's override syntax: plain words as they are, other strings quoted, lists in brackets."""
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(map(_hydra_value, value)) + "]"
    text = str(value)
    if re.fullmatch(r"[A-Za-z_][\w.-]*", text):
        return text
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'").replace("\t", "\\t") + "'"
