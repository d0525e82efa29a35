"""NCNN: the neighbour-connected first layer reads exactly the graph's neighbours; the graph comes from the
data or a file at attach_data, and a checkpoint rebuilds the model without the file."""

import numpy as np
import pytest
import torch

from src.common.errors import InputError
from src.data.preprocessing import Preprocessing
from src.data.sources.base import ExpressionData
from src.models.ncnn import NCNN
from src.models.networks.ncnn import NeighbourLayer, NeighbourNetwork, neighbour_edges

EDGES = np.array([[0, 1, 3], [1, 2, 4]])  # 0-1, 1-2, 3-4; gene 5 has no neighbour
ADJACENT = np.eye(6, dtype=bool)
for a, b in EDGES.T:
    ADJACENT[a, b] = ADJACENT[b, a] = True


def test_every_gene_reads_itself_and_both_ends_read_each_other():
    edges = neighbour_edges(6, EDGES)
    got = np.zeros((6, 6), dtype=bool)
    got[edges[0], edges[1]] = True
    np.testing.assert_array_equal(got, ADJACENT)
    assert edges.shape[1] == ADJACENT.sum() and neighbour_edges(3).tolist() == [[0, 1, 2], [0, 1, 2]]
    with pytest.raises(ValueError, match="gene indices"):
        neighbour_edges(3, np.array([[0], [3]]))


def test_a_unit_depends_on_its_gene_and_the_neighbours_only():
    torch.manual_seed(0)
    layer = NeighbourLayer(6, units=3, edges=EDGES)
    x = torch.randn(4, 6)
    jacobian = torch.autograd.functional.jacobian(lambda v: layer(v).sum(0), x).sum(1)  # (6 * 3 units, 6 genes)
    reads = (jacobian != 0).reshape(6, 3, 6)
    for c in range(3):
        np.testing.assert_array_equal(reads[:, c].numpy(), ADJACENT)
    # The output is the per-gene linear combination the reference code computes with one Linear per gene.
    dense = layer.dense_weight().detach().reshape(6, 3, 6)
    expected = torch.einsum("bj,icj->bic", x, dense * torch.from_numpy(ADJACENT)[:, None, :]) + layer.bias.detach()
    torch.testing.assert_close(layer(x), expected.reshape(4, 18))


def test_the_weights_get_gradients_on_the_graph_only_and_stay_there():
    torch.manual_seed(1)
    net = NeighbourNetwork(6, 2, units=2, widths=[8])
    net.neighbours.set_graph(EDGES)
    assert net.neighbours.weight.shape == (ADJACENT.sum(), 2)  # a parameter per edge and unit, none elsewhere
    optimizer = torch.optim.SGD(net.parameters(), lr=0.5)
    for _ in range(3):
        optimizer.zero_grad()
        net(torch.randn(16, 6)).square().sum().backward()
        optimizer.step()
    dense = net.neighbours.dense_weight().detach().reshape(6, 2, 6)
    assert (dense.abs().sum(1) > 0).numpy().tolist() == ADJACENT.tolist()
    assert net.neighbours.weight.grad.abs().min() > 0  # every edge learns


def _preprocessing(info: dict | None = None, n_landmarks: int = 6) -> Preprocessing:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, n_landmarks)).astype(np.float32)
    y = (x[:, :3] @ rng.normal(size=(3, 4))).astype(np.float32)
    data = ExpressionData(x, y, [f"s{i}" for i in range(40)], [f"G{i}" for i in range(n_landmarks)],
                          [f"T{i}" for i in range(4)], info=dict(info or {}))
    return Preprocessing.fit(data, np.arange(30))


def _graph_file(tmp_path, lines=("G0\tG1", "G2\tG1\t0.7", "G4\tG3", "G0\tNOT_A_LANDMARK")):
    path = tmp_path / "graph.tsv"
    path.write_text("# test graph\n" + "\n".join(lines) + "\n")
    return path


def _adjacency(model: NCNN) -> np.ndarray:
    edges = model.net.neighbours.edge_index
    got = np.zeros((6, 6), dtype=bool)
    got[edges[0], edges[1]] = True
    return got


def test_attach_data_connects_the_first_layer_along_the_graph_file(tmp_path):
    model = NCNN(6, 4, graph=str(_graph_file(tmp_path)), units_per_gene=2, widths=[8])
    assert model.net.neighbours.n_edges == 6  # before the data: every gene reads itself only
    model.attach_data(_preprocessing())
    np.testing.assert_array_equal(_adjacency(model), ADJACENT)
    assert model.graph_info == {"source": str(tmp_path / "graph.tsv"), "edges": 3, "unknown_pairs": 1}
    assert model.net.neighbours.weight is next(p for p in model.parameters() if p.shape == (ADJACENT.sum(), 2))


def test_auto_takes_the_datas_own_graph_and_says_what_is_missing_without_one(tmp_path):
    model = NCNN(6, 4, graph="auto", units_per_gene=2, widths=[8])
    model.attach_data(_preprocessing({"landmark_graph": str(_graph_file(tmp_path))}))
    np.testing.assert_array_equal(_adjacency(model), ADJACENT)
    with pytest.raises(InputError, match=r"model.graph=auto: this data has no landmark graph.*model.graph=<edges file>"):
        NCNN(6, 4, graph="auto", widths=[8]).attach_data(_preprocessing())
    alone = NCNN(6, 4, graph="none", units_per_gene=2, widths=[8])
    alone.attach_data(_preprocessing())
    np.testing.assert_array_equal(_adjacency(alone), np.eye(6, dtype=bool))
    with pytest.raises(FileNotFoundError, match="missing.tsv"):
        NCNN(6, 4, graph=str(tmp_path / "missing.tsv"), widths=[8]).attach_data(_preprocessing())


def test_a_checkpoint_rebuilds_the_model_without_the_graph_file(tmp_path):
    from src.models.checkpoint import load_model

    path = _graph_file(tmp_path)
    model = NCNN(6, 4, graph=str(path), units_per_gene=2, widths=[8]).eval()
    model.attach_data(_preprocessing())
    ckpt = {"state_dict": model.state_dict(), "hyper_parameters": dict(model.hparams)}
    model.on_save_checkpoint(ckpt)
    torch.save(ckpt, tmp_path / "model.ckpt")
    path.unlink()
    loaded = load_model(tmp_path / "model.ckpt")
    np.testing.assert_array_equal(_adjacency(loaded), ADJACENT)
    assert loaded.graph_info["source"] == str(path)
    x = torch.randn(5, 6)
    torch.testing.assert_close(loaded(x), model(x))
