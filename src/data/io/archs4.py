"""The ARCHS4 gene-level HDF5 file as its authors publish it, read in blocks of samples.

ARCHS4 (Lachmann et al., *Nat Commun* 9:1366, 2018; https://maayanlab.cloud/archs4) aligns every human
RNA-seq sample of GEO and SRA with one pipeline and publishes the gene counts as one HDF5 file, read by its
authors' ``archs4py``:

- ``data/expression``: uint32 read counts, genes x samples (``archs4py`` reads a sample as
  ``data/expression[:, i]``); a file with samples x genes is read too: the orientation is told by the
  lengths of the gene and sample metadata (equal lengths: genes x samples, as published);
- ``meta/genes/*``: one entry per gene: the Ensembl id (``ensembl_gene``, or ``ensembl_gene_id``) and the
  symbol (``symbol``, or ``gene_symbol`` in older releases);
- ``meta/samples/*``: one entry per sample: ``geo_accession`` (the GSM id: the sample id here),
  ``series_id``, ``singlecellprobability`` (ARCHS4's prediction that the sample is single-cell), ...

**Filters** (reader options, ``data.source.reader_options.*``): ``max_singlecell`` keeps samples whose
single-cell probability is below it (0.5 by default, ARCHS4's own threshold: inference from bulk
profiles), ``series`` and ``samples`` keep those GEO series or GSM ids (a list, or a text file of one id
per line), ``min_counts`` keeps samples with at least that many reads in all (low-depth profiles are noise).

**Normalisation** (``normalize``): ``log2cpm`` (the default) is ``log2(counts / total * 1e6 + 1)``, the
total over *all* genes of the sample (its library size): counts per million remove sequencing depth, the
log compresses the range as D-GEX's log2 microarray scale does, and unlike TPM it needs no gene lengths
(ARCHS4 publishes none per gene) and is what ARCHS4's own tools start from. ``counts`` gives the raw counts
(then ``data.source.log2=true`` for ``log2(x + 1)``).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from pathlib import Path

import h5py
import numpy as np

from src.data.io.base import MatrixFormatError, check_unique

GENE_IDS = ("ensembl_gene", "ensembl_gene_id", "ensembl")
GENE_SYMBOLS = ("symbol", "gene_symbol", "genes")
ANNOTATIONS = ("series_id", "source_name_ch1", "singlecellprobability")
NORMALIZATIONS = ("log2cpm", "counts")


def is_archs4(f: h5py.File) -> bool:
    """Whether an open HDF5 file has ARCHS4's layout (``data/expression``, ``meta/genes``, ``meta/samples``)."""
    return "data/expression" in f and "meta/genes" in f and "meta/samples" in f


def _strings(dataset) -> np.ndarray:
    values = dataset[()]
    if values.dtype.kind in "SO":
        return np.array([v.decode("utf-8") if isinstance(v, bytes) else str(v) for v in values], dtype=object)
    return values


def _id_list(value, what: str) -> set[str] | None:
    """A list of ids given inline or as a text file of one id per line."""
    if value is None:
        return None
    if isinstance(value, (str, os.PathLike)):
        from src.data.io.text import read_text

        return {line.split("\t")[0].strip() for line in read_text(value, what).splitlines() if line.strip()}
    return {str(v) for v in value}


