"""Per-sample annotations from an experiment-design file, joined to a matrix's sample ids.

An Expression Atlas design file (``E-GEUV-1-experiment-design.tsv``) has one row per sequencing run::

    Run        Sample Characteristic[ancestry category]  Sample Characteristic Ontology Term[...]  ...  Sample Characteristic[individual]  ...
    ERR188021  Tuscan                                                                                NA20508

:func:`read_sample_annotations` finds the column holding the matrix's sample ids (runs, 1000 Genomes
individuals, cell lines: whichever matches most), joins on it and keeps the informative columns under
short names (``Sample Characteristic[ancestry category]`` -> ``ancestry_category``).
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from src.common.errors import InputError
from src.data.io.table import open_text, scan_text, sniff_separator

log = logging.getLogger(__name__)

EXPECTED = ("expected a design file (TSV or CSV, optionally gzipped) with one row per sample or run and a column "
            "of the matrix's sample ids (e.g. Run, or Sample Characteristic[individual])")
ONTOLOGY = re.compile(r"ontology term", re.IGNORECASE)
# Names the annotation writers reserve (GCTX ids, anndata's index).
RESERVED = ("id", "_index")


def read_sample_annotations(
    path: str | os.PathLike,
    sample_ids: Sequence[str],
    key: str | None = None,
    key_hint: str | None = None,
) -> pd.DataFrame:
    """The design file's informative columns for ``sample_ids``: a DataFrame indexed by ``sample_ids`` (in
    their order), one str column per kept annotation, ``""`` for samples the file does not annotate.

    * The file: TSV/CSV (separator sniffed), plain or gzipped (magic bytes), leading ``#`` lines skipped.
    * The join column: ``key_hint`` (a column's full or short name, e.g. ``Run`` or ``individual``) if given,
      else the column whose values match the most sample ids (ties: the leftmost). Several rows for one
      sample (several runs): the first is kept, and a log line says how many samples had several.
    * Kept columns: not ``... Ontology Term[...]``, not empty or constant over the file, not a copy of the
      join column or of a column kept before; named by the text in brackets (``Factor Value[sex]`` -> ``sex``)
      or the whole name, lower case, words joined by ``_``; a repeated name gets a ``factor_`` prefix
      (``Factor Value[...]``) or a number.
    * Samples absent from the file keep empty values and are counted in a warning; none present is an error.

    ``key`` is the config key naming the design file (errors then say ``key=path``).
    """
    path = Path(path)
    where = f"{key}={path}" if key else str(path)
    sample_ids = [str(s) for s in sample_ids]
    design = _read(path, where)
    join = _join_column(design, sample_ids, key_hint, where)
    wanted = set(sample_ids)
    rows = design[design[join].isin(wanted)]
    several = int((rows[join].value_counts() > 1).sum())
    if several:
        log.info("%s: %d of %d samples have several rows (runs) in column %r; kept the first row of each",
                 path.name, several, rows[join].nunique(), join)
    rows = rows.drop_duplicates(subset=join, keep="first").set_index(join)
    columns = _informative(design, join)
    out = rows.loc[:, list(columns)].rename(columns=columns).reindex(sample_ids).fillna("")
    out.index.name = None
    missing = [s for s in dict.fromkeys(sample_ids) if s not in rows.index]
    if missing:
        log.warning("%s: %d of %d samples have no row in the design file (column %r), e.g. %s; their annotations "
                    "are left empty", where, len(missing), len(set(sample_ids)), join, ", ".join(missing[:3]))
    log.info("%s: %d annotation columns joined on %r: %s", path.name, len(columns), join, ", ".join(columns.values()))
    return out


def _read(path: Path, where: str) -> pd.DataFrame:
    """The design file as strings (empty cells ``""``), stripped; errors for missing, empty or malformed files."""
    if not path.exists():
        raise FileNotFoundError(f"{where}: no such file; {EXPECTED}")
    try:
        start = scan_text(path)
    except ValueError as err:
        raise InputError(f"{where}: cannot read the file ({err}); {EXPECTED}") from err
    if start.header is None or start.data is None:
        raise InputError(f"{where}: the file has no data rows; {EXPECTED}")
    try:
        sep = sniff_separator(path, start, "give a .tsv or .csv file")
        with open_text(path, start.gzipped, start.encoding) as f:
            design = pd.read_csv(f, sep=sep, skiprows=start.header_start, dtype=str, keep_default_na=False,
                                 na_filter=False)
    except (ValueError, pd.errors.ParserError) as err:
        raise InputError(f"{where}: not a well-formed table ({err}); {EXPECTED}") from err
    design.columns = [str(c).strip().lstrip("#").strip() if i == 0 else str(c).strip() for i, c in enumerate(design.columns)]
    return design.apply(lambda column: column.str.strip())


def short_name(column: str) -> str:
    """``Sample Characteristic[ancestry category]`` -> ``ancestry_category``; ``Run`` -> ``run``."""
    inside = re.search(r"\[(.*)\]", column)
    text = inside.group(1) if inside else column
    return re.sub(r"[^0-9a-z]+", "_", text.lower()).strip("_") or "annotation"


def _join_column(design: pd.DataFrame, sample_ids: list[str], key_hint: str | None, where: str) -> str:
    """The design column to join ``sample_ids`` on: ``key_hint`` (full or short name) or the best match."""
    wanted = set(sample_ids)
    matches = {c: int(design[c].drop_duplicates().isin(wanted).sum()) for c in design.columns}
    if key_hint is not None:
        named = [c for c in design.columns if c == key_hint or short_name(c) == short_name(key_hint)]
        if not named:
            raise InputError(f"{where}: no column {key_hint!r}; expected one of: {', '.join(design.columns)}")
        candidates = named[:1]
    else:
        candidates = list(design.columns)
    best = max(candidates, key=lambda c: matches[c])  # the leftmost on a tie
    if matches[best] == 0:
        if key_hint is None:  # show the column that looks most like ids: the most distinct values
            best = max(candidates, key=lambda c: design[c].nunique())
        tried = f"column {best!r}" if key_hint is not None else f"all {len(candidates)} columns"
        raise InputError(
            f"{where}: none of the {len(wanted):,} sample ids (e.g. {', '.join(sample_ids[:3])}) is in {tried} "
            f"(e.g. column {best!r}: {', '.join(design[best].head(3))}); {EXPECTED}. Check that the design file "
            f"belongs to this expression file (same experiment), or drop the setting"
        )
    return best


def _informative(design: pd.DataFrame, join: str) -> dict[str, str]:
    """Design column -> short name, for the columns worth keeping (see :func:`read_sample_annotations`)."""
    names: dict[str, str] = {}
    kept = [design[join].tolist()]
    for column in design.columns:
        values = design[column]
        if column == join or ONTOLOGY.search(column) or values.nunique() <= 1:
            continue
        as_list = values.tolist()
        if any(as_list == other for other in kept):  # e.g. Factor Value[individual] = Sample Characteristic[individual]
            continue
        kept.append(as_list)
        name = short_name(column)
        if name in names.values() or name in RESERVED:
            name = f"factor_{name}" if column.lower().startswith("factor value") else f"design_{name}"
        base, n = name, 2
        while name in names.values():
            name, n = f"{base}_{n}", n + 1
        names[column] = name
    return names
