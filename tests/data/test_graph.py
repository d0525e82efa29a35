"""The landmark graph file and the co-expression graph (src/data/graph.py), and the synthetic data's true graph."""

import numpy as np
import pytest
import torch

from src.common.errors import InputError
from src.data.graph import LandmarkGraph, coexpression_graph, read_graph, write_graph
from src.data.sources.synthetic import SyntheticSource
from src.data.synthetic import SyntheticSpec, _Genes, ensure_synthetic_graph, generate, landmark_graph

IDS = ["A", "B", "C", "D", "E"]


def test_pairs_are_undirected_unique_and_unknown_ids_are_counted(tmp_path, caplog):
    path = tmp_path / "g.tsv"
    path.write_text(
        "# a comment\n"
        "A\tB\t0.5\n"
        "\n"
        "B\tA\t0.9\r\n"  # the same edge the other way round (and a Windows line end): one edge, the largest weight
        "C\tA\n"
        "D\tD\n"  # a gene with itself: ignored
        "  # an indented comment\n"
        "A\tZZZ\t1\n"  # not a landmark
        "YYY\tXXX\n"
    )
    with caplog.at_level("INFO"):
        graph = read_graph(path, IDS)
    assert graph.edges.tolist() == [[0, 0], [1, 2]] and graph.weights.tolist() == [0.9, 1.0]
    assert (graph.pairs_read, graph.unknown_pairs, graph.n_nodes, graph.n_edges) == (6, 2, 5, 2)
    assert graph.degrees().tolist() == [2, 1, 1, 0, 0]
    assert "2 named an id that is not a landmark and were ignored" in caplog.text


@pytest.mark.parametrize("line, message", [
    ("A B\n", "fields must be separated by tabs"),
    ("A\n", "expected gene_a<TAB>gene_b"),
    ("A\tB\tstrong\n", "is not a number"),
    ("A\tB\tnan\n", "not a finite number"),
    ("A\tB\t1\textra\n", "expected gene_a<TAB>gene_b"),
])
def test_a_malformed_line_is_named_with_its_file_and_line(tmp_path, line, message):
    path = tmp_path / "g.tsv"
    path.write_text("# header\nA\tC\n" + line)
    with pytest.raises(InputError, match=message) as err:
        read_graph(path, IDS)
    assert f"{path}:3" in str(err.value)


def test_files_with_no_usable_pair_are_refused(tmp_path):
    with pytest.raises(FileNotFoundError, match="landmark graph file not found"):
        read_graph(tmp_path / "nope.tsv", IDS)
    empty = tmp_path / "empty.tsv"
    empty.write_text("# nothing\n\n")
    with pytest.raises(InputError, match="holds no pairs"):
        read_graph(empty, IDS)
    other_ids = tmp_path / "ensp.tsv"
    other_ids.write_text("9606.ENSP01\t9606.ENSP02\t900\n")
    with pytest.raises(InputError, match="none of its 1 pairs joins two of the 5 landmark genes.*'9606.ENSP01'"):
        read_graph(other_ids, IDS)


def test_written_graphs_read_back(tmp_path):
    path = write_graph(tmp_path / "sub" / "g.tsv", [("A", "B", 700.0), ("C", "E", 950.5)], comment="from STRING\nscore >= 700")
    text = path.read_text()
    assert text.startswith("# from STRING\n# score >= 700\nA\tB\t700.0\n")
    graph = read_graph(path, IDS)
    assert graph.edges.tolist() == [[0, 2], [1, 4]] and graph.weights.tolist() == [700.0, 950.5]
    assert [p.name for p in path.parent.iterdir()] == ["g.tsv"]  # no temporary file left
    with pytest.raises(ValueError, match="tabs"):
        write_graph(tmp_path / "bad.tsv", [("A\tB", "C")])


def test_from_pairs_merges_duplicates_and_drops_self_pairs():
    graph = LandmarkGraph.from_pairs([(2, 1, 1.0), (1, 2, 3.0), (0, 0, 1.0)], 3)
    assert graph.edges.tolist() == [[1], [2]] and graph.weights.tolist() == [3.0]
    assert LandmarkGraph.from_pairs([], 3).edges.shape == (2, 0)


