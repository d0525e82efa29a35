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

from src.data.cache import content_hash, file_identity, fingerprint, read_cache, write_cache
from src.data.dedup import near_duplicates_kept
from src.data.genes import GeneColumns, match_genes, read_gene_map
from src.data.io.base import MatrixReader
from src.data.io.matrix import open_matrix
from src.data.transforms import check_values, log2p1
from src.data.reference import load_reference
from src.data.sources.base import ExpressionData
from src.common.errors import InputError
from src.common.progress import progress_bar

log = logging.getLogger(__name__)

CONFIG_KEY = "data.source"  # where a run's config holds this source's options, named in the fixes errors suggest


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
    """

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
    ):
        self.path = Path(path)
        self.maps = (Path(landmark_map), Path(target_map))
        self.cache_dir = Path(cache_dir)
        self.format, self.id_type, self.log2 = format, id_type, log2
        self.remove_duplicates = remove_duplicates
        self.duplicate_threshold, self.duplicate_clusters = duplicate_threshold, duplicate_clusters
        self.reference = reference
        self.reader_options = dict(reader_options or {})
        self.block_size = block_size

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
            "duplicates": [self.remove_duplicates, self.duplicate_threshold, self.duplicate_clusters],
            "subset": [max_samples, max_targets],
        })
        return self.cache_dir / f"{self.path.name.split('.')[0]}_{key}.h5"

    def prepare(self, max_samples: int | None = None, max_targets: int | None = None) -> None:
        """Process the file into its cache unless a cache of the same inputs exists."""
        cache = self.cache_path(max_samples, max_targets)
        if cache.exists():
            log.info("Using the cached data %s", cache)
            return
        landmarks, targets = (read_gene_map(m) for m in self.maps)
        if max_targets:
            targets = targets.subset(max_targets)
        started = time.perf_counter()
        reader = open_matrix(self.path, self.format, format_key=f"{CONFIG_KEY}.format",
                             options_key=f"{CONFIG_KEY}.reader_options", **self.reader_options)
        genes = match_genes(reader.feature_ids, [landmarks, targets], self.id_type, str(self.path))
        matrix, sample_ids = self._read_genes(reader, genes, max_samples)
        n_read = len(sample_ids)
        seconds = {"read_and_map": time.perf_counter() - started}
        if self.remove_duplicates:
            started = time.perf_counter()
            keep = self._deduplicate(matrix)
            matrix = _compact_rows(matrix, keep)
            sample_ids = [sample_ids[i] for i in keep]
            seconds["remove_duplicates"] = time.perf_counter() - started
            log.info("Removed %d near-duplicate profiles of %d", n_read - len(keep), n_read)
        info = {
            "path": str(self.path), "id_type": genes.id_type, "log2": self.log2,
            "samples_read": n_read, "duplicates_removed": n_read - len(sample_ids),
            # What prediction needs to map new probe-level landmark data onto these genes.
            "landmark_probes": landmarks.probes if genes.id_type == "probe" else None,
            # The maps' gene symbols (HGNC), written next to the Ensembl ids of predictions.
            "target_symbols": targets.symbols, "landmark_symbols": landmarks.symbols,
            "seconds": seconds,
        }
        ids = {"sample_ids": sample_ids, "landmark_ids": landmarks.ensembl_ids, "target_ids": targets.ensembl_ids}
        write_cache(cache, matrix, len(landmarks), ids, info)
        log.info("Wrote the processed data (%d samples x %d genes) to %s", *matrix.shape, cache)

    def load(self, max_samples: int | None = None, max_targets: int | None = None) -> ExpressionData:
        """The cached gene matrix (run :meth:`prepare` first), with the reference quantiles if one is set."""
        cache = self.cache_path(max_samples, max_targets)
        if not cache.exists():
            self.prepare(max_samples, max_targets)
        with progress_bar(f"Loading {cache.name}", 1) as advance:
            landmarks, targets, ids, info = read_cache(cache, advance)
        data = ExpressionData(landmarks, targets, **ids, info={**info, "cache": str(cache)})
        if self.reference is not None:
            data.reference = load_reference(self.reference, len(data.landmark_ids) + len(data.target_ids))
        return data

    def _read_genes(self, reader: MatrixReader, genes: GeneColumns, max_samples: int | None):
        n = min(len(reader.sample_ids), max_samples or len(reader.sample_ids))
        if n == 0:
            raise InputError(f"{self.path}: the file holds no samples; expected at least one sample (profile)")
        matrix = np.empty((n, genes.n_genes), dtype=np.float32)
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
                matrix[rows.start : rows.start + len(block)] = remap.apply(block)
                advance(len(block))
        return matrix, [str(s) for s in reader.sample_ids[:n]]

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
