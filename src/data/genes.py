"""Gene maps of the D-GEX benchmark and probe -> gene aggregation.

D-GEX's ``map_lm.txt`` (943 landmark genes) and ``map_tg.txt`` (9,520 target genes) are tab-separated
``symbol, Ensembl gene id, probe ids``; a gene measured by several comma-separated probes takes the
mean of their values.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from src.common.errors import InputError
from src.data.io.text import read_text


@dataclass(frozen=True)
class GeneMap:
    """Genes in map order, each with its symbol, Ensembl id and probes."""

    path: Path
    symbols: list[str]
    ensembl_ids: list[str]
    probes: list[list[str]]

    def __len__(self) -> int:
        return len(self.symbols)

    def subset(self, n: int) -> "GeneMap":
        """The first ``n`` genes (quick runs on part of the targets)."""
        return GeneMap(self.path, self.symbols[:n], self.ensembl_ids[:n], self.probes[:n])

    def select(self, keep: Sequence[bool], probes: set[str] | None = None) -> "GeneMap":
        """The genes where ``keep`` is True (in map order); with ``probes``, each gene keeps only the
        probes among them (the probes a file holds)."""
        kept = [i for i, k in enumerate(keep) if k]
        gene_probes = [self.probes[i] for i in kept]
        if probes is not None:
            gene_probes = [[p for p in ps if p in probes] for ps in gene_probes]
        return GeneMap(self.path, [self.symbols[i] for i in kept], [self.ensembl_ids[i] for i in kept], gene_probes)

    @property
    def known_ids(self) -> set[str]:
        """Every id a file may use for these genes: symbols, Ensembl ids and probes (e.g. to tell which side
        of a table holds the genes)."""
        return {*self.symbols, *self.ensembl_ids, *self.all_probes}

    @property
    def all_probes(self) -> list[str]:
        """Every probe of every gene, in map order, without repeats."""
        return list(dict.fromkeys(p for probes in self.probes for p in probes))


def read_gene_map(path: str | Path) -> GeneMap:
    """Read a D-GEX gene map; errors name the file, the line and what was expected."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: gene map not found (expected D-GEX's map_lm.txt / map_tg.txt format)")
    symbols, ensembl, probes, first_line = [], [], [], {}
    for number, line in enumerate(read_text(path).splitlines(), start=1):
        if not line.strip():
            continue
        fields = line.rstrip("\n").split("\t")
        gene_probes = [p.strip() for p in fields[2].split(",")] if len(fields) >= 3 else []
        if len(fields) < 3 or not all(gene_probes):
            raise InputError(
                f"{path}, line {number}: expected 'symbol<TAB>Ensembl id<TAB>probe[,probe...]', got {line[:80]!r}"
            )
        gene = strip_version(fields[1].strip())
        if gene in first_line:
            raise InputError(f"{path}, line {number}: gene {fields[1].strip()} ({fields[0].strip()}) is listed again (first on "
                             f"line {first_line[gene]}); expected each gene once: delete one of the two lines")
        first_line[gene] = number
        symbols.append(fields[0].strip())
        ensembl.append(fields[1].strip())
        probes.append(gene_probes)
    if not symbols:
        raise InputError(f"{path}: the gene map is empty")
    return GeneMap(path, symbols, ensembl, probes)


def strip_version(ensembl_id: str) -> str:
    """``ENSG00000152931.6`` -> ``ENSG00000152931`` (``ENSG00000002586.18_PAR_Y`` -> ``ENSG00000002586_PAR_Y``)."""
    return _VERSION.sub("", ensembl_id)


_VERSION = re.compile(r"\.\d+(?=$|_)")
ID_TYPES = ("auto", "probe", "ensembl", "symbol")


