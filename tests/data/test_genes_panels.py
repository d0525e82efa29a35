"""Incomplete gene panels: id detection by most genes found, allow_missing, missing-gene errors, panel files."""

import re

import numpy as np
import pytest

from src.data.genes import GeneColumns, match_genes, read_gene_map, read_panel
from src.data.io.gctx import read_matrix
from tests.conftest import SHARED

MAPS = SHARED / "dgex"
HINT = "run prediction with missing_landmarks=impute to use an incomplete panel"


@pytest.fixture(scope="module")
def maps():
    if not (MAPS / "map_lm.txt").exists():
        pytest.skip(f"D-GEX gene maps not found in {MAPS}")
    return read_gene_map(MAPS / "map_lm.txt"), read_gene_map(MAPS / "map_tg.txt")


@pytest.fixture(scope="module")
def gpl96_matrix():
    from tests.conftest import GPL96

    if not GPL96.exists():
        pytest.skip(f"reference data {GPL96} not found")
    values, header = read_matrix(GPL96)
    return values, [str(f) for f in header.feature_ids]


def test_half_the_landmark_probes_of_real_gpl96_data(maps, gpl96_matrix):
    landmarks, _ = maps
    values, features = gpl96_matrix
    rng = np.random.default_rng(7)
    probes = [p[0] for p in landmarks.probes]
    kept = set(rng.choice(probes, size=len(probes) // 2, replace=False).tolist())
    dropped = set(probes) - kept
    columns = [i for i, f in enumerate(features) if f not in dropped]
    reduced_ids = [features[i] for i in columns]
    reduced = values[:, columns]
    assert len(kept) == 471 and len(reduced_ids) == len(features) - 472

    with pytest.raises(ValueError) as error:
        match_genes(reduced_ids, [landmarks], where="reduced.gctx", hint=HINT)
    message = str(error.value)
    assert re.search(r"reduced.gctx: 472 probes of .*map_lm.txt are missing \(first: ", message)
    assert "471 of 943 genes of the map were found" in message and message.endswith(HINT)
    first = message.split("(first: ")[1].split(")")[0].split(", ")
    assert set(first) <= dropped and len(first) == 5

    genes = match_genes(reduced_ids, [landmarks], allow_missing=True)
    assert genes.id_type == "probe" and genes.n_genes == 943
    assert genes.present.dtype == bool and genes.present.sum() == len(kept)
    assert genes.present.tolist() == [p in kept for p in probes]
    assert set(genes.missing(probes)) == dropped
    out = genes.apply(reduced)
    assert out.shape == (57, 943) and out.dtype == np.float32
    assert np.isnan(out[:, ~genes.present]).all() and np.isfinite(out[:, genes.present]).all()
    full = match_genes(features, [landmarks]).apply(values)
    np.testing.assert_array_equal(out[:, genes.present], full[:, genes.present])

    # compact() carries ``present`` along and gives the same values from just the needed columns.
    needed, remap = genes.compact()
    assert len(needed) == len(kept)
    np.testing.assert_array_equal(remap.present, genes.present)
    np.testing.assert_array_equal(remap.apply(reduced[:, needed]), out)


def test_the_old_half_rule_case_now_names_the_missing_probes(maps, gpl96_matrix):
    """5,000 probes holding 461 of the 943 landmark probes: probes win, and the error says which."""
    landmarks, _ = maps
    _, features = gpl96_matrix
    probes = [p[0] for p in landmarks.probes]
    rng = np.random.default_rng(1)
    kept = rng.choice(probes, size=461, replace=False).tolist()
    others = [f for f in features if f not in set(probes)][: 5000 - 461]
    with pytest.raises(ValueError, match=r"482 probes of .*map_lm.txt are missing .*461 of 943 genes"):
        match_genes(others + kept, [landmarks])
    assert match_genes(others + kept, [landmarks], allow_missing=True).id_type == "probe"


def test_a_multi_probe_target_with_one_probe_missing_averages_the_rest(maps, gpl96_matrix):
    landmarks, targets = maps
    values, features = gpl96_matrix
    g = next(i for i, p in enumerate(targets.probes) if len(p) >= 3)
    gone = targets.probes[g][0]
    columns = [i for i, f in enumerate(features) if f != gone]
    ids = [features[i] for i in columns]
    with pytest.raises(ValueError, match=rf"1 probes of .*map_tg.txt are missing \(first: {gone}\); 9519 of 9520"):
        match_genes(ids, [landmarks, targets])
    genes = match_genes(ids, [landmarks, targets], allow_missing=True)
    assert genes.present.all() and genes.id_type == "probe"
    assert genes.counts[len(landmarks) + g] == len(targets.probes[g]) - 1
    out = genes.apply(values[:, columns])
    rest = [features.index(p) for p in targets.probes[g][1:]]
    np.testing.assert_allclose(out[:, len(landmarks) + g], values[:, rest].mean(axis=1), rtol=1e-6)


def test_ensembl_ids_with_part_of_the_landmarks(maps):
    landmarks, _ = maps
    ids = [f"{e}.{i % 7 + 1}" for i, e in enumerate(landmarks.ensembl_ids)]  # versioned, as GTEx writes them
    keep = np.arange(len(ids)) % 3 != 0
    features = ["ENSG99999999999.1"] + [e for e, k in zip(ids, keep) if k]
    values = np.arange(4 * len(features), dtype=np.float32).reshape(4, -1)

    with pytest.raises(ValueError) as error:
        match_genes(features, [landmarks], where="gtex.gct", hint=HINT)
    message = str(error.value)
    assert re.search(rf"gtex.gct: {(~keep).sum()} Ensembl gene ids of .*map_lm.txt are missing "
                     rf"\(first: {landmarks.ensembl_ids[0]}, {landmarks.ensembl_ids[3]}", message)
    assert f"{keep.sum()} of 943 genes of the map were found" in message and message.endswith(HINT)

    genes = match_genes(features, [landmarks], allow_missing=True)
    assert genes.id_type == "ensembl" and genes.present.tolist() == keep.tolist()
    assert genes.missing(landmarks.ensembl_ids) == [e for e, k in zip(landmarks.ensembl_ids, keep) if not k]
    out = genes.apply(values)
    assert np.isnan(out[:, ~keep]).all()
    np.testing.assert_array_equal(out[:, keep], values[:, 1:])
    with pytest.raises(ValueError, match=r"nope.gct: none of the 943 genes of .*map_lm.txt is in the file; "
                                         r"looked for Ensembl gene ids \(id_type=ensembl\)"):
        match_genes(["ENSG99999999999"], [landmarks], "ensembl", "nope.gct", allow_missing=True)


def _toy_map(tmp_path):
    path = tmp_path / "map.txt"
    path.write_text("A\tENSG1\tp1,p2\nB\tENSG2\tp3\nC\tENSG3\tp4\n")
    return read_gene_map(path)


def test_auto_detection_counts_genes_and_ties_go_to_probes(tmp_path):
    gene_map = _toy_map(tmp_path)
    # One probe-level gene (B) against two Ensembl genes: Ensembl wins, and names the missing id.
    assert match_genes(["p3", "ENSG1.2", "ENSG2"], [gene_map], allow_missing=True).id_type == "ensembl"
    with pytest.raises(ValueError, match=r"1 Ensembl gene ids of .*map.txt are missing \(first: ENSG3\); 2 of 3"):
        match_genes(["p3", "ENSG1.2", "ENSG2"], [gene_map])
    # A's probes only count when both are there: p1 alone finds no probe-level gene.
    assert match_genes(["p1", "ENSG2"], [gene_map], allow_missing=True).id_type == "ensembl"
    # Tie (one gene each way) -> probes.
    genes = match_genes(["p3", "ENSG1"], [gene_map], allow_missing=True)
    assert genes.id_type == "probe" and genes.present.tolist() == [False, True, False]
    assert genes.missing(gene_map.symbols) == ["A", "C"]
    np.testing.assert_array_equal(genes.apply([[1.0, 2.0]]), [[np.nan, 1.0, np.nan]])
    # Nothing found at all: the error says neither id type matched.
    with pytest.raises(ValueError, match=r"x.txt: 4 probes .* 0 of 3 genes .*neither the probes, the Ensembl"):
        match_genes(["q1", "q2"], [gene_map], where="x.txt")
    with pytest.raises(ValueError, match=r"x.txt: none of the 3 genes of .*map.txt is in the file; neither"):
        match_genes(["q1", "q2"], [gene_map], where="x.txt", allow_missing=True)


def test_allow_missing_on_probes_averages_the_present_ones_and_keeps_ambiguity_an_error(tmp_path):
    gene_map = _toy_map(tmp_path)
    values = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    genes = match_genes(["p2", "p4", "p3"], [gene_map], "probe", allow_missing=True)
    assert genes.present.all() and genes.counts.tolist() == [1, 1, 1]
    np.testing.assert_array_equal(genes.apply(values), [[1, 3, 2], [4, 6, 5]])
    genes = match_genes(["p2", "p1", "zz"], [gene_map], "probe", allow_missing=True)
    np.testing.assert_array_equal(genes.apply(values), [[1.5, np.nan, np.nan], [4.5, np.nan, np.nan]])
    assert genes.apply(values).dtype == np.float32
    with pytest.raises(ValueError, match=r"1 probes of .*map.txt occur more than once \(first: p3\)"):
        match_genes(["p3", "p3", "p4"], [gene_map], "probe", allow_missing=True)
    with pytest.raises(ValueError, match=r"none of the 3 genes .*looked for probes \(id_type=probe\)"):
        match_genes(["ENSG1", "ENSG2", "ENSG3"], [gene_map], "probe", allow_missing=True)


def test_complete_matches_are_unchanged_and_present_defaults_to_all_true(tmp_path):
    gene_map = _toy_map(tmp_path)
    genes = match_genes(["p4", "p3", "p2", "p1"], [gene_map])
    assert genes.present.tolist() == [True, True, True] and genes.complete and genes.missing(["A", "B", "C"]) == []
    assert genes.columns.tolist() == [3, 2, 1, 0] and genes.starts.tolist() == [0, 2, 3]
    made = GeneColumns(np.array([3, 2, 1, 0]), np.array([0, 2, 3]), "probe")
    assert made.present.tolist() == [True, True, True]
    needed, remap = made.compact()
    assert needed.tolist() == [0, 1, 2, 3] and remap.present.all()
    with pytest.raises(ValueError, match="one flag per gene"):
        GeneColumns(np.array([0]), np.array([0, 1]), "probe", np.array([True, True]))
    with pytest.raises(ValueError, match="expected 3 gene ids"):
        genes.missing(["A"])


def test_read_panel(tmp_path):
    path = tmp_path / "panel.txt"
    path.write_text("# my landmark panel\n\n202954_at\tUBE2C\n  201763_s_at  \n# more\n202954_at\n200981_x_at\r\n")
    assert read_panel(path) == ["202954_at", "201763_s_at", "200981_x_at"]
    with pytest.raises(FileNotFoundError, match=r"nothere.txt: panel file not found"):
        read_panel(tmp_path / "nothere.txt")
    (tmp_path / "empty.txt").write_text("# only a comment\n\n")
    with pytest.raises(ValueError, match=r"empty.txt: the panel file holds no ids"):
        read_panel(tmp_path / "empty.txt")


def test_gene_symbols_are_accepted_wherever_ensembl_ids_are(tmp_path):
    gene_map = _toy_map(tmp_path)
    genes = match_genes(["a", "b", "C", "other"], [gene_map])  # symbols, any case: the most genes found
    assert genes.id_type == "symbol" and genes.complete
    with pytest.raises(ValueError, match=r"1 gene symbols of .*map.txt are missing \(first: C\)"):
        match_genes(["A", "B"], [gene_map], id_type="symbol")
