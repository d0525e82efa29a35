"""The mapped-matrix source: every step against a direct computation, the cache, and bad input."""

import os

import h5py
import numpy as np
import pytest

from src.data.genes import read_gene_map
from src.data.io.gctx import write_gctx
from src.data.sources.mapped import MappedMatrixSource

PROBES = ["p1_at", "p2_at", "p3_at", "p4_s_at", "p5_at", "p6_x_at", "p7_at", "extra_at"]


@pytest.fixture
def maps(tmp_path):
    lm = tmp_path / "map_lm.txt"
    tg = tmp_path / "map_tg.txt"
    lm.write_text("A\tENSG01\tp1_at\nB\tENSG02\tp2_at\n")
    tg.write_text("C\tENSG03\tp3_at,p4_s_at\nD\tENSG04\tp5_at\nE\tENSG05\tp6_x_at,p7_at\n")
    return lm, tg


def _gctx(path, values, samples=None, features=PROBES):
    samples = samples or [f"GSM{i}" for i in range(len(values))]
    return write_gctx(path, np.asarray(values, dtype=np.float32), samples, features)


def _source(path, maps, tmp_path, **kw):
    return MappedMatrixSource(path, *maps, tmp_path / "cache", **kw)


def test_probes_are_averaged_into_genes_in_map_order_and_cached(tmp_path, maps):
    values = np.random.default_rng(0).normal(8, 2, size=(7, len(PROBES)))
    path = _gctx(tmp_path / "geo.gctx", values)
    source = _source(path, maps, tmp_path, id_type="probe")
    source.prepare()
    data = source.load()
    np.testing.assert_allclose(data.landmarks, values[:, [0, 1]], rtol=1e-6)
    expected = np.stack([values[:, 2:4].mean(1), values[:, 4], values[:, 5:7].mean(1)], axis=1)
    np.testing.assert_allclose(data.targets, expected, rtol=1e-6)
    assert data.landmark_ids == ["ENSG01", "ENSG02"] and data.target_ids == ["ENSG03", "ENSG04", "ENSG05"]
    assert data.sample_ids == [f"GSM{i}" for i in range(7)]
    cache = source.cache_path()
    stamp = cache.stat().st_mtime_ns
    source.prepare()  # same inputs: the cache is reused, not rewritten
    assert cache.stat().st_mtime_ns == stamp
    maps[1].write_text(maps[1].read_text() + "F\tENSG06\textra_at\n")
    assert source.cache_path() != cache  # a changed map makes a new cache
    assert source.load().targets.shape == (7, 4)


def test_gene_level_ids_match_without_version_and_log2_applies(tmp_path, maps):
    ids = ["ENSG01.3", "ENSG02.1", "ENSG03.7", "ENSG04.2", "ENSG05.11", "ENSG99.1"]
    rpkm = np.random.default_rng(1).gamma(1.0, 5.0, size=(5, len(ids)))
    rpkm[0, 1] = 0.0
    path = _gctx(tmp_path / "gtex.gctx", rpkm, features=ids)
    data = _source(path, maps, tmp_path, log2=True).load()
    np.testing.assert_allclose(data.landmarks, np.log2(rpkm[:, :2] + 1), rtol=1e-5)
    np.testing.assert_allclose(data.targets, np.log2(rpkm[:, 2:5] + 1), rtol=1e-5)
    assert data.landmarks[0, 1] == 0.0


def test_duplicate_removal_keeps_the_first_of_each_near_group(tmp_path, maps):
    rng = np.random.default_rng(2)
    values = rng.normal(8, 2, size=(12, len(PROBES)))
    values[5] = values[1] + 0.01  # near-duplicate of sample 1
    values[9] = values[3]  # exact duplicate of sample 3
    path = _gctx(tmp_path / "geo.gctx", values)
    data = _source(path, maps, tmp_path, remove_duplicates=True, duplicate_clusters=2).load()
    assert data.sample_ids == [f"GSM{i}" for i in range(12) if i not in (5, 9)]
    assert data.info["duplicates_removed"] == 2


