"""The landmark graph file (src/data/graph.py) and the synthetic data's true landmark graph."""

import numpy as np
import pytest

from src.common.errors import InputError
from src.data.graph import LandmarkGraph, read_graph, write_graph
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
