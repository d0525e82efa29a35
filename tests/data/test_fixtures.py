import re

import h5py
import numpy as np
import pytest

from src.data.fixtures import write_geo_like, write_geuvadis_like, write_gtex_like
from src.data.genes import match_genes, read_gene_map, strip_version
from src.data.io.gctx import read_header, read_matrix, read_meta, write_gctx_blocks
from src.data.io.table import TableReader
from tests.conftest import SHARED

MAPS = SHARED / "dgex"
GPL96_PROBE = re.compile(r"\d+_(s_|x_)?at")
VERSIONED_ENSEMBL = re.compile(r"(ENSG\d{11}|ENSGR\d{10})\.\d+")  # map_tg.txt holds two ENSGR (PAR_Y) ids


def _small_maps(directory):
    """30 landmarks and 60 targets: 5 Ensembl ids in both maps, every 4th target measured by two probes."""
    lm = [f"LM{i}\tENSG{i:011d}\t{201000 + i}_at" for i in range(30)]
    tg = []
    for i in range(25, 85):
        probes = f"{202000 + i}_s_at" + (f",{203000 + i}_x_at" if i % 4 == 0 else "")
        tg.append(f"{'LM' if i < 30 else 'TG'}{i}\tENSG{i:011d}\t{probes}")
    (directory / "map_lm.txt").write_text("\n".join(lm) + "\n")
    (directory / "map_tg.txt").write_text("\n".join(tg) + "\n")
    return directory / "map_lm.txt", directory / "map_tg.txt"


@pytest.fixture(scope="module")
def maps(tmp_path_factory):
    """The D-GEX maps if present (943 landmarks, 9,520 targets), else small maps with the same features."""
    if (MAPS / "map_lm.txt").exists():
        paths = MAPS / "map_lm.txt", MAPS / "map_tg.txt"
    else:
        paths = _small_maps(tmp_path_factory.mktemp("maps"))
    return tuple(read_gene_map(p) for p in paths)


@pytest.fixture(scope="module")
def files(tmp_path_factory, maps):
    lm, tg = maps
    out = tmp_path_factory.mktemp("fixtures")
    return {
        "geo": write_geo_like(out / "bgedv2_QNORM.gctx", lm, tg, 120, extra_probes=40, duplicate_fraction=0.1),
        "geuvadis": write_geuvadis_like(out / "GD462.GeneQuantRPKM.50FN.samplename.resk10.txt", lm, tg, 30),
        "gtex": write_gtex_like(out / "GTEx_RNASeq_RPKM_n2921x55993.gctx", lm, tg, 120, extra_genes=20),
    }


def _map_probes(lm, tg):
    return set(lm.all_probes) | set(tg.all_probes)


def _map_ensembl(lm, tg):
    return set(lm.ensembl_ids) | set(tg.ensembl_ids)


# ---------------------------------------------------------------------------------------------- streaming writer


def test_streaming_writer_round_trips_uneven_blocks(tmp_path):
    matrix = np.random.default_rng(0).normal(size=(9, 4))  # float64 in, float32 stored
    sizes, seen = [3, 0, 5, 1], []
    blocks = (matrix[sum(sizes[:i]) : sum(sizes[: i + 1])] for i in range(len(sizes)))
    path = write_gctx_blocks(
        tmp_path / "s.gctx", [f"s{i}" for i in range(9)], list("abcd"), blocks, chunk_rows=4,
        sample_meta={"group": np.arange(9) % 2}, attrs={"note": "hi"}, progress=seen.append,
    )
    values, header = read_matrix(path, block_size=2)
    np.testing.assert_array_equal(values, matrix.astype(np.float32))
    assert header.dtype == np.float32 and list(header.feature_ids) == list("abcd")
    assert header.attrs == {"version": "GCTX1.0", "note": "hi"}
    assert list(read_meta(path, "sample")["group"]) == [0, 1] * 4 + [0]
    assert seen == sizes
    assert not list(tmp_path.glob(".*.tmp"))