def _no_cache_left(tmp_path):
    cache = tmp_path / "cache"
    return not cache.exists() or not any(cache.iterdir())


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda v: v.__setitem__((2, 3), np.nan), r"geo.gctx: 1 non-finite .* sample GSM2 feature p4_s_at"),
        (lambda v: v.__setitem__((4, 0), np.inf), r"geo.gctx: 1 non-finite .* sample GSM4 feature p1_at"),
    ],
)
def test_non_finite_values_fail_naming_file_sample_and_feature_and_leave_no_cache(tmp_path, maps, make, message):
    values = np.random.default_rng(3).normal(8, 2, size=(6, len(PROBES)))
    make(values)
    source = _source(_gctx(tmp_path / "geo.gctx", values), maps, tmp_path)
    with pytest.raises(ValueError, match=message):
        source.prepare()
    assert _no_cache_left(tmp_path)


def test_bad_files_fail_clearly_and_leave_no_cache(tmp_path, maps):
    values = np.random.default_rng(4).normal(8, 2, size=(6, len(PROBES)))
    missing = _gctx(tmp_path / "missing.gctx", values[:, :-2], features=PROBES[:-2] )
    with pytest.raises(ValueError, match=r"missing.gctx: 1 probes of .*map_tg.txt are missing \(first: p7_at\).*"
                                         r"to train on the genes present, pass data.source.strict_genes=false"):
        _source(missing, maps, tmp_path, id_type="probe", strict_genes=True).prepare()
    dup = _gctx(tmp_path / "dup.gctx", values, samples=["GSM1", "GSM2", "GSM1", "GSM3", "GSM4", "GSM5"])
    with pytest.raises(ValueError, match=r"dup.gctx: 1 sample ids occur more than once \(first: GSM1\)"):
        _source(dup, maps, tmp_path).prepare()
    dup_probe = _gctx(tmp_path / "dupf.gctx", values, features=PROBES[:-1] + ["p1_at"])
    with pytest.raises(ValueError, match=r"dupf.gctx: 1 feature ids occur more than once \(first: p1_at\)"):
        _source(dup_probe, maps, tmp_path).prepare()
    empty = tmp_path / "empty.gctx"
    empty.write_bytes(b"")
    with pytest.raises(ValueError, match=r"empty.gctx: the file is empty"):
        _source(empty, maps, tmp_path).prepare()
    big = _gctx(tmp_path / "big.gctx", np.random.default_rng(5).normal(8, 2, size=(4000, len(PROBES))))
    truncated = tmp_path / "truncated.gctx"
    truncated.write_bytes(big.read_bytes()[: os.path.getsize(big) // 2])
    with pytest.raises(ValueError, match=r"truncated.gctx: .*(truncated|not a readable HDF5)"):
        _source(truncated, maps, tmp_path).prepare()
    assert _no_cache_left(tmp_path)


def test_negative_values_with_log2_and_ambiguous_gene_ids_fail(tmp_path, maps):
    ids = ["ENSG01.3", "ENSG02.1", "ENSG03.7", "ENSG04.2", "ENSG05.11"]
    values = np.ones((3, 5))
    values[1, 2] = -1.0
    path = _gctx(tmp_path / "neg.gctx", values, features=ids)
    with pytest.raises(ValueError, match=r"neg.gctx: 1 negative values .* sample GSM1 feature ENSG03.7.*log2"):
        _source(path, maps, tmp_path, log2=True).prepare()
    twice = _gctx(tmp_path / "twice.gctx", np.ones((3, 6)), features=ids + ["ENSG04.3"])
    with pytest.raises(ValueError, match=r"twice.gctx: 1 Ensembl gene ids of .*map_tg.txt occur more than once"):
        _source(twice, maps, tmp_path).prepare()


def test_an_interrupted_cache_write_leaves_nothing_a_later_run_would_trust(tmp_path, maps, monkeypatch):
    path = _gctx(tmp_path / "geo.gctx", np.random.default_rng(6).normal(8, 2, size=(6, len(PROBES))))
    source = _source(path, maps, tmp_path)

    def crash(self, *args, **kwargs):
        raise KeyboardInterrupt  # as if the job were stopped while the cache was being written

    monkeypatch.setattr(h5py.Dataset, "__setitem__", crash)
    with pytest.raises(KeyboardInterrupt):
        source.prepare()
    monkeypatch.undo()
    assert _no_cache_left(tmp_path)
    assert source.load().landmarks.shape == (6, 2)


def test_real_maps_on_real_gpl96(gpl96, tmp_path):
    from tests.conftest import SHARED

    maps = SHARED / "dgex" / "map_lm.txt", SHARED / "dgex" / "map_tg.txt"
    data = MappedMatrixSource(gpl96, *maps, tmp_path).load()
    assert data.landmarks.shape == (57, 943) and data.targets.shape == (57, 9520)
    assert data.info["id_type"] == "probe"
    assert data.landmark_ids == read_gene_map(maps[0]).ensembl_ids


def test_a_corrupted_cache_is_named_with_the_fix(tmp_path, maps):
    path = _gctx(tmp_path / "geo.gctx", np.random.default_rng(7).normal(8, 2, size=(6, len(PROBES))))
    source = _source(path, maps, tmp_path)
    source.prepare()
    cache = source.cache_path()
    cache.write_bytes(cache.read_bytes()[:200])  # e.g. a disk that filled up after the rename
    with pytest.raises(ValueError, match=r"geo_.*\.h5: unreadable data cache .*delete it"):
        source.load()


def _gene_maps(tmp_path, n_landmarks=20, n_targets=10):
    lm, tg = tmp_path / "lm.txt", tmp_path / "tg.txt"
    lm.write_text("".join(f"L{i}\tENSG1{i:04d}\tl{i}_at\n" for i in range(n_landmarks)))
    tg.write_text("".join(f"T{i}\tENSG2{i:04d}\tt{i}_at\n" for i in range(n_targets)))
    return lm, tg


def test_absent_genes_are_left_out_recorded_and_named(tmp_path, caplog):
    lm, tg = _gene_maps(tmp_path)
    landmarks, targets = read_gene_map(lm), read_gene_map(tg)
    keep_lm = [e for i, e in enumerate(landmarks.ensembl_ids) if i != 3]  # one landmark of 20 absent (95%)
    keep_tg = [e for i, e in enumerate(targets.ensembl_ids) if i not in (0, 7)]  # two targets of 10 absent
    features = keep_tg + keep_lm  # any order
    values = np.random.default_rng(7).gamma(2.0, 3.0, size=(8, len(features)))
    path = _gctx(tmp_path / "rnaseq.gctx", values, features=features)
    with caplog.at_level("WARNING"):
        data = _source(path, (lm, tg), tmp_path, log2=True).load()
    assert data.landmark_ids == keep_lm and data.target_ids == keep_tg
    column = {f: i for i, f in enumerate(features)}
    np.testing.assert_allclose(data.landmarks, np.log2(values[:, [column[e] for e in keep_lm]] + 1), rtol=1e-5)
    dropped = data.info["genes_dropped"]
    assert dropped["landmarks"] == {"count": 1, "symbols": ["L3"], "ids": ["ENSG10003"]}
    assert dropped["targets"]["count"] == 2 and dropped["targets"]["symbols"] == ["T0", "T7"]
    assert data.info["landmark_symbols"] == [f"L{i}" for i in range(20) if i != 3]
    assert "1 of the 20 landmark genes of lm.txt are not in rnaseq.gctx and are left out (first: L3 (ENSG10003))" in caplog.text
    with pytest.raises(ValueError, match=r"1 Ensembl gene ids of .*lm.txt are missing \(first: ENSG10003\)"):
        _source(path, (lm, tg), tmp_path, log2=True, strict_genes=True).prepare()


def test_too_few_genes_are_refused_with_a_limit_that_works_when_pasted(tmp_path):
    lm, tg = _gene_maps(tmp_path)
    landmarks, targets = read_gene_map(lm), read_gene_map(tg)
    features = landmarks.ensembl_ids[:15] + targets.ensembl_ids  # 15 of 20 landmarks (75%)
    path = _gctx(tmp_path / "small.gctx", np.ones((5, len(features))), features=features)
    with pytest.raises(ValueError) as err:
        _source(path, (lm, tg), tmp_path).prepare()
    message = str(err.value)
    assert "only 15 of the 20 landmark genes" in message and "75.0%" in message and "expected at least 90%" in message
    fix = message.rsplit(": ", 1)[1]
    assert fix == "data.source.min_gene_fraction=0.75"
    data = _source(path, (lm, tg), tmp_path, min_gene_fraction=float(fix.split("=")[1])).load()
    assert len(data.landmark_ids) == 15


def test_sample_annotations_of_the_file_and_a_design_file_reach_the_data(tmp_path):
    lm, tg = _gene_maps(tmp_path, 2, 2)
    ids = read_gene_map(lm).ensembl_ids + read_gene_map(tg).ensembl_ids
    table = tmp_path / "atlas.tsv"
    samples = ["British, HG00096", "Yoruba, NA18486", "Tuscan, NA20508"]
    rows = [f"{e}\tG{i}\t" + "\t".join(str(i + j + 1) for j in range(3)) for i, e in enumerate(ids)]
    table.write_text("# Expression Atlas\nGene ID\tGene Name\t" + "\t".join(samples) + "\n" + "\n".join(rows) + "\n")
    design = tmp_path / "design.tsv"
    design.write_text("Run\tSample Characteristic[individual]\tSample Characteristic[sex]\n"
                      "ERR1\tNA20508\tfemale\nERR2\tHG00096\tmale\nERR3\tNA18486\tfemale\n")
    data = _source(table, (lm, tg), tmp_path, sample_annotations=design).load()
    assert data.sample_ids == ["HG00096", "NA18486", "NA20508"]
    assert data.sample_annotations["sex"] == ["male", "female", "female"]
    assert "British" in next(v for v in data.sample_annotations.values() if v[0] != "male")


def test_on_gene_level_data_a_target_that_is_also_a_landmark_gene_is_left_out_and_on_probes_kept(tmp_path, caplog):
    """D-GEX's maps list 445 genes twice (one probe a landmark, another a target). On probe data both are
    measured separately and stay; on gene-level data the "target" is the landmark's own column, a measured
    input, so it is left out (logged, recorded), or its prediction would count copying as inference."""
    lm, tg = tmp_path / "map_lm.txt", tmp_path / "map_tg.txt"
    lm.write_text("A\tENSG01\tp1_at\nB\tENSG02\tp2_at\n")
    tg.write_text("A\tENSG01\tp3_at\nD\tENSG04\tp5_at\n")  # A again, through another probe
    values = np.random.default_rng(3).normal(8, 2, size=(6, 4))
    probes = _source(_gctx(tmp_path / "probes.gctx", values, features=["p1_at", "p2_at", "p3_at", "p5_at"]), (lm, tg),
                     tmp_path, id_type="probe").load()
    assert probes.target_ids == ["ENSG01", "ENSG04"]
    caplog.set_level("WARNING", logger="src.data.sources.mapped")
    genes = _source(_gctx(tmp_path / "genes.gctx", values, features=["ENSG01", "ENSG02", "ENSG03", "ENSG04"]), (lm, tg),
                    tmp_path, id_type="ensembl").load()
    assert genes.target_ids == ["ENSG04"] and genes.landmark_ids == ["ENSG01", "ENSG02"]
    np.testing.assert_allclose(genes.targets[:, 0], values[:, 3], rtol=1e-6)
    assert genes.info["genes_dropped"]["targets_measured_as_landmarks"] == {"count": 1, "symbols": ["A"], "ids": ["ENSG01"]}
    assert "1 of the 2 target genes of map_tg.txt read the same column" in caplog.text