class ARCHS4Reader:
    """Samples x genes of an ARCHS4 file (see the module docstring), the samples that pass the filters."""

    def __init__(self, path: str | os.PathLike, normalize: str = "log2cpm", max_singlecell: float | None = 0.5,
                 series: Sequence[str] | str | None = None, samples: Sequence[str] | str | None = None,
                 min_counts: int = 0, id_field: str | None = None, options_key: str | None = None):
        self.path = Path(path)
        key = f"{options_key}." if options_key else ""
        if normalize not in NORMALIZATIONS:
            raise MatrixFormatError(f"{key}normalize={normalize}: expected {' or '.join(NORMALIZATIONS)}, "
                                    f"e.g. {key}normalize=log2cpm")
        self.normalize = normalize
        with h5py.File(self.path, "r") as f:
            if not is_archs4(f):
                raise MatrixFormatError(f"{self.path}: not an ARCHS4 file (expected data/expression, meta/genes and "
                                        "meta/samples)")
            genes, meta = f["meta/genes"], f["meta/samples"]
            field = id_field or next((n for n in GENE_IDS if n in genes), None) or next((n for n in GENE_SYMBOLS if n in genes), None)
            if field is None or field not in genes:
                raise MatrixFormatError(f"{self.path}: meta/genes has none of {', '.join(GENE_IDS + GENE_SYMBOLS)}; "
                                        f"name the gene id field, e.g. {key}id_field={next(iter(genes), 'symbol')}")
            self.feature_ids = _strings(genes[field])
            symbol = next((n for n in GENE_SYMBOLS if n in genes and n != field), None)
            self.feature_symbols = _strings(genes[symbol]) if symbol else None
            all_samples = _strings(meta["geo_accession"])
            shape = f["data/expression"].shape
            self.genes_by_samples = self._orientation(shape, len(self.feature_ids), len(all_samples))
            keep = np.ones(len(all_samples), dtype=bool)
            if max_singlecell is not None and "singlecellprobability" in meta:
                keep &= np.asarray(meta["singlecellprobability"][()], dtype=np.float64) < float(max_singlecell)
            wanted_series = _id_list(series, f"{key}series")
            if wanted_series is not None:
                keep &= np.isin(_strings(meta["series_id"]).astype(str), list(wanted_series))
            wanted_samples = _id_list(samples, f"{key}samples")
            if wanted_samples is not None:
                keep &= np.isin(all_samples.astype(str), list(wanted_samples))
            self._annotations = {n: _strings(meta[n]) for n in ANNOTATIONS if n in meta}
        self._rows = np.flatnonzero(keep)
        if min_counts:
            totals = np.concatenate([self._totals(rows) for rows in self._chunks(self._rows, 4096)]) if len(self._rows) else np.zeros(0)
            self._rows = self._rows[totals >= min_counts]
        self.sample_ids = all_samples[self._rows].astype(str)
        check_unique(self.sample_ids, "sample", self.path)
        self.filtered = len(all_samples) - len(self._rows)

    def _orientation(self, shape: tuple[int, int], n_genes: int, n_samples: int) -> bool:
        if shape == (n_genes, n_samples):
            return True
        if shape == (n_samples, n_genes):
            return False
        raise MatrixFormatError(f"{self.path}: data/expression has shape {shape}, but meta/genes lists {n_genes} genes "
                                f"and meta/samples {n_samples} samples; expected ({n_genes}, {n_samples})")

    @staticmethod
    def _chunks(rows: np.ndarray, size: int) -> Iterator[np.ndarray]:
        for start in range(0, len(rows), size):
            yield rows[start : start + size]

    def _counts(self, rows: np.ndarray) -> np.ndarray:
        """The counts of the file's samples ``rows`` (increasing positions), samples x all genes."""
        with h5py.File(self.path, "r") as f:
            data = f["data/expression"]
            if len(rows) and rows[-1] - rows[0] + 1 == len(rows):  # a run of samples: a slice reads far faster
                rows = slice(int(rows[0]), int(rows[-1]) + 1)
            block = data[:, rows].T if self.genes_by_samples else data[rows, :]
        return np.asarray(block, dtype=np.float64)

    def _totals(self, rows: np.ndarray) -> np.ndarray:
        return self._counts(rows).sum(1)

    def sample_annotations(self) -> dict[str, np.ndarray]:
        """``series_id``, ``source_name_ch1`` and ``singlecellprobability`` of the samples kept."""
        return {name: values[self._rows] for name, values in self._annotations.items()}

    def blocks(self, columns: np.ndarray | None = None, block_size: int = 4096) -> Iterator[tuple[slice, np.ndarray]]:
        """Yield ``(sample_slice, float32 values)`` blocks, normalised as ``normalize`` says (the library size of
        ``log2cpm`` over all genes, whatever ``columns`` keeps)."""
        for start in range(0, len(self._rows), block_size):
            counts = self._counts(self._rows[start : start + block_size])
            if self.normalize == "log2cpm":
                totals = counts.sum(1, keepdims=True)
                counts = np.log2(counts / np.maximum(totals, 1.0) * 1e6 + 1.0)
            block = counts if columns is None else counts[:, columns]
            yield slice(start, start + len(block)), block.astype(np.float32)
