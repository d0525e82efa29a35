"""The landmark graph file: which landmark genes interact, for models that read a gene's neighbours (NCNN).

Format (UTF-8 text, one undirected edge per line, fields separated by a tab)::

    # comment lines start with '#'; blank lines are skipped
    gene_a<TAB>gene_b
    gene_a<TAB>gene_c<TAB>0.912

- ids are the model's landmark ids (the data's: Ensembl gene ids with the D-GEX maps, ``LM0001`` ... on
  the synthetic data);
- undirected: ``a b`` and ``b a`` are one edge, and a pair given twice is one edge (its largest weight);
  a gene paired with itself is ignored (every gene reads itself anyway);
- the third field, a weight (e.g. STRING's ``combined_score``), is optional (1 when absent); NCNN uses the
  structure only, so filter by weight when writing the file;
- a pair naming an id that is not one of the landmarks is ignored, and the log says how many were.

From STRING (https://string-db.org, downloads for *Homo sapiens*): ``9606.protein.links.v12.0.txt.gz``
(space-separated ``protein1 protein2 combined_score``, ids ``9606.ENSP...``) and
``9606.protein.aliases.v12.0.txt.gz`` (tab-separated ``string_protein_id alias source``; the Ensembl gene
id of each protein is the alias whose source is ``Ensembl_gene``)::

    zcat 9606.protein.aliases.v12.0.txt.gz | awk -F'\\t' '$3 == "Ensembl_gene" {print $1 "\\t" $2}' > ensp_ensg.tsv
    zcat 9606.protein.links.v12.0.txt.gz | awk 'NR == FNR {g[$1] = $2; next}
        FNR > 1 && $3 >= 700 && ($1 in g) && ($2 in g) {print g[$1] "\\t" g[$2] "\\t" $3}' ensp_ensg.tsv - > string_700.tsv

keeps the high-confidence links (``combined_score >= 700``) as Ensembl gene pairs; pairs of genes that
are not landmarks are dropped when the file is read.

Without a file, :func:`coexpression_graph` builds a graph from the training samples' landmark
co-expression instead: each landmark joined to its ``k`` most correlated landmarks (NCNN's fallback).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from src.common.atomic import atomic_path
from src.common.errors import InputError
from src.data.io.text import read_text

log = logging.getLogger(__name__)

FORMAT = "gene_a<TAB>gene_b[<TAB>weight]"


@dataclass(frozen=True)
class LandmarkGraph:
    """Undirected edges between landmarks, by their index in the landmark ids given to :func:`read_graph`."""

    edges: np.ndarray  # int64 (2, n_edges): pairs (a, b) with a < b, unique, sorted
    weights: np.ndarray  # float64 (n_edges,): the file's weight of each edge (1 where it has none)
    n_nodes: int  # the number of landmarks
    pairs_read: int = 0  # pairs in the file
    unknown_pairs: int = 0  # pairs ignored because an id is not a landmark
    source: str = ""

    @property
    def n_edges(self) -> int:
        return self.edges.shape[1]

    def degrees(self) -> np.ndarray:
        """Neighbours of every landmark."""
        return np.bincount(self.edges.ravel(), minlength=self.n_nodes)

    @classmethod
    def from_pairs(cls, pairs: Iterable[tuple[int, int, float]], n_nodes: int, **info) -> "LandmarkGraph":
        """The graph of index pairs ``(a, b, weight)``: made undirected, self-pairs dropped, duplicates merged."""
        best: dict[tuple[int, int], float] = {}
        for a, b, w in pairs:
            if a == b:
                continue
            key = (a, b) if a < b else (b, a)
            best[key] = max(w, best.get(key, -math.inf))
        keys = sorted(best)
        edges = np.array(keys, dtype=np.int64).reshape(-1, 2).T.copy()
        return cls(edges, np.array([best[k] for k in keys], dtype=np.float64), n_nodes, **info)


def _parse(line: str, path: Path, lineno: int) -> tuple[str, str, float]:
    fields = line.rstrip("\r\n").split("\t")
    if len(fields) not in (2, 3) or not fields[0].strip() or not fields[1].strip():
        hint = " (fields must be separated by tabs)" if len(fields) == 1 and " " in line.strip() else ""
        raise InputError(f"{path}:{lineno}: expected {FORMAT}{hint}, got {line.strip()[:80]!r}")
    weight = 1.0
    if len(fields) == 3:
        try:
            weight = float(fields[2])
        except ValueError:
            raise InputError(f"{path}:{lineno}: the weight {fields[2]!r} is not a number (expected {FORMAT})") from None
        if not math.isfinite(weight):
            raise InputError(f"{path}:{lineno}: the weight {fields[2]!r} is not a finite number")
    return fields[0].strip(), fields[1].strip(), weight


def read_graph(path: str | Path, ids: Sequence[str]) -> LandmarkGraph:
    """The edges of the graph file ``path`` between the landmarks ``ids`` (see the module docstring).

    Raises FileNotFoundError when there is no such file, and InputError (naming the file and line) for a
    malformed line, or when the file has pairs but none of them joins two of ``ids`` (wrong kind of ids).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: landmark graph file not found (expected {FORMAT} per line)")
    index = {gene: i for i, gene in enumerate(ids)}
    pairs, read, unknown, example = [], 0, 0, None
    for lineno, line in enumerate(read_text(path).splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        a, b, weight = _parse(line, path, lineno)
        read += 1
        if a in index and b in index:
            pairs.append((index[a], index[b], weight))
        else:
            unknown += 1
            example = example or (a if a not in index else b)
    if read == 0:
        raise InputError(f"{path}: the landmark graph file holds no pairs (expected {FORMAT} per line)")
    if not pairs:
        raise InputError(
            f"{path}: none of its {read} pairs joins two of the {len(ids)} landmark genes (e.g. {example!r} is not a "
            f"landmark; the landmarks are ids like {', '.join(map(repr, list(ids)[:3]))}): the file must use the "
            f"model's landmark ids"
        )
    graph = LandmarkGraph.from_pairs(pairs, len(ids), pairs_read=read, unknown_pairs=unknown, source=str(path))
    connected = int((graph.degrees() > 0).sum())
    log.info(
        "Landmark graph %s: %d edges among %d of %d landmarks (%d pairs read; %d named an id that is not a "
        "landmark and were ignored)", path, graph.n_edges, connected, len(ids), read, unknown,
    )
    return graph


def write_graph(path: str | Path, pairs: Iterable[tuple[str, str]] | Iterable[tuple[str, str, float]],
                comment: str | None = None) -> Path:
    """Write ``pairs`` of gene ids (optionally with a weight) as a graph file, atomically; ``comment``
    becomes ``#`` lines at the top. Returns the path."""
    path = Path(path)
    lines = [f"# {line}" for line in (comment or "").splitlines()]
    for pair in pairs:
        a, b, *weight = pair
        if "\t" in a or "\t" in b or "\n" in a or "\n" in b:
            raise ValueError(f"gene ids may not contain tabs or line breaks: {a!r}, {b!r}")
        lines.append("\t".join([a, b, *(repr(float(w)) for w in weight)]))
    with atomic_path(path) as tmp:
        tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def coexpression_graph(landmarks, neighbours: int, block_rows: int = 4096) -> LandmarkGraph:
    """The landmark graph of the samples ``landmarks`` (rows: samples, columns: landmarks): every landmark
    joined to the ``neighbours`` landmarks most correlated with it (absolute Pearson correlation over the
    rows), made undirected (the union: a pair is an edge when either end chose the other), no self-loops.

    Give it the *training* samples only. The weights are the absolute correlations. Deterministic: ties
    go to the lower landmark index. The sums are taken in float64, ``block_rows`` rows at a time (a
    float64 copy of one block, never of the whole matrix: 943 landmarks x 100,000 samples take a few
    seconds). ``landmarks`` may be a NumPy array or a (CPU) torch tensor of any float type. A constant
    landmark (no variance over the rows) has no correlation: it chooses no neighbour and none chooses it.
    """
    n, p = landmarks.shape
    if neighbours < 1:
        raise ValueError(f"neighbours must be >= 1, got {neighbours}")
    if n < 2:
        raise InputError(f"a co-expression graph needs at least 2 training samples, got {n}")

    def blocks():
        for start in range(0, n, block_rows):
            block = landmarks[start : start + block_rows]
            if hasattr(block, "detach"):  # a torch tensor
                block = block.detach().cpu().numpy()
            yield np.array(block, dtype=np.float64)  # always a copy: centred in place below

    mean = sum(block.sum(axis=0) for block in blocks()) / n
    cross = np.zeros((p, p))
    for block in blocks():
        block -= mean
        cross += block.T @ block
    if not np.isfinite(cross).all():
        raise InputError("the training landmarks hold non-finite values: no co-expression graph can be built")
    cross = (cross + cross.T) / 2  # exactly symmetric, whatever the BLAS did
    var = np.diag(cross) / n
    constant = var <= 1e-18 * (mean**2 + var)  # sd at most 1e-9 of the root mean square (or 0)
    sd = np.sqrt(np.where(constant, 1.0, var * n))
    strength = np.abs(cross / sd[:, None] / sd[None, :])
    strength[constant, :] = -1.0
    strength[:, constant] = -1.0
    np.fill_diagonal(strength, -1.0)
    k = min(neighbours, p - 1)
    chosen = np.argsort(-strength, axis=1, kind="stable")[:, :k]  # stable: ties keep the lower index first
    rows = np.repeat(np.arange(p), k)
    cols = chosen.ravel()
    keep = strength[rows, cols] >= 0
    pairs = np.stack([np.minimum(rows, cols)[keep], np.maximum(rows, cols)[keep]])
    edges = np.unique(pairs, axis=1).astype(np.int64) if pairs.size else np.zeros((2, 0), dtype=np.int64)
    return LandmarkGraph(edges, strength[edges[0], edges[1]].astype(np.float64), p,
                         source=f"co-expression of {n} training samples, {neighbours} neighbours per landmark")