@dataclass(frozen=True)
class GeneColumns:
    """How to turn a file's feature columns into gene values: gather ``columns``, then average each gene's run.

    Gene ``g`` is the mean of ``values[:, columns[starts[g]:starts[g + 1]]]`` (one column for most genes).
    A gene that is not ``present`` (only with ``match_genes(..., allow_missing=True)``) has no columns
    and comes out as NaN.
    """

    columns: np.ndarray  # feature positions, gene after gene
    starts: np.ndarray  # where each gene's run begins in ``columns``
    id_type: str
    present: np.ndarray | None = None  # bool per gene; None -> every gene present

    def __post_init__(self) -> None:
        counts = self.counts
        if self.present is None:
            object.__setattr__(self, "present", counts > 0)
            if not self.present.all():
                raise ValueError("GeneColumns: a gene without columns must be marked as not present")
        else:
            present = np.asarray(self.present, dtype=bool)
            if present.shape != counts.shape or (present != (counts > 0)).any():
                raise ValueError("GeneColumns: 'present' must hold one flag per gene, True exactly for genes with columns")
            object.__setattr__(self, "present", present)

    @property
    def counts(self) -> np.ndarray:
        return np.diff(np.r_[self.starts, len(self.columns)]).astype(np.int64)

    @property
    def n_genes(self) -> int:
        return len(self.starts)

    @property
    def n_present(self) -> int:
        return int(self.present.sum())

    @property
    def complete(self) -> bool:
        """True if every gene was found."""
        return bool(self.present.all())

    def missing(self, gene_ids: Sequence[str]) -> list[str]:
        """The entries of ``gene_ids`` (one per gene, e.g. a map's symbols or Ensembl ids) of the genes not present."""
        if len(gene_ids) != self.n_genes:
            raise ValueError(f"expected {self.n_genes} gene ids (one per gene), got {len(gene_ids)}")
        return [str(g) for g, p in zip(gene_ids, self.present) if not p]

    def select(self, keep: np.ndarray) -> "GeneColumns":
        """This mapping for the genes where ``keep`` is True only (in order), e.g. the present ones."""
        keep = np.asarray(keep, dtype=bool)
        if keep.shape != (self.n_genes,):
            raise ValueError(f"expected one flag per gene ({self.n_genes}), got shape {keep.shape}")
        runs = [self.columns[a:b] for a, b, k in zip(self.starts, np.r_[self.starts[1:], len(self.columns)], keep) if k]
        counts = np.array([len(r) for r in runs], dtype=np.int64)
        columns = np.concatenate(runs).astype(np.int64) if runs else np.zeros(0, dtype=np.int64)
        starts = np.r_[0, np.cumsum(counts)[:-1]].astype(np.int64) if len(runs) else np.zeros(0, dtype=np.int64)
        return GeneColumns(columns, starts, self.id_type, self.present[keep])

    def compact(self) -> tuple[np.ndarray, "GeneColumns"]:
        """The distinct feature columns to read, and this mapping re-indexed onto a block of just those."""
        needed = np.unique(self.columns)
        return needed, GeneColumns(np.searchsorted(needed, self.columns), self.starts, self.id_type, self.present)

    def apply(self, values: np.ndarray) -> np.ndarray:
        """Gene values (samples x genes, float32) from a block of feature values (samples x features);
        NaN for genes that are not present."""
        values = np.asarray(values, dtype=np.float32)
        gathered = values[:, self.columns]
        if self.present.all():
            if len(self.columns) == self.n_genes:
                return gathered
            return (np.add.reduceat(gathered, self.starts, axis=1) / self.counts).astype(np.float32)
        out = np.full((len(values), self.n_genes), np.nan, dtype=np.float32)
        if len(self.columns):
            counts = self.counts[self.present]
            sums = np.add.reduceat(gathered, self.starts[self.present], axis=1)
            out[:, self.present] = sums / counts
        return out


_WHAT = {"probe": "probes", "ensembl": "Ensembl gene ids", "symbol": "gene symbols"}


def _wanted(gene_map: GeneMap, id_type: str) -> list[list[str]]:
    """Each gene's ids to look for: its probes, its Ensembl id without the version suffix, or its
    (HGNC) symbol in upper case."""
    if id_type == "probe":
        return gene_map.probes
    if id_type == "symbol":
        return [[s.upper()] for s in gene_map.symbols]
    return [[strip_version(e)] for e in gene_map.ensembl_ids]


def _keys(feature_ids: list[str], id_type: str) -> list[str]:
    """A file's feature ids as the keys of ``id_type`` (probes as they are, Ensembl ids without their
    version, symbols in upper case: HGNC symbols are upper case, files sometimes are not)."""
    if id_type == "probe":
        return feature_ids
    if id_type == "symbol":
        return [f.upper() for f in feature_ids]
    return [strip_version(f) for f in feature_ids]


def _found(wanted: list[list[str]], keys: set[str] | dict[str, int]) -> list[bool]:
    """Per gene: are all its ids among ``keys``?"""
    return [all(w in keys for w in ws) for ws in wanted]


