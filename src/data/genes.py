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

    @property
    def all_probes(self) -> list[str]:
        """Every probe of every gene, in map order, without repeats."""
        return list(dict.fromkeys(p for probes in self.probes for p in probes))


def read_gene_map(path: str | Path) -> GeneMap:
    """Read a D-GEX gene map; errors name the file, the line and what was expected."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: gene map not found (expected D-GEX's map_lm.txt / map_tg.txt format)")
    symbols, ensembl, probes = [], [], []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        fields = line.rstrip("\n").split("\t")
        gene_probes = [p.strip() for p in fields[2].split(",")] if len(fields) >= 3 else []
        if len(fields) < 3 or not all(gene_probes):
            raise ValueError(
                f"{path}, line {number}: expected 'symbol<TAB>Ensembl id<TAB>probe[,probe...]', got {line[:80]!r}"
            )
        symbols.append(fields[0].strip())
        ensembl.append(fields[1].strip())
        probes.append(gene_probes)
    if not symbols:
        raise ValueError(f"{path}: the gene map is empty")
    return GeneMap(path, symbols, ensembl, probes)


def strip_version(ensembl_id: str) -> str:
    """``ENSG00000152931.6`` -> ``ENSG00000152931`` (``ENSG00000002586.18_PAR_Y`` -> ``ENSG00000002586_PAR_Y``)."""
    return _VERSION.sub("", ensembl_id)


_VERSION = re.compile(r"\.\d+(?=$|_)")
ID_TYPES = ("auto", "probe", "ensembl")


@dataclass(frozen=True)
class GeneColumns:
    """How to turn a file's feature columns into gene values: gather ``columns``, then average each gene's run.

    Gene ``g`` is the mean of ``values[:, columns[starts[g]:starts[g + 1]]]`` (one column for most genes).
    """

    columns: np.ndarray  # feature positions, gene after gene
    starts: np.ndarray  # where each gene's run begins in ``columns``
    id_type: str

    @property
    def counts(self) -> np.ndarray:
        return np.diff(np.r_[self.starts, len(self.columns)])

    @property
    def n_genes(self) -> int:
        return len(self.starts)

    def compact(self) -> tuple[np.ndarray, "GeneColumns"]:
        """The distinct feature columns to read, and this mapping re-indexed onto a block of just those."""
        needed = np.unique(self.columns)
        return needed, GeneColumns(np.searchsorted(needed, self.columns), self.starts, self.id_type)

    def apply(self, values: np.ndarray) -> np.ndarray:
        """Gene values (samples x genes, float32) from a block of feature values (samples x features)."""
        gathered = np.asarray(values, dtype=np.float32)[:, self.columns]
        if len(self.columns) == self.n_genes:
            return gathered
        return (np.add.reduceat(gathered, self.starts, axis=1) / self.counts).astype(np.float32)


def match_genes(
    feature_ids: Sequence[str], gene_maps: Sequence[GeneMap], id_type: str = "auto", where: str = "the data"
) -> GeneColumns:
    """Locate the genes of ``gene_maps`` (in order, one map after the other) among a file's feature ids.

    ``id_type`` says what the file's ids are: ``probe`` (each gene averages its map probes),
    ``ensembl`` (gene ids, matched without their version suffix) or ``auto`` (probes if the file has
    the maps' probes, else Ensembl ids). Every gene must be found; the error names the missing ones.
    """
    if id_type not in ID_TYPES:
        raise ValueError(f"unknown id type {id_type!r}; expected one of {', '.join(ID_TYPES)}")
    if id_type == "auto":
        probes = {p for m in gene_maps for p in m.all_probes}
        id_type = "probe" if sum(f in probes for f in feature_ids) > len(probes) / 2 else "ensembl"
    keys = list(feature_ids) if id_type == "probe" else [strip_version(str(f)) for f in feature_ids]
    position: dict[str, int] = {}
    repeated = set()
    for i, key in enumerate(keys):
        if key in position:
            repeated.add(key)
        position.setdefault(key, i)
    columns, starts = [], []
    for gene_map in gene_maps:
        wanted = gene_map.probes if id_type == "probe" else [[e] for e in gene_map.ensembl_ids]
        missing = [w for ws in wanted for w in ws if w not in position]
        ambiguous = [w for ws in wanted for w in ws if w in repeated]
        what = "probes" if id_type == "probe" else "Ensembl gene ids"
        if missing:
            raise ValueError(
                f"{where}: {len(missing)} {what} of {gene_map.path} are missing "
                f"(first: {', '.join(missing[:5])}); expected every gene of the map in the file"
            )
        if ambiguous:
            raise ValueError(
                f"{where}: {len(ambiguous)} {what} of {gene_map.path} occur more than once "
                f"(first: {', '.join(ambiguous[:5])}); expected one column per id"
            )
        for ws in wanted:
            starts.append(len(columns))
            columns += [position[w] for w in ws]
    return GeneColumns(np.array(columns, dtype=np.int64), np.array(starts, dtype=np.int64), id_type)


def probes_to_genes(values: np.ndarray, probe_ids: Sequence[str], gene_map: GeneMap) -> np.ndarray:
    """Gene values (samples x genes, map order) as the mean of each gene's probe columns in ``values``.

    ``values`` is samples x probes with columns named by ``probe_ids``; every probe of the map must be there.
    """
    return match_genes(probe_ids, [gene_map], "probe").apply(values)