@pytest.mark.parametrize("sizes", [[3, 4], [5, 6], [12]])
def test_streaming_writer_rejects_a_block_count_mismatch_and_leaves_no_file(tmp_path, sizes):
    blocks = (np.zeros((n, 2), np.float32) for n in sizes)
    with pytest.raises(ValueError, match="10"):
        write_gctx_blocks(tmp_path / "bad.gctx", [f"s{i}" for i in range(10)], ["a", "b"], blocks)
    assert list(tmp_path.iterdir()) == []


def test_streaming_writer_rejects_a_block_of_the_wrong_width(tmp_path):
    with pytest.raises(ValueError, match=r"\(rows, 2\)"):
        write_gctx_blocks(tmp_path / "bad.gctx", ["s1"], ["a", "b"], [np.zeros((1, 3))])
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------------------------------------- GEO


def test_geo_like_has_the_bgedv2_layout(files, maps):
    lm, tg = maps
    path = files["geo"]
    with h5py.File(path) as f:
        assert f.attrs["version"] in ("GCTX1.0", b"GCTX1.0")
        assert f["0/DATA/0/matrix"].dtype == np.float32
        assert f["0/META/ROW/id"].dtype.kind == "S" and f["0/META/COL/id"].dtype.kind == "S"  # fixed-length bytes
    header = read_header(path)
    probes = list(header.feature_ids)
    assert header.shape == (120, len(_map_probes(lm, tg)) + 40)
    assert _map_probes(lm, tg) <= set(probes)
    extras = set(probes) - _map_probes(lm, tg)
    assert len(extras) == 40 and all(GPL96_PROBE.fullmatch(p) for p in extras)
    position = {p: i for i, p in enumerate(probes)}
    assert np.any(np.diff([position[p] for p in lm.all_probes + tg.all_probes]) < 0)  # shuffled, not map order
    assert all(re.fullmatch(r"GSM\d{7}", s) for s in header.sample_ids)


def test_geo_like_values_look_like_log2_microarray_data_with_gene_structure(files, maps):
    lm, tg = maps
    values, header = read_matrix(files["geo"])
    assert 2.0 < values.min() < 5.0 and 11.0 < values.max() < 14.5
    # Probes of one gene follow the gene: the two probes of a multi-probe target correlate strongly.
    gene = next(p for p in tg.probes if len(p) > 1)
    pair = values[:, [list(header.feature_ids).index(p) for p in gene[:2]]]
    assert np.corrcoef(pair.T)[0, 1] > 0.8
    # A gene in both maps is measured by different probes that agree.
    both = next(e for e in lm.ensembl_ids if e in set(tg.ensembl_ids))
    genes = match_genes(header.feature_ids, [lm, tg]).apply(values)
    i, j = lm.ensembl_ids.index(both), len(lm) + tg.ensembl_ids.index(both)
    assert np.corrcoef(genes[:, i], genes[:, j])[0, 1] > 0.8


def test_geo_like_near_duplicates_are_recorded_and_close_to_their_originals(files, maps):
    values, header = read_matrix(files["geo"])
    duplicate_of = read_meta(files["geo"], "sample")["duplicate_of"]
    genes = match_genes(header.feature_ids, list(maps)).apply(values)
    duplicates = np.flatnonzero(duplicate_of >= 0)
    assert len(duplicates) == 12  # 10% of 120
    originals = duplicate_of[duplicates]
    assert np.all(originals < duplicates) and np.all(duplicate_of[originals] == -1)
    assert np.linalg.norm(genes[duplicates] - genes[originals], axis=1).max() < 1.0
    kept = genes[duplicate_of < 0].astype(np.float64)
    sq = (kept**2).sum(axis=1)
    distances2 = (sq[:, None] + sq[None] - 2 * kept @ kept.T)[np.triu_indices(len(kept), 1)]
    assert distances2.min() > 2.0**2  # distinct samples are far apart


def test_geo_like_is_deterministic_whatever_the_block_size(tmp_path):
    lm, tg = _small_maps(tmp_path)  # maps given as paths
    a = write_geo_like(tmp_path / "a.gctx", lm, tg, 25, extra_probes=5, block_size=4)
    b = write_geo_like(tmp_path / "b.gctx", lm, tg, 25, extra_probes=5, block_size=100)
    c = write_geo_like(tmp_path / "c.gctx", lm, tg, 25, extra_probes=5, seed=1)
    (va, ha), (vb, hb), (vc, _) = read_matrix(a), read_matrix(b), read_matrix(c)
    assert list(ha.feature_ids) == list(hb.feature_ids) and list(ha.sample_ids) == list(hb.sample_ids)
    np.testing.assert_allclose(va, vb, rtol=0, atol=1e-5)
    assert not np.allclose(va, vc)


