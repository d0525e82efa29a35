import numpy as np
import pytest

from src.data.genes import probes_to_genes, read_gene_map
from src.data.io.gctx import read_matrix
from tests.conftest import SHARED

MAPS = SHARED / "dgex"


@pytest.fixture
def maps():
    if not (MAPS / "map_lm.txt").exists():
        pytest.skip(f"D-GEX gene maps not found in {MAPS}")
    return read_gene_map(MAPS / "map_lm.txt"), read_gene_map(MAPS / "map_tg.txt")


def test_dgex_maps_have_the_papers_gene_counts(maps):
    landmarks, targets = maps
    assert (len(landmarks), len(targets)) == (943, 9520)
    assert landmarks.symbols[0] == "UBE2C" and landmarks.probes[0] == ["202954_at"]
    assert len(targets.all_probes) == 15744
    assert any(len(p) > 1 for p in targets.probes)


def test_probe_averaging_on_real_gpl96_data_matches_a_direct_computation(maps, gpl96):
    _, targets = maps
    values, header = read_matrix(gpl96, targets.all_probes)
    genes = probes_to_genes(values, targets.all_probes, targets)
    assert genes.shape == (57, 9520)
    g = next(i for i, p in enumerate(targets.probes) if len(p) >= 3)
    direct, _ = read_matrix(gpl96, targets.probes[g])
    np.testing.assert_allclose(genes[:, g], direct.mean(axis=1), rtol=1e-6)


def test_missing_probes_and_malformed_maps_fail_clearly(tmp_path):
    path = tmp_path / "map.txt"
    path.write_text("A\tENSG1\tp1,p2\nB\tENSG2\tp3\n")
    gene_map = read_gene_map(path)
    values = np.arange(6, dtype=np.float32).reshape(2, 3)
    np.testing.assert_allclose(probes_to_genes(values, ["p1", "p2", "p3"], gene_map), [[0.5, 2], [3.5, 5]])
    with pytest.raises(ValueError, match=r"the data: 1 probes of .*map.txt are missing \(first: p3\); 1 of 2 genes of the map were found"):
        probes_to_genes(values[:, :2], ["p1", "p2"], gene_map)
    path.write_text("A\tENSG1\n")
    with pytest.raises(ValueError, match=r"map.txt, line 1: expected 'symbol<TAB>Ensembl id<TAB>probe"):
        read_gene_map(path)
