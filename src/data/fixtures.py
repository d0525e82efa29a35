"""Miniature files in the published formats, for tests, benchmarks and trying the pipeline without downloads.

Each writer produces a file laid out exactly like one of the D-GEX data sets, filled with synthetic values:

:func:`write_geo_like`
    the LINCS GEO compendium ``bgedv2_QNORM.gctx`` (GCTX 1.0, float32 samples x GPL96 probes, log2
    microarray values), with a known share of near-duplicate samples.
:func:`write_geuvadis_like`
    the 1000 Genomes file ``GD462.GeneQuantRPKM.50FN.samplename.resk10.txt`` (tab-separated, one row per
    gene: ``TargetID  Gene_Symbol  Chr  Coord  <one RPKM column per sample>``).
:func:`write_gtex_like`
    ``GTEx_RNASeq_RPKM_n2921x55993.gctx`` (GCTX 1.0, float32 samples x versioned Ensembl genes, RPKM, with a
    ``Description`` gene-symbol annotation).
:func:`write_archs4_like`
    an ARCHS4 gene-level HDF5 file (``human_gene_v2.x.h5``: uint32 counts in ``data/expression``, gene and
    sample metadata in ``meta/genes`` and ``meta/samples``), in either orientation.

All three read one latent gene programme (the nonlinear low-rank model of :mod:`src.data.synthetic`, with
one gene per Ensembl id of the maps): a sample has a latent state ``z``, and gene ``g`` has the log2 value
``mean_g + spread_g * (signal_g(z) + noise_ratio_g * eps)``. Landmarks and targets share the programme, so
targets can be learnt from landmarks. The microarray files add probe noise and squash values into 2-14.5;
the RNA-seq files report ``RPKM = 2 ** max(0, gain_g * (value - floor_g)) - 1``, softly capped (a monotone
transform with many exact zeros), so a model trained on one kind of file has signal on the other.

Gene parameters depend only on ``seed`` and the maps, and every sample is drawn from its own seeded
generator, so the files are deterministic given ``seed`` (whatever the block size or number of threads),
are generated block by block by a few threads, and never need the whole matrix in memory.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from src.data.genes import GeneMap, read_gene_map
from src.common.atomic import atomic_path
from src.data.io.gctx import write_gctx_blocks
from src.data.synthetic import SyntheticSpec, _Genes

# Shapes of the published files (samples, features), for benchmarks at full size.
BGEDV2_SHAPE = (129_158, 22_268)
GEUVADIS_SAMPLES = 462
GTEX_SHAPE = (2_921, 55_993)

_SPEC = SyntheticSpec(latent_dim=16, n_programs=48)
_GENE_NOISE = (0.1, 0.4)  # per-gene noise sd / signal sd, on both platforms
_PROBE_NOISE = 0.1  # sd of a probe around its gene's value (log2 units)
_DUPLICATE_NOISE = 0.003  # sd of a near-duplicate around its original, per probe
_LOG_RANGE = (2.0, 14.5)  # microarray values are squashed smoothly into this open interval
_MAX_LOG_RPKM = 17.0  # log2(RPKM + 1) stays below this (RPKM < 131,071)
_CALIBRATION_SAMPLES = 1024
_MAX_WORKERS = 4  # threads generating blocks
_CHROMOSOMES = np.array([str(c) for c in range(1, 23)] + ["X"])

# Independent random streams: seeds are [seed, stream, ...].
_MAP_GENES, _EXTRA_GENES, _CALIBRATION, _NAMES = 0, 1, 2, 3
_GEO, _GEUVADIS, _GTEX, _DUPLICATES, _ARCHS4 = 10, 11, 12, 13, 14


def _as_map(gene_map: GeneMap | str | os.PathLike) -> GeneMap:
    return gene_map if isinstance(gene_map, GeneMap) else read_gene_map(gene_map)


@dataclass(frozen=True)
class _MapGenes:
    """The distinct genes (Ensembl ids) of the landmark and target maps, and which gene each probe measures."""

    ensembl_ids: list[str]
    symbols: list[str]
    probe_gene: dict[str, int]  # probe id -> position in ``ensembl_ids``

    @classmethod
    def of(cls, landmark_map, target_map) -> _MapGenes:
        index: dict[str, int] = {}
        symbols, probe_gene = [], {}
        for gene_map in (_as_map(landmark_map), _as_map(target_map)):
            for symbol, ensembl, probes in zip(gene_map.symbols, gene_map.ensembl_ids, gene_map.probes):
                if ensembl not in index:
                    index[ensembl] = len(index)
                    symbols.append(symbol)
                for probe in probes:
                    probe_gene.setdefault(probe, index[ensembl])
        return cls(list(index), symbols, probe_gene)


class _Programme:
    """Gene parameters of the latent programme: the map genes first, then ``n_extra`` unrelated genes.

    The map genes' parameters depend only on ``seed`` and their number, so every writer given the same maps
    and seed shares them, whatever its number of extra genes.
    """

    def __init__(self, n_map: int, n_extra: int, seed: int):
        z_ref = np.random.default_rng([seed, _CALIBRATION]).standard_normal(
            (_CALIBRATION_SAMPLES, _SPEC.latent_dim), dtype=np.float32
        )
        self.parts: list[_Genes] = []
        floors, gains = [], []
        for stream, n in ((_MAP_GENES, n_map), (_EXTRA_GENES, n_extra)):
            if n == 0:
                continue
            rng = np.random.default_rng([seed, stream])
            genes = _Genes(rng, n, _SPEC, _GENE_NOISE)
            genes.scale = (1.0 / _signal_sd(genes, z_ref)).astype(np.float32)
            # RNA-seq read-out: zero below floor_g, then log2(RPKM + 1) rises with slope gain_g.
            floors.append(genes.mean + genes.spread * rng.uniform(-2.5, 0.5, size=n).astype(np.float32))
            gains.append(rng.uniform(1.0, 2.0, size=n).astype(np.float32))
            self.parts.append(genes)
        self.mean = np.concatenate([g.mean for g in self.parts])
        self.spread = np.concatenate([g.spread for g in self.parts])
        self.noise_sd = np.concatenate([g.spread * g.noise_ratio for g in self.parts])
        self.floor, self.gain = np.concatenate(floors), np.concatenate(gains)

    @property
    def n_genes(self) -> int:
        return len(self.mean)

    def expression(self, z: np.ndarray) -> np.ndarray:
        """Noise-free log2 gene values (samples x genes) of latent states ``z``."""
        values = np.concatenate([g.signal(z) for g in self.parts], axis=1)
        values *= self.spread
        values += self.mean
        return values

    def rpkm(self, log_values: np.ndarray) -> np.ndarray:
        """The RNA-seq read-out of log2 gene values: non-negative, linear scale, exact zeros below each floor.

        ``log2(RPKM + 1)`` is ``gain_g * (value - floor_g)`` above the floor, softly capped at ``_MAX_LOG_RPKM``.
        """
        rise = np.maximum(self.gain * (log_values - self.floor), 0.0)
        return np.exp2(_MAX_LOG_RPKM * np.tanh(rise / _MAX_LOG_RPKM)) - 1.0


def _signal_sd(genes: _Genes, z_ref: np.ndarray, chunk: int = 256) -> np.ndarray:
    """Per-gene sd of the raw signal over reference draws, in chunks of draws (bounded memory for wide files)."""
    total = np.zeros(genes.linear.shape[1])
    total_sq = np.zeros(genes.linear.shape[1])
    for start in range(0, len(z_ref), chunk):
        signal = genes.signal(z_ref[start : start + chunk]).astype(np.float64)
        total += signal.sum(axis=0)
        total_sq += np.einsum("ij,ij->j", signal, signal)
    mean = total / len(z_ref)
    return np.sqrt(np.maximum(total_sq / len(z_ref) - mean**2, 1e-12))


def _draws(seed: int, stream: int, samples: np.ndarray, n_noise: int) -> tuple[np.ndarray, np.ndarray]:
    """Latent states and ``n_noise`` standard normal draws of each sample, from its own seeded generator."""
    z = np.empty((len(samples), _SPEC.latent_dim), dtype=np.float32)
    eps = np.empty((len(samples), n_noise), dtype=np.float32)
    for row, sample in enumerate(samples):
        rng = np.random.default_rng([seed, stream, int(sample)])
        z[row] = rng.standard_normal(_SPEC.latent_dim, dtype=np.float32)
        rng.standard_normal(out=eps[row], dtype=np.float32)
    return z, eps


def _squash(values: np.ndarray, low: float, high: float) -> np.ndarray:
    """Map the real line smoothly and monotonically into ``(low, high)`` (near-identity around the middle).

    Works in place on ``values`` and returns it.
    """
    mid, half = (low + high) / 2, (high - low) / 2
    values -= mid
    values /= half
    np.tanh(values, out=values)
    values *= half
    values += mid
    return values


def _sample_blocks(n_samples: int, block_size: int) -> Iterator[np.ndarray]:
    """Consecutive sample indices, ``block_size`` at a time."""
    if block_size < 1:
        raise ValueError(f"block_size must be >= 1, got {block_size}")
    for start in range(0, n_samples, block_size):
        yield np.arange(start, min(start + block_size, n_samples))


def _in_parallel(make: Callable[[np.ndarray], np.ndarray], blocks: Iterator[np.ndarray]) -> Iterator[np.ndarray]:
    """``make(block)`` for each block, in order, computed by a few threads (numpy releases the GIL).

    At most one block per thread, plus one waiting to be consumed, is in flight, so memory stays bounded
    whatever the number of blocks. The result does not depend on the number of threads: every sample is
    drawn from its own generator.
    """
    workers = max(1, min(_MAX_WORKERS, os.cpu_count() or 1))
    with ThreadPoolExecutor(workers) as pool:
        pending: deque[Future] = deque()
        for block in blocks:
            pending.append(pool.submit(make, block))
            if len(pending) > workers:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


def _check(n_samples: int, extra: int, extra_name: str) -> None:
    if n_samples < 1:
        raise ValueError(f"n_samples must be >= 1, got {n_samples}")
    if extra < 0:
        raise ValueError(f"{extra_name} must be >= 0, got {extra}")


# ---------------------------------------------------------------------------------------------------- GEO


def _extra_probe_ids(taken: set[str], n: int, rng: np.random.Generator) -> list[str]:
    """``n`` GPL96-style probe ids (``200001_at``, ``200002_s_at``, ...) that are not in ``taken``."""
    span = 22_400 + n + len(taken)
    numbers = np.repeat(np.arange(200_000, 200_000 + span), 3)
    suffixes = np.tile(np.array(["_at", "_s_at", "_x_at"]), span)
    out = []
    for i in rng.permutation(len(numbers)):
        probe = f"{numbers[i]}{suffixes[i]}"
        if probe not in taken:
            out.append(probe)
            if len(out) == n:
                break
    return out


def _duplicate_of(n_samples: int, fraction: float, rng: np.random.Generator) -> np.ndarray:
    """For each sample, the earlier original it nearly duplicates, or -1 (about ``fraction`` of the samples)."""
    out = np.full(n_samples, -1, dtype=np.int64)
    n_dup = min(round(fraction * n_samples), n_samples - 1)
    if n_dup <= 0:
        return out
    duplicates = np.sort(rng.choice(np.arange(1, n_samples), size=n_dup, replace=False))
    out[duplicates] = 0  # placeholder, so that originals are the samples still at -1
    originals = np.flatnonzero(out < 0)
    earlier = np.searchsorted(originals, duplicates)  # >= 1: sample 0 is always an original
    out[duplicates] = originals[(rng.random(n_dup) * earlier).astype(np.int64)]
    return out


def write_geo_like(
    path: str | os.PathLike,
    landmark_map: GeneMap | str | os.PathLike,
    target_map: GeneMap | str | os.PathLike,
    n_samples: int,
    *,
    extra_probes: int = 50,
    duplicate_fraction: float = 0.05,
    seed: int = 0,
    block_size: int = 2048,
    progress: Callable[[int], None] | None = None,
) -> Path:
    """Write a GCTX 1.0 file laid out like LINCS ``bgedv2_QNORM.gctx``; returns ``path``.

    The matrix is float32 samples x probes, log2 microarray values in about 2-14.5. Its probes are every probe
    of both maps plus ``extra_probes`` other GPL96-style ids (``BGEDV2_SHAPE[1] - <map probes>`` reaches the
    real width), in shuffled order, as fixed-length byte strings in ``/0/META/ROW/id``; sample ids are GEO
    accessions (``GSM1000001``...). Probes of one gene are the gene's value plus probe noise. About
    ``duplicate_fraction`` of the samples nearly duplicate an earlier sample (Euclidean distance about 0.3
    over the mapped genes); ``/0/META/COL/duplicate_of`` gives the original's index, or -1 for originals.
    Samples are generated and written ``block_size`` at a time (a full-size file never sits in memory);
    ``progress(n)`` is called after each block.
    """
    _check(n_samples, extra_probes, "extra_probes")
    if not 0 <= duplicate_fraction < 1:
        raise ValueError(f"duplicate_fraction must be in [0, 1), got {duplicate_fraction}")
    genes = _MapGenes.of(landmark_map, target_map)
    names = np.random.default_rng([seed, _NAMES, _GEO])
    extras = _extra_probe_ids(set(genes.probe_gene), extra_probes, names)
    n_map = len(genes.ensembl_ids)
    probes = np.array(list(genes.probe_gene) + extras, dtype=object)
    probe_gene = np.array(list(genes.probe_gene.values()) + list(range(n_map, n_map + extra_probes)))
    order = names.permutation(len(probes))
    probes, probe_gene = probes[order], probe_gene[order]
    sample_ids = [f"GSM{i}" for i in 1_000_000 + np.cumsum(names.integers(1, 40, size=n_samples))]
    duplicate_of = _duplicate_of(n_samples, duplicate_fraction, np.random.default_rng([seed, _DUPLICATES]))

    programme = _Programme(n_map, extra_probes, seed)
    # A gene's own noise is drawn once and shared by its probes only where it has several probes; for
    # single-probe genes it merges with the probe noise into one draw of the combined sd.
    n_probes = np.bincount(probe_gene, minlength=programme.n_genes)
    multi = np.flatnonzero(n_probes > 1)
    probe_sd = np.where(
        n_probes[probe_gene] > 1, _PROBE_NOISE, np.sqrt(_PROBE_NOISE**2 + programme.noise_sd[probe_gene] ** 2)
    ).astype(np.float32)

    def make_block(samples: np.ndarray) -> np.ndarray:
        sources = np.where(duplicate_of[samples] >= 0, duplicate_of[samples], samples)
        z, eps = _draws(seed, _GEO, sources, len(probes) + len(multi))
        genes = programme.expression(z)
        genes[:, multi] += programme.noise_sd[multi] * eps[:, len(probes) :]
        values = np.take(genes, probe_gene, axis=1)
        del genes
        probe_noise = eps[:, : len(probes)]
        probe_noise *= probe_sd
        values += probe_noise
        del z, eps, probe_noise
        for row in np.flatnonzero(sources != samples):
            rng = np.random.default_rng([seed, _DUPLICATES, int(samples[row])])
            values[row] += _DUPLICATE_NOISE * rng.standard_normal(len(probes), dtype=np.float32)
        return _squash(values, *_LOG_RANGE)

    return write_gctx_blocks(
        path, sample_ids, probes, _in_parallel(make_block, _sample_blocks(n_samples, block_size)),
        sample_meta={"duplicate_of": duplicate_of},
        attrs={"source": "gexinfer fixture: synthetic data in the layout of LINCS bgedv2_QNORM.gctx", "seed": seed},
        progress=progress,
    )


# ---------------------------------------------------------------------------------------------------- RNA-seq


@dataclass(frozen=True)
class _RNASeqGenes:
    """Rows of an RNA-seq file: versioned Ensembl ids with annotations, and each row's programme gene."""

    ids: np.ndarray
    symbols: np.ndarray
    chromosomes: np.ndarray
    coords: np.ndarray
    gene: np.ndarray  # position in the programme