# ------------------------------------------------------------------------- the co-expression graph
def _paired(n=200, seed=0):
    """12 genes: (0, 1), (2, 3), (4, 5) strongly correlated pairs ((4, 5) negatively), the rest independent."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 12))
    x[:, 1] = x[:, 0] + 0.1 * rng.normal(size=n)
    x[:, 3] = 3 * x[:, 2] + 5 + 0.2 * rng.normal(size=n)  # scale and shift do not matter
    x[:, 5] = -x[:, 4] + 0.1 * rng.normal(size=n)  # a negative correlation is as strong
    return x


def test_the_coexpression_graph_joins_each_gene_to_its_most_correlated_symmetrised_without_self_loops():
    x = _paired()
    strongest = coexpression_graph(x, 1)
    assert {(0, 1), (2, 3), (4, 5)} <= set(map(tuple, strongest.edges.T.tolist()))
    graph = coexpression_graph(x, 3)
    a, b = graph.edges
    assert (a < b).all() and len(set(zip(a.tolist(), b.tolist()))) == graph.n_edges  # undirected, unique, no loops
    assert graph.degrees().min() >= 3 and graph.n_edges <= 12 * 3
    corr = np.abs(np.corrcoef(x, rowvar=False))
    np.fill_diagonal(corr, -1)
    adjacent = np.zeros((12, 12), dtype=bool)
    adjacent[a, b] = adjacent[b, a] = True
    for gene in range(12):  # every gene reaches its own 3 strongest; every edge is one end's choice (union)
        assert adjacent[gene, np.argsort(-corr[gene])[:3]].all()
    top3 = {(g, int(h)) for g in range(12) for h in np.argsort(-corr[g])[:3]}
    assert all((i, j) in top3 or (j, i) in top3 for i, j in zip(a.tolist(), b.tolist()))
    np.testing.assert_allclose(graph.weights, corr[a, b])
    assert coexpression_graph(x, 50).n_edges == 12 * 11 // 2  # k above the genes: every pair


def test_the_coexpression_graph_is_the_same_in_blocks_from_float32_tensors_and_breaks_ties_by_index():
    x = _paired(301).astype(np.float32)
    whole = coexpression_graph(x, 2, block_rows=10_000)
    blocked = coexpression_graph(torch.from_numpy(x), 2, block_rows=7)
    assert blocked.edges.tolist() == whole.edges.tolist()
    np.testing.assert_allclose(blocked.weights, whole.weights, rtol=1e-12)
    # Exact ties (integer values, zero means): 1, 2 and 3 are one gene (|r| 1 with each other), 0 has
    # |r| 0.5 with 1, 2, 3 and 4. Each gene takes the lowest index among its equals.
    v = [1, 1, 1, 1, -1, -1, -1, -1]
    w = [1, 1, 1, -1, 1, -1, -1, -1]
    u = [1, 1, -1, 1, -1, 1, -1, -1]
    tied = np.array([v, w, w, w, u], dtype=np.float64).T
    assert coexpression_graph(tied, 1).edges.tolist() == [[0, 0, 1, 1], [1, 4, 2, 3]]


def test_a_constant_gene_gets_no_coexpression_neighbour():
    x = _paired()
    x[:, 7] = 4.2
    graph = coexpression_graph(x, 2)
    assert graph.degrees()[7] == 0 and graph.degrees()[np.arange(12) != 7].min() >= 2
    with pytest.raises(InputError, match="at least 2 training samples"):
        coexpression_graph(x[:1], 2)
    x[3, 2] = np.nan
    with pytest.raises(InputError, match="non-finite"):
        coexpression_graph(x, 2)


# ------------------------------------------------------------------------- the synthetic data's graph
SPEC = SyntheticSpec(n_samples=200, n_landmarks=30, n_targets=20)


def test_the_synthetic_graph_joins_landmarks_that_share_their_strongest_programme():
    pairs = landmark_graph(SPEC)
    genes = _Genes(np.random.default_rng(SPEC.seed), SPEC.n_landmarks, SPEC, SPEC.landmark_noise)
    strongest = np.abs(genes.nonlinear).argmax(0)
    ids = generate(SPEC)["feature_ids"][: SPEC.n_landmarks]
    expected = {(ids[a], ids[b]) for a in range(30) for b in range(a + 1, 30) if strongest[a] == strongest[b]}
    assert set(pairs) == expected and len(pairs) == len(expected) > 0
    # The landmark genes do not depend on the samples or the targets: nor does the graph.
    assert landmark_graph(SyntheticSpec(n_samples=50, n_landmarks=30, n_targets=7, sample_seed=4)) == pairs


def test_the_synthetic_source_writes_its_graph_next_to_its_gctx_deterministically(tmp_path):
    source = SyntheticSource(tmp_path / "a", n_samples=200, n_landmarks=30, n_targets=20)
    source.prepare()
    data = source.load()
    path = tmp_path / "a" / f"synthetic_{SPEC.key()}_graph.tsv"
    assert data.info["landmark_graph"] == str(path) and (tmp_path / "a" / f"synthetic_{SPEC.key()}.gctx").exists()
    graph = read_graph(path, data.landmark_ids)
    assert graph.unknown_pairs == 0 and graph.n_edges == len(landmark_graph(SPEC))
    again = ensure_synthetic_graph(SPEC, tmp_path / "b")
    assert again.read_bytes() == path.read_bytes()  # same spec, same file
    mtime = path.stat().st_mtime_ns
    assert ensure_synthetic_graph(SPEC, tmp_path / "a") == path and path.stat().st_mtime_ns == mtime  # reused


def test_writing_the_graph_leaves_the_synthetic_values_unchanged():
    """Values recorded before the graph existed (the generator's random stream is untouched)."""
    m = generate(SPEC)["matrix"]
    np.testing.assert_allclose(m[0, :4], [6.528189, 4.7289653, 10.42525, 8.310862], rtol=1e-6)
    np.testing.assert_allclose(m[-1, -3:], [9.356285, 8.521678, 8.466309], rtol=1e-6)
    assert float(m.astype(np.float64).sum()) == pytest.approx(76347.84874916077, rel=1e-9)