def match_genes(
    feature_ids: Sequence[str],
    gene_maps: Sequence[GeneMap],
    id_type: str = "auto",
    where: str = "the data",
    *,
    allow_missing: bool = False,
    hint: str = "",
    candidates: Sequence[str] = ID_TYPES[1:],
) -> GeneColumns:
    """Locate the genes of ``gene_maps`` (in order, one map after the other) among a file's feature ids.

    ``id_type`` says what the file's ids are: ``probe`` (each gene averages its map probes),
    ``ensembl`` (gene ids, matched without their version suffix), ``symbol`` (HGNC gene symbols, the
    maps' first column, matched case-insensitively) or ``auto`` (the id type that finds the most genes
    of the maps: genes with all their probes in the file, or whose Ensembl id or symbol is there; ties
    go to probes, then Ensembl ids; ``candidates`` limits the types tried, e.g. no probes for genes
    known by gene id only).

    By default every gene must be found; the error names the missing ids, says how many genes of the
    map were found, and ends with ``hint`` (e.g. how the caller can run on an incomplete panel).
    With ``allow_missing`` a probe-level gene is present when at least one of its probes is (its value
    averages the present ones) and an Ensembl gene when its id is; the others are marked in
    ``present`` and come out as NaN from :meth:`GeneColumns.apply`. A map of which no gene is found is
    an error either way, as is an id the file holds more than once.
    """
    if id_type not in ID_TYPES:
        raise InputError(f"unknown id type {id_type!r}; expected one of {', '.join(ID_TYPES)}")
    probe_keys = [str(f) for f in feature_ids]
    auto = id_type == "auto"
    if auto:
        counts = {kind: sum(sum(_found(_wanted(m, kind), set(_keys(probe_keys, kind)))) for m in gene_maps)
                  for kind in candidates}
        id_type = max(candidates, key=lambda kind: (counts[kind], -ID_TYPES.index(kind)))
        neither = not any(counts.values())
    keys = _keys(probe_keys, id_type)
    position: dict[str, int] = {}
    repeated = set()
    for i, key in enumerate(keys):
        if key in position:
            repeated.add(key)
        position.setdefault(key, i)
    what = _WHAT[id_type]
    suffix = f"; {hint}" if hint else ""
    columns, starts, present = [], [], []
    for gene_map in gene_maps:
        wanted = _wanted(gene_map, id_type)
        originals = {"probe": gene_map.probes, "symbol": [[e] for e in gene_map.symbols]}.get(
            id_type, [[e] for e in gene_map.ensembl_ids])
        missing = [o for ws, os in zip(wanted, originals) for w, o in zip(ws, os) if w not in position]
        ambiguous = [o for ws, os in zip(wanted, originals) for w, o in zip(ws, os) if w in repeated]
        complete = _found(wanted, position)
        n_found = sum(complete)
        tried = (
            "neither the probes, the Ensembl gene ids nor the symbols of the maps match any feature id "
            f"(first feature ids: {', '.join(probe_keys[:3]) or 'none'})"
            if auto and neither else f"looked for {what} (id_type={id_type})"
        )
        if allow_missing and missing and not any(any(w in position for w in ws) for ws in wanted):
            raise InputError(
                f"{where}: none of the {len(gene_map)} genes of {gene_map.path} is in the file; {tried}"
            )
        if missing and not allow_missing:
            detail = f"{tried}; " if n_found == 0 else ""
            raise InputError(
                f"{where}: {len(missing)} {what} of {gene_map.path} are missing "
                f"(first: {', '.join(missing[:5])}); {n_found} of {len(gene_map)} genes of the map were found; "
                f"{detail}expected every gene of the map in the file{suffix}"
            )
        if ambiguous:
            raise InputError(
                f"{where}: {len(ambiguous)} {what} of {gene_map.path} occur more than once "
                f"(first: {', '.join(ambiguous[:5])}); expected one column per id"
            )
        for ws in wanted:
            starts.append(len(columns))
            found = [position[w] for w in ws if w in position]
            columns += found
            present.append(bool(found))
    return GeneColumns(
        np.array(columns, dtype=np.int64), np.array(starts, dtype=np.int64), id_type, np.array(present, dtype=bool)
    )


def read_panel(path: str | Path) -> list[str]:
    """The ids of a panel file: one id per line, the first tab-separated field counting; blank lines
    and lines starting with ``#`` are skipped, repeats are dropped (first occurrence kept)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: panel file not found (expected one gene or probe id per line)")
    ids: dict[str, None] = {}
    for line in read_text(path).splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        first = line.split("\t", 1)[0].strip()
        if first:
            ids.setdefault(first, None)
    if not ids:
        raise InputError(f"{path}: the panel file holds no ids (expected one gene or probe id per line; '#' starts a comment)")
    return list(ids)


def probes_to_genes(values: np.ndarray, probe_ids: Sequence[str], gene_map: GeneMap) -> np.ndarray:
    """Gene values (samples x genes, map order) as the mean of each gene's probe columns in ``values``.

    ``values`` is samples x probes with columns named by ``probe_ids``; every probe of the map must be there.
    """
    return match_genes(probe_ids, [gene_map], "probe").apply(values)