def _rnaseq_genes(genes: _MapGenes, n_extra: int, rng: np.random.Generator) -> _RNASeqGenes:
    """Every distinct map gene once plus ``n_extra`` other genes, versioned, annotated and shuffled."""
    taken = set(genes.ensembl_ids)
    extras = []
    for number in rng.permutation(np.arange(1, 1_000_000)):
        ensembl = f"ENSG{number:011d}"
        if ensembl not in taken:
            extras.append(ensembl)
            if len(extras) == n_extra:
                break
    if len(extras) < n_extra:
        raise ValueError(f"extra_genes={n_extra} is more than the fixture can name")
    ensembl = np.array(genes.ensembl_ids + extras, dtype=object)
    symbols = np.array(genes.symbols + [f"LOC{int(e[4:])}" for e in extras], dtype=object)
    versions = rng.integers(1, 20, size=len(ensembl))
    ids = np.array([f"{e}.{v}" for e, v in zip(ensembl, versions)], dtype=object)
    order = rng.permutation(len(ids))
    return _RNASeqGenes(
        ids=ids[order],
        symbols=symbols[order],
        chromosomes=rng.choice(_CHROMOSOMES, size=len(ids)),
        coords=rng.integers(10_000, 249_000_000, size=len(ids)),
        gene=order,
    )


