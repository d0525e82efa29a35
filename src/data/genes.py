"""Gene maps of the D-GEX benchmark and probe -> gene aggregation.

D-GEX's ``map_lm.txt`` (943 landmark genes) and ``map_tg.txt`` (9,520 target genes) are tab-separated
``symbol, Ensembl gene id, probe ids``; a gene measured by several comma-separated probes takes the
mean of their values.
"""

from __future__ import annotations

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


def probes_to_genes(values: np.ndarray, probe_ids: Sequence[str], gene_map: GeneMap) -> np.ndarray:
    """Gene values (samples x genes, map order) as the mean of each gene's probe columns in ``values``.

    ``values`` is samples x probes with columns named by ``probe_ids``; every probe of the map must be there.
    """
    column = {p: i for i, p in enumerate(probe_ids)}
    missing = [p for p in gene_map.all_probes if p not in column]
    if missing:
        raise ValueError(
            f"{len(missing)} of the {len(gene_map.all_probes)} probes of {gene_map.path} are missing from the data "
            f"(first: {', '.join(missing[:5])})"
        )
    out = np.empty((values.shape[0], len(gene_map)), dtype=np.float32)
    for g, probes in enumerate(gene_map.probes):
        cols = [column[p] for p in probes]
        out[:, g] = values[:, cols[0]] if len(cols) == 1 else values[:, cols].mean(axis=1)
    return out