# ---------------------------------------------------------------------------------------------- RNA-seq


def test_geuvadis_like_has_the_gd462_layout(files, maps):
    lm, tg = maps
    lines = files["geuvadis"].read_text().splitlines()
    header = lines[0].split("\t")
    assert header[:4] == ["TargetID", "Gene_Symbol", "Chr", "Coord"] and len(header) == 4 + 30
    assert all(re.fullmatch(r"(HG|NA)\d{5}", s) for s in header[4:])
    rows = [line.split("\t") for line in lines[1:]]
    assert all(len(r) == len(header) for r in rows)
    assert all(VERSIONED_ENSEMBL.fullmatch(r[0]) for r in rows)
    assert {r[2] for r in rows} <= {str(c) for c in range(1, 23)} | {"X"}
    assert all(r[3].isdigit() for r in rows)
    ensembl = [strip_version(r[0]) for r in rows]
    assert len(set(ensembl)) == len(ensembl) == len(_map_ensembl(lm, tg)) + 50  # each id once
    symbol = dict(zip(lm.ensembl_ids + tg.ensembl_ids, lm.symbols + tg.symbols))
    assert all(symbol[e] == r[1] for e, r in zip(ensembl, rows) if e in symbol)

    table = TableReader(files["geuvadis"])
    assert table.orientation == "features_in_rows" and list(table.sample_ids) == header[4:]
    assert table.values.shape == (30, len(rows))
    _check_rpkm(table.values)
    assert match_genes(table.feature_ids, [lm, tg]).id_type == "ensembl"


def test_gtex_like_has_the_gtex_layout(files, maps):
    lm, tg = maps
    path = files["gtex"]
    with h5py.File(path) as f:
        assert f["0/DATA/0/matrix"].dtype == np.float32 and f["0/META/ROW/id"].dtype.kind == "S"
    values, header = read_matrix(path)
    assert header.shape == (120, len(_map_ensembl(lm, tg)) + 20)
    assert all(re.fullmatch(r"GTEX-[0-9A-Z]{4,5}-\d{4}-SM-[0-9A-Z]{5}", s) for s in header.sample_ids)
    assert all(VERSIONED_ENSEMBL.fullmatch(f) for f in header.feature_ids)
    ensembl = [strip_version(f) for f in header.feature_ids]
    assert _map_ensembl(lm, tg) <= set(ensembl)
    description = read_meta(path)["Description"]
    symbol = dict(zip(lm.ensembl_ids + tg.ensembl_ids, lm.symbols + tg.symbols))
    assert all(symbol[e] == d for e, d in zip(ensembl, description) if e in symbol)
    _check_rpkm(values)


def _check_rpkm(values):
    """RPKM: non-negative, linear scale (a long right tail), many exact zeros."""
    assert values.min() == 0.0 and np.isfinite(values).all()
    assert 0.05 < (values == 0).mean() < 0.6
    assert values.max() > 100.0


def test_rnaseq_files_follow_the_geo_gene_programme(files, maps):
    """Genes that co-vary in the GEO-like file co-vary in the GTEx-like one (a monotone transform of it)."""
    lm = maps[0]
    geo, geo_header = read_matrix(files["geo"])
    gtex, gtex_header = read_matrix(files["gtex"])
    n = min(60, len(lm))
    a = match_genes(geo_header.feature_ids, [lm]).apply(geo)[:, :n]
    b = np.log2(1.0 + match_genes(gtex_header.feature_ids, [lm]).apply(gtex)[:, :n])
    upper = np.triu_indices(n, 1)
    corr_a, corr_b = np.corrcoef(a.T)[upper], np.corrcoef(b.T)[upper]
    ok = np.isfinite(corr_a) & np.isfinite(corr_b)
    assert np.corrcoef(corr_a[ok], corr_b[ok])[0, 1] > 0.5