def _rnaseq_blocks(
    programme: _Programme, seed: int, stream: int, n_samples: int, columns: np.ndarray, block_size: int = 512
) -> Iterator[np.ndarray]:
    """RPKM blocks (samples x ``columns`` of the programme), each sample from its own seeded generator."""

    def make_block(samples: np.ndarray) -> np.ndarray:
        z, eps = _draws(seed, stream, samples, programme.n_genes)
        eps *= programme.noise_sd
        eps += programme.expression(z)
        return np.take(programme.rpkm(eps), columns, axis=1).astype(np.float32, copy=False)

    return _in_parallel(make_block, _sample_blocks(n_samples, block_size))


def _rnaseq(landmark_map, target_map, n_samples: int, extra_genes: int, seed: int, stream: int):
    """Shared set-up of the RNA-seq writers: the annotated genes, the programme and the sample-id generator."""
    _check(n_samples, extra_genes, "extra_genes")
    genes = _MapGenes.of(landmark_map, target_map)
    names = np.random.default_rng([seed, _NAMES, stream])
    rows = _rnaseq_genes(genes, extra_genes, names)
    programme = _Programme(len(genes.ensembl_ids), extra_genes, seed)
    return rows, programme, names


def _geuvadis_sample_ids(n: int, rng: np.random.Generator) -> list[str]:
    """1000 Genomes ids: ``HG00096``-style first, then ``NA06984``-style, sorted, unique."""
    hg = [f"HG{i:05d}" for i in range(96, 4_000)]
    na = [f"NA{i:05d}" for i in range(6_984, 21_000)]
    pool = hg + na
    if n > len(pool):
        raise ValueError(f"n_samples={n} is more than the {len(pool)} 1000 Genomes-style ids available")
    return [pool[i] for i in np.sort(rng.choice(len(pool), size=n, replace=False))]


