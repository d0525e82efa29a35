"""Any expression file (GCTX, ``.h5ad``, CSV/TSV) with probe or gene ids, mapped onto D-GEX-style gene maps.

This one source reads the GEO compendium (``bgedv2_QNORM.gctx``, probe ids), 1000 Genomes
(GEUVADIS RPKM text, Ensembl ids) and GTEx (RPKM GCTX, Ensembl ids), and any other matrix a user
brings. Its steps, run once and cached:

1. read the file in blocks of samples (never the whole raw matrix);
2. check every value is finite (non-finite values are an error naming the sample and the feature:
   nothing is imputed), optionally ``log2(x + 1)`` linear-scale input (MAS5, RPKM);
3. map features to the genes of the landmark and target maps: a probe-level file averages each gene's
   probes, a gene-level file matches Ensembl ids without their version suffix;
4. optionally remove near-duplicate profiles (D-GEX's GEO step, :mod:`src.data.dedup`);
5. write the gene matrix to an HDF5 cache (temporary name, then rename).

Quantile normalisation and standardisation come after the split, in the DataModule, so that their
reference and statistics are computed from the training samples only.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np

from src.common.config_checks import check_table, number, one_of
from src.data.cache import cache_shape, content_hash, file_identity, fingerprint, open_cache, read_cache, write_cache, writing_cache
from src.data.dedup import near_duplicates_kept
from src.data.genes import GeneColumns, GeneMap, match_genes, read_gene_map
from src.data.io.base import FORMATS, MatrixReader
from src.data.io.annotations import read_sample_annotations
from src.data.io.matrix import open_matrix
from src.data.transforms import check_values, log2p1
from src.data.reference import load_reference
from src.data.sources.base import ExpressionData
from src.common.errors import InputError
from src.common.progress import progress_bar

log = logging.getLogger(__name__)

# What the cache holds, as this code builds it: a new number when that changes (2: targets measured as
# landmarks on gene-level data left out), so that no older cache is taken for a newer one.
CACHE_LAYOUT = 2
CONFIG_KEY = "data.source"  # where a run's config holds this source's options, named in the fixes errors suggest


def check_disjoint(landmarks: GeneMap, targets: GeneMap) -> None:
    """Refuse maps that share probes (the landmark map given as the target map trains a model that copies its
    inputs). Genes may be in both through different probes, as in D-GEX's own maps (445 genes: one probe a
    landmark, another a target)."""
    shared = sorted(set(landmarks.all_probes) & set(targets.all_probes))
    if shared:
        same = len(shared) == len(set(landmarks.all_probes)) == len(set(targets.all_probes))
        raise InputError(
            f"{CONFIG_KEY}.target_map={targets.path}: {len(shared)} of its probes are also landmark probes of "
            f"{CONFIG_KEY}.landmark_map={landmarks.path} (e.g. {', '.join(shared[:3])})"
            + ("; it is the landmark map itself" if same else "")
            + "; expected disjoint maps (the targets are inferred from the landmarks): pass the map of the target "
              "genes (D-GEX's map_tg.txt)"
        )


def drop_measured_targets(genes: GeneColumns, landmarks: GeneMap, targets: GeneMap, path) -> tuple[GeneColumns, GeneMap, dict]:
    """Leave out the targets that read the very file columns a landmark reads: on gene-level data (Ensembl ids
    or symbols) D-GEX's maps list 445 genes twice, one probe a landmark and another a target, so such a
    "target" is a measured input, and scoring its prediction would count copying as inference. Returns the
    mapping and the target map without them, and what was dropped (count, first symbols and ids; empty if
    none). Probe-level data keep them: their probes differ."""
    n_lm = len(landmarks)
    bounds = np.r_[genes.starts, len(genes.columns)]
    runs = [tuple(genes.columns[a:b]) for a, b in zip(bounds[:-1], bounds[1:])]
    landmark_runs = set(runs[:n_lm])
    copy = np.array([run in landmark_runs for run in runs[n_lm:]], dtype=bool)
    if not copy.any():
        return genes, targets, {}
    index = np.flatnonzero(copy)
    log.warning("%d of the %d target genes of %s read the same column of %s as a landmark (on gene-level data a gene "
                "of both maps is measured): left out, since a measured gene is not inferred (first: %s)",
                len(index), len(targets), targets.path.name, Path(path).name,
                ", ".join(targets.symbols[i] for i in index[:5]))
    keep = np.r_[np.ones(n_lm, dtype=bool), ~copy]
    dropped = {"count": int(len(index)), "symbols": [targets.symbols[i] for i in index[:20]],
               "ids": [targets.ensembl_ids[i] for i in index[:20]]}
    return genes.select(keep), targets.select(~copy), dropped


class MappedMatrixSource:
    """Landmark and target genes of one expression file, as defined by two gene maps.

    Args:
        path: the expression file (``.gctx``, ``.h5ad``, ``.csv``, ``.tsv``, ``.txt``, optionally gzipped text).
        landmark_map: D-GEX-format map of the landmark genes (``symbol<TAB>Ensembl id<TAB>probes``).
        target_map: the same for the target genes.
        cache_dir: where the processed HDF5 cache goes.
        format: ``auto`` (from the suffix), ``gctx``, ``h5ad`` or ``table``.
        id_type: the file's feature ids: ``probe``, ``ensembl`` or ``auto``.
        log2: transform linear-scale values with ``log2(x + 1)`` (they must be non-negative).
        remove_duplicates: drop near-duplicate profiles (MiniBatchKMeans + distance threshold, as D-GEX).
        duplicate_threshold: Euclidean distance (over the mapped genes) under which a profile is a duplicate.
        duplicate_clusters: number of k-means clusters within which profiles are compared.
        reference: reference quantiles to rank-map samples onto instead of fitting them on the training
            split: a checkpoint of a model trained on GEO (its stored reference) or a text file.
        reader_options: passed to the format's reader (e.g. ``orientation`` or ``annotation_columns`` of tables).
        block_size: samples read per block.
        strict_genes: every gene of both maps must be in the file (else an error naming the missing ones).
            By default (false) map genes absent from the file are left out: the model trains on the
            genes present, the checkpoint records exactly which, and the log and ``metrics.json``
            (``genes_dropped``) say what was dropped.
        min_gene_fraction: the least share of the landmark genes that must be present (default 0.9: a
            model on under 90% of the landmarks is no longer the landmark model users expect, and a lower
            share usually means the wrong maps or id type). Absent targets are only fewer genes predicted.
        sample_annotations: a table of per-sample annotations (e.g. an Expression Atlas experiment-design
            file), joined to the samples by whichever of its columns holds their ids (run or sample);
            written into ``splits.tsv``.
    """

    #: Values checked before any work (``data.source.<key>``; :mod:`src.common.config_checks`).
    config_checks = check_table(
        ("strict_genes", one_of(True, False), "true or false (refuse map genes absent from the file)", "false"),
        ("min_gene_fraction", lambda v: number(v) and 0 < v <= 1, "a share in (0, 1] of the landmark genes", "0.9"),
        ("id_type", one_of("auto", "probe", "ensembl", "symbol"), "auto, probe, ensembl or symbol", "auto"),
        ("format", one_of("auto", *FORMATS), "auto, " + ", ".join(FORMATS), "auto"),
        ("measured_targets", one_of("drop", "keep"), "drop or keep", "drop"),
    )

    def __init__(
        self,
        path: str | Path,
        landmark_map: str | Path,
        target_map: str | Path,
        cache_dir: str | Path,
        format: str = "auto",
        id_type: str = "auto",
        log2: bool = False,
        remove_duplicates: bool = False,
        duplicate_threshold: float = 1.0,
        duplicate_clusters: int = 100,
        reference: str | Path | None = None,
        reader_options: dict | None = None,
        block_size: int = 2048,
        strict_genes: bool = False,
        min_gene_fraction: float = 0.9,
        sample_annotations: str | Path | None = None,
        measured_targets: str = "drop",
    ):
        self.path = Path(path)
        self.measured_targets = measured_targets
        self.maps = (Path(landmark_map), Path(target_map))
        self.cache_dir = Path(cache_dir)
        self.format, self.id_type, self.log2 = format, id_type, log2
        self.remove_duplicates = remove_duplicates
        self.duplicate_threshold, self.duplicate_clusters = duplicate_threshold, duplicate_clusters
        self.reference = reference
        self.reader_options = dict(reader_options or {})
        self.block_size = block_size
        self.strict_genes = bool(strict_genes)
        if not 0 < float(min_gene_fraction) <= 1:
            raise InputError(f"{CONFIG_KEY}.min_gene_fraction={min_gene_fraction}: expected a share in (0, 1], "
                             f"e.g. {CONFIG_KEY}.min_gene_fraction=0.9")
        self.min_gene_fraction = float(min_gene_fraction)
        self.sample_annotations = Path(sample_annotations) if sample_annotations else None

    def cache_path(self, max_samples: int | None = None, max_targets: int | None = None) -> Path:
        """The cache file for these inputs and options (its name changes when any of them does)."""
        if not self.path.exists():
            raise FileNotFoundError(f"{self.path}: expression file not found")
        for gene_map in self.maps:
            if not gene_map.is_file():
                raise FileNotFoundError(f"{gene_map}: gene map not found (expected D-GEX's map_lm.txt / map_tg.txt format)")
        key = fingerprint({
            "input": file_identity(self.path),
            "maps": [content_hash(m) for m in self.maps],
            "options": [self.format, self.id_type, self.log2, self.reader_options],
            "genes": [self.strict_genes, self.min_gene_fraction],
            "duplicates": [self.remove_duplicates, self.duplicate_threshold, self.duplicate_clusters],
            "subset": [max_samples, max_targets],
            "layout": [CACHE_LAYOUT, self.measured_targets],
        })
        return self.cache_dir / f"{self.path.name.split('.')[0]}_{key}.h5"

    def prepare(self, max_samples: int | None = None, max_targets: int | None = None) -> None:
        """Process the file into its cache unless a cache of the same inputs exists."""
        cache = self.cache_path(max_samples, max_targets)
        if cache.exists():
            log.info("Using the cached data %s", cache)
            return
        landmarks, targets = (read_gene_map(m) for m in self.maps)
        check_disjoint(landmarks, targets)
        if max_targets:
            targets = targets.subset(max_targets)
        started = time.perf_counter()
        reader = open_matrix(self.path, self.format, format_key=f"{CONFIG_KEY}.format",
                             options_key=f"{CONFIG_KEY}.reader_options",
                             known_features=landmarks.known_ids | targets.known_ids, **self.reader_options)
        genes = match_genes(
            reader.feature_ids, [landmarks, targets], self.id_type, str(self.path), allow_missing=not self.strict_genes,
            hint=f"to train on the genes present, pass {CONFIG_KEY}.strict_genes=false",
        )
        genes, (landmarks, targets), dropped = self._present_genes(genes, landmarks, targets, reader.feature_ids)
        if self.measured_targets == "drop":
            genes, targets, copies = drop_measured_targets(genes, landmarks, targets, self.path)
            if copies:
                dropped["targets_measured_as_landmarks"] = copies
        n = min(len(reader.sample_ids), max_samples or len(reader.sample_ids))
        if n == 0:
            raise InputError(f"{self.path}: the file holds no samples; expected at least one sample (profile)")
        sample_ids = [str(s) for s in reader.sample_ids[:n]]
        annotations = reader.sample_annotations() if hasattr(reader, "sample_annotations") else {}
        seconds = {}

        def describe(n_read: int, kept: list[str]) -> dict:
            return {
                "path": str(self.path), "id_type": genes.id_type, "log2": self.log2,
                "samples_read": n_read, "duplicates_removed": n_read - len(kept),
                # What prediction needs to map new probe-level landmark data onto these genes.
                "landmark_probes": landmarks.probes if genes.id_type == "probe" else None,
                # The maps' gene symbols (HGNC), written next to the Ensembl ids of predictions.
                "target_symbols": targets.symbols, "landmark_symbols": landmarks.symbols,
                "seconds": seconds,
                **({"genes_dropped": dropped} if dropped else {}),
                **({"blank_cells": int(reader.blank_cells)} if getattr(reader, "blank_cells", 0) else {}),
            }

        def ids_of(kept: list[str], rows: np.ndarray) -> dict:
            return {"sample_ids": kept, "landmark_ids": landmarks.ensembl_ids, "target_ids": targets.ensembl_ids,
                    "sample_annotations": {k: [str(v) for v in values[rows]] for k, values in annotations.items()}}

        if not self.remove_duplicates:  # straight from the file into the cache, block by block
            with writing_cache(cache, n, len(landmarks), len(targets)) as writer:
                self._read_genes(reader, genes, n, writer.write)
                seconds["read_and_map"] = time.perf_counter() - started
                writer.finish(ids_of(sample_ids, np.arange(n)), describe(n, sample_ids))
            log.info("Wrote the processed data (%d samples x %d genes) to %s", n, genes.n_genes, cache)
            return
        # Near-duplicate removal compares profiles across the whole file: it needs the gene matrix in memory.
        matrix = np.empty((n, genes.n_genes), dtype=np.float32)

        def into_matrix(start: int, block: np.ndarray) -> None:
            matrix[start : start + len(block)] = block

        self._read_genes(reader, genes, n, into_matrix)
        seconds["read_and_map"] = time.perf_counter() - started
        started = time.perf_counter()
        keep = self._deduplicate(matrix)
        matrix = _compact_rows(matrix, keep)
        kept = [sample_ids[i] for i in keep]
        seconds["remove_duplicates"] = time.perf_counter() - started
        log.info("Removed %d near-duplicate profiles of %d", n - len(keep), n)
        write_cache(cache, matrix, len(landmarks), ids_of(kept, keep), describe(n, kept))
        log.info("Wrote the processed data (%d samples x %d genes) to %s", *matrix.shape, cache)

    def load(self, max_samples: int | None = None, max_targets: int | None = None) -> ExpressionData:
        """The cached gene matrix in memory (processing the file first if needed), with the reference quantiles if
        one is set."""
        cache = self._cache(max_samples, max_targets)
        with progress_bar(f"Loading {cache.name}", 1) as advance:
            landmarks, targets, ids, info = read_cache(cache, advance)
        return self._data(landmarks, targets, ids, info, cache)

    def open(self, max_samples: int | None = None, max_targets: int | None = None) -> ExpressionData:
        """The cached gene matrix left on disk: :class:`~src.data.rowfile.RowFile` landmarks and targets that read
        rows on demand (for data larger than memory; see the DataModule's ``storage``)."""
        cache = self._cache(max_samples, max_targets)
        landmarks, targets, ids, info = open_cache(cache)
        return self._data(landmarks, targets, ids, info, cache)

    def shape(self, max_samples: int | None = None, max_targets: int | None = None) -> tuple[int, int, int]:
        """``(samples, landmarks, targets)`` of the processed data (processing the file first if needed)."""
        return cache_shape(self._cache(max_samples, max_targets))

    def _cache(self, max_samples: int | None, max_targets: int | None) -> Path:
        cache = self.cache_path(max_samples, max_targets)
        if not cache.exists():
            self.prepare(max_samples, max_targets)
        return cache

    def _data(self, landmarks, targets, ids: dict, info: dict, cache: Path) -> ExpressionData:
        data = ExpressionData(landmarks, targets, **ids, info={**info, "cache": str(cache)})
        if self.sample_annotations is not None:
            design = read_sample_annotations(self.sample_annotations, data.sample_ids, key=f"{CONFIG_KEY}.sample_annotations")
            data.sample_annotations.update({str(column): design[column].tolist() for column in design.columns})
        if self.reference is not None:
            data.reference = load_reference(self.reference, len(data.landmark_ids) + len(data.target_ids))
        return data

    def _present_genes(self, genes: GeneColumns, landmarks: GeneMap, targets: GeneMap, feature_ids):
        """Keep the genes of both maps that the file holds: the mapping, the two maps restricted to them
        and what was dropped (``{"landmarks": {"count", "symbols", "ids"}, ...}``, empty if nothing).
        Refuses when fewer than ``min_gene_fraction`` of the landmarks are present (absent targets only mean
        fewer genes predicted; a map none of whose genes is present is refused by ``match_genes``)."""
        if genes.complete:
            return genes, (landmarks, targets), {}
        n_lm = len(landmarks)
        dropped, kept_maps = {}, []
        # A probe-level gene keeps only its probes that the file holds (the ones its value averages).
        features = set(map(str, feature_ids)) if genes.id_type == "probe" else None
        for role, gene_map, present in (("landmarks", landmarks, genes.present[:n_lm]), ("targets", targets, genes.present[n_lm:])):
            n_present = int(present.sum())
            share = n_present / len(gene_map)
            missing = [i for i, p in enumerate(present) if not p]
            ids = gene_map.probes if genes.id_type == "probe" else [[e] for e in gene_map.ensembl_ids]
            first = ", ".join(f"{gene_map.symbols[i]} ({','.join(ids[i])})" for i in missing[:5])
            if role == "landmarks" and share < self.min_gene_fraction:
                limit = max(0.01, int(share * 100) / 100)
                raise InputError(
                    f"{self.path}: only {n_present} of the {len(gene_map)} {role[:-1]} genes of {gene_map.path} are in the "
                    f"file ({share:.1%}; first missing: {first}); expected at least {self.min_gene_fraction:.0%} "
                    f"({CONFIG_KEY}.min_gene_fraction={self.min_gene_fraction:g}). Check that the maps and "
                    f"{CONFIG_KEY}.id_type fit the file's ids, or accept the smaller panel: {CONFIG_KEY}.min_gene_fraction={limit:g}"
                )
            if missing:
                dropped[role] = {
                    "count": len(missing),
                    "symbols": [gene_map.symbols[i] for i in missing[:20]],
                    "ids": [gene_map.ensembl_ids[i] for i in missing[:20]],
                }
                log.warning(
                    "%d of the %d %s genes of %s are not in %s and are left out (first: %s); the model uses the %d present "
                    "(%s.strict_genes=true refuses instead)", len(missing), len(gene_map), role[:-1], gene_map.path.name,
                    self.path.name, first, n_present, CONFIG_KEY,
                )
            kept_maps.append(gene_map.select(present, features))
        return genes.select(genes.present), tuple(kept_maps), dropped

    def _read_genes(self, reader: MatrixReader, genes: GeneColumns, n: int, sink) -> None:
        """Read the first ``n`` samples' genes block by block, checked (and log2-transformed if asked), into
        ``sink(first_row, block)``."""
        needed, remap = genes.compact()
        with progress_bar(f"Reading {self.path.name}", n) as advance:
            for rows, block in reader.blocks(needed, self.block_size):
                if rows.start >= n:
                    break
                block = block[: n - rows.start]
                check_values(block, str(self.path), reader.sample_ids, reader.feature_ids[needed], rows.start, self.log2,
                             log2_key=f"{CONFIG_KEY}.log2")
                if self.log2:
                    block = log2p1(block)
                sink(rows.start, remap.apply(block))
                advance(len(block))

    def _deduplicate(self, matrix: np.ndarray) -> np.ndarray:
        log.info("Clustering %d profiles into %d clusters (MiniBatchKMeans) to find near duplicates", len(matrix), self.duplicate_clusters)
        with progress_bar("Removing near-duplicate profiles", len(matrix)) as advance:
            return near_duplicates_kept(
                matrix, n_clusters=self.duplicate_clusters, threshold=self.duplicate_threshold, progress=advance
            )


def _compact_rows(matrix: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """``matrix[keep]`` for ascending ``keep`` without a second copy of the matrix (rows move up in place)."""
    for start in range(0, len(keep), 4096):
        part = keep[start : start + 4096]
        matrix[start : start + len(part)] = matrix[part]
    return matrix[: len(keep)]
