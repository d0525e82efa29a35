"""Named DataModules for the published data sets: thin presets of :class:`ExpressionDataModule`.

Each one reads its files exactly as published (see :class:`~src.data.sources.MappedMatrixSource`)
and keeps every :class:`ExpressionDataModule` option (batch sizes, split seed, ``max_samples``, ...).
"""

from __future__ import annotations

from pathlib import Path

from src.data.datamodule import ExpressionDataModule
from src.data.sources.mapped import MappedMatrixSource

# The D-GEX paper's GEO split after duplicate removal: 88,807 / 11,101 / the rest (11,101).
GEO_SPLIT = (88807, 11101, 11101)


class GEODataModule(ExpressionDataModule):
    """The LINCS GEO compendium ``bgedv2_QNORM.gctx`` (GPL96 probes) with D-GEX's preprocessing.

    Probes -> genes (mean of each gene's probes), near-duplicate removal, quantile normalisation onto
    the training samples' mean sorted profile (kept in checkpoints, for RNA-seq data), the paper's split
    (scaled to smaller files) and standardisation with training statistics.
    """

    def __init__(
        self,
        gctx_path: str | Path,
        landmark_map: str | Path,
        target_map: str | Path,
        cache_dir: str | Path,
        split=GEO_SPLIT,
        duplicate_threshold: float = 1.0,
        duplicate_clusters: int = 100,
        **options,
    ):
        source = MappedMatrixSource(
            gctx_path, landmark_map, target_map, cache_dir, format="gctx", id_type="probe",
            remove_duplicates=True, duplicate_threshold=duplicate_threshold, duplicate_clusters=duplicate_clusters,
        )
        super().__init__(source, split=split, quantile_normalize=True, **options)


class RNASeqDataModule(ExpressionDataModule):
    """RPKM data with Ensembl gene ids: 1000 Genomes (GEUVADIS text) or GTEx (GCTX).

    Values become ``log2(RPKM + 1)`` and each sample is rank-mapped onto reference quantiles: GEO's,
    taken from a GEO-trained checkpoint given as ``reference`` (D-GEX's mapping, for cross-platform
    tests), or without one the training samples' own.
    """

    def __init__(
        self,
        path: str | Path,
        landmark_map: str | Path,
        target_map: str | Path,
        cache_dir: str | Path,
        reference: str | Path | None = None,
        format: str = "auto",
        reader_options: dict | None = None,
        **options,
    ):
        source = MappedMatrixSource(
            path, landmark_map, target_map, cache_dir, format=format, id_type="ensembl", log2=True,
            reference=reference, reader_options=reader_options,
        )
        super().__init__(source, quantile_normalize=True, **options)


class MatrixDataModule(ExpressionDataModule):
    """Any expression matrix (GCTX, ``.h5ad``, CSV/TSV) with probe or gene ids, mapped onto gene maps.

    Every option of :class:`~src.data.sources.MappedMatrixSource` is available (``format``,
    ``id_type``, ``log2``, ``remove_duplicates``, ``reference``, ``reader_options``).
    """

    def __init__(
        self,
        path: str | Path,
        landmark_map: str | Path,
        target_map: str | Path,
        cache_dir: str | Path,
        source_options: dict | None = None,
        quantile_normalize: bool = False,
        **options,
    ):
        source = MappedMatrixSource(path, landmark_map, target_map, cache_dir, **(source_options or {}))
        super().__init__(source, quantile_normalize=quantile_normalize, **options)


class GTExDataModule(RNASeqDataModule):
    """GTEx RNA-seq as published (``GTEx_RNASeq_RPKM_n2921x55993.gctx``): an :class:`RNASeqDataModule` on a GCTX."""

    def __init__(self, gctx_path: str | Path, landmark_map: str | Path, target_map: str | Path, cache_dir: str | Path, **options):
        super().__init__(gctx_path, landmark_map, target_map, cache_dir, format="gctx", **options)