def write_geuvadis_like(
    path: str | os.PathLike,
    landmark_map: GeneMap | str | os.PathLike,
    target_map: GeneMap | str | os.PathLike,
    n_samples: int,
    *,
    extra_genes: int = 50,
    seed: int = 0,
) -> Path:
    """Write a tab-separated file laid out like GEUVADIS ``GD462.GeneQuantRPKM.50FN.samplename.resk10.txt``.

    Header ``TargetID  Gene_Symbol  Chr  Coord  <sample ids (HG00096, NA06984, ...)>``, then one row per gene:
    a versioned Ensembl id (each distinct Ensembl id of the two maps once, plus ``extra_genes`` others), its
    symbol, chromosome (1-22, X), coordinate and one RPKM value per sample (non-negative, linear scale, many
    exact zeros). The table is small (hundreds of samples), so it is built in memory. Returns ``path``.
    """
    rows, programme, names = _rnaseq(landmark_map, target_map, n_samples, extra_genes, seed, _GEUVADIS)
    sample_ids = _geuvadis_sample_ids(n_samples, names)
    values = np.concatenate(list(_rnaseq_blocks(programme, seed, _GEUVADIS, n_samples, rows.gene)), axis=0).T
    with atomic_path(path) as tmp, open(tmp, "w") as out:
        out.write("\t".join(["TargetID", "Gene_Symbol", "Chr", "Coord", *sample_ids]) + "\n")
        for i, row in enumerate(values):
            cells = [rows.ids[i], rows.symbols[i], rows.chromosomes[i], str(rows.coords[i])]
            out.write("\t".join(cells + ["0" if v == 0 else f"{v:.6g}" for v in row.tolist()]) + "\n")
    return Path(path)


def _gtex_sample_ids(n: int, rng: np.random.Generator) -> list[str]:
    """GTEx ids ``GTEX-<donor>-<tissue site>-SM-<aliquot>``: several samples per donor, unique aliquots."""
    alphabet = np.array(list("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"))
    donors = ["".join(rng.choice(alphabet, size=rng.integers(4, 6))) for _ in range(max(1, n // 3))]
    first = int(rng.integers(36**5))
    out = []
    for i in range(n):
        aliquot, code = (first + 7_919 * i) % 36**5, ""
        for _ in range(5):
            aliquot, digit = divmod(aliquot, 36)
            code = alphabet[digit] + code
        out.append(f"GTEX-{donors[rng.integers(len(donors))]}-{rng.integers(1, 3300):04d}-SM-{code}")
    return out


def write_gtex_like(
    path: str | os.PathLike,
    landmark_map: GeneMap | str | os.PathLike,
    target_map: GeneMap | str | os.PathLike,
    n_samples: int,
    *,
    extra_genes: int = 50,
    seed: int = 0,
) -> Path:
    """Write a GCTX 1.0 file laid out like ``GTEx_RNASeq_RPKM_n2921x55993.gctx``; returns ``path``.

    The matrix is float32 samples x genes of RPKM values (non-negative, linear scale, many exact zeros);
    feature ids are versioned Ensembl ids (each distinct Ensembl id of the maps once, plus ``extra_genes``
    others) with gene symbols in ``/0/META/ROW/Description``; sample ids look like
    ``GTEX-1117F-0226-SM-5GZZ7``. Samples are generated and written in blocks.
    """
    rows, programme, names = _rnaseq(landmark_map, target_map, n_samples, extra_genes, seed, _GTEX)
    blocks = _rnaseq_blocks(programme, seed, _GTEX, n_samples, rows.gene)
    return write_gctx_blocks(
        path, _gtex_sample_ids(n_samples, names), rows.ids, blocks,
        feature_meta={"Description": rows.symbols},
        attrs={"source": "gexinfer fixture: synthetic data in the layout of GTEx_RNASeq_RPKM_n2921x55993.gctx", "seed": seed},
    )


def write_archs4_like(
    path: str | os.PathLike,
    landmark_map: GeneMap | str | os.PathLike,
    target_map: GeneMap | str | os.PathLike,
    n_samples: int,
    *,
    extra_genes: int = 50,
    seed: int = 0,
    genes_by_samples: bool = True,
    n_series: int = 3,
    single_cell_share: float = 0.2,
) -> Path:
    """Write an HDF5 file laid out like ARCHS4's gene-level counts (read by ``archs4py``).

    ``data/expression``: uint32 read counts, genes x samples (``genes_by_samples``, as published) or samples x
    genes; ``meta/genes``: ``ensembl_gene`` (unversioned) and ``symbol``, every distinct map gene once plus
    ``extra_genes`` others; ``meta/samples``: ``geo_accession`` (GSM ids), ``series_id`` (``n_series`` GEO
    series, round robin) and ``singlecellprobability`` (above 0.5 for about ``single_cell_share`` of the
    samples). Counts are the RNA-seq programme's values at a sequencing depth drawn per sample (0.5-2x), so
    that counts per million differ from raw counts. Returns ``path``.
    """
    import h5py

    rows, programme, names = _rnaseq(landmark_map, target_map, n_samples, extra_genes, seed, _ARCHS4)
    depth = names.uniform(0.5, 2.0, size=(n_samples, 1))
    ensembl = np.array([i.split(".")[0] for i in rows.ids], dtype=object)
    samples = [f"GSM{4000000 + i}" for i in range(n_samples)]
    single = np.where(names.random(n_samples) < single_cell_share, names.uniform(0.5, 1.0, n_samples),
                      names.uniform(0.0, 0.5, n_samples))
    strings = h5py.string_dtype()
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
        n_genes, width = len(rows.gene), min(n_samples, 512)
        expression = f.create_dataset("data/expression", dtype=np.uint32,
                                      shape=(n_genes, n_samples) if genes_by_samples else (n_samples, n_genes),
                                      chunks=(n_genes, width) if genes_by_samples else (width, n_genes))
        start = 0  # written block by block: a file of 10^5-10^6 profiles never lies in memory whole
        for values in _rnaseq_blocks(programme, seed, _ARCHS4, n_samples, rows.gene):
            stop = start + len(values)
            counts = np.round(values * depth[start:stop] * 20).astype(np.uint32)  # samples x genes
            if genes_by_samples:
                expression[:, start:stop] = counts.T
            else:
                expression[start:stop] = counts
            start = stop
        f.create_dataset("meta/genes/ensembl_gene", data=ensembl.astype(str).tolist(), dtype=strings)
        f.create_dataset("meta/genes/symbol", data=rows.symbols.astype(str).tolist(), dtype=strings)
        f.create_dataset("meta/samples/geo_accession", data=samples, dtype=strings)
        f.create_dataset("meta/samples/series_id", data=[f"GSE{90000 + i % n_series}" for i in range(n_samples)],
                         dtype=strings)
        f.create_dataset("meta/samples/singlecellprobability", data=single.astype(np.float32))
    return Path(path)
