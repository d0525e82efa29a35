"""NCNN: the neighbour-connected first layer reads exactly the graph's neighbours; the graph comes from the
data or a file at attach_data, and a checkpoint rebuilds the model without the file."""

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from src.common.errors import InputError
from src.data.datamodule import ExpressionDataModule
from src.data.graph import coexpression_graph
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


def test_auto_takes_the_datas_own_graph_else_waits_for_the_coexpression_graph(tmp_path):
    model = NCNN(6, 4, graph="auto", units_per_gene=2, widths=[8])
    model.attach_data(_preprocessing({"landmark_graph": str(_graph_file(tmp_path))}))
    np.testing.assert_array_equal(_adjacency(model), ADJACENT)
    assert not model.coexpression_pending
    waiting = NCNN(6, 4, graph="auto", widths=[8])
    waiting.attach_data(_preprocessing())  # no graph of its own: built from the training split at setup
    assert waiting.coexpression_pending and waiting.graph_info["source"] == "coexpression"
    np.testing.assert_array_equal(_adjacency(waiting), np.eye(6, dtype=bool))
    forced = NCNN(6, 4, graph="coexpression", widths=[8])
    forced.attach_data(_preprocessing({"landmark_graph": str(_graph_file(tmp_path))}))
    assert forced.coexpression_pending
    alone = NCNN(6, 4, graph="none", units_per_gene=2, widths=[8])
    alone.attach_data(_preprocessing())
    np.testing.assert_array_equal(_adjacency(alone), np.eye(6, dtype=bool))
    with pytest.raises(FileNotFoundError, match="missing.tsv"):
        NCNN(6, 4, graph=str(tmp_path / "missing.tsv"), widths=[8]).attach_data(_preprocessing())
    with pytest.raises(InputError, match="model.graph_neighbours=0"):
        NCNN(6, 4, graph_neighbours=0)


class _Memory:
    """An in-memory source (a fresh copy per load: the DataModule reorders rows in place)."""

    def __init__(self, data: ExpressionData):
        self.data = data

    def prepare(self, max_samples=None, max_targets=None):
        pass

    def load(self, max_samples=None, max_targets=None):
        d = self.data
        return ExpressionData(d.landmarks.copy(), d.targets.copy(), list(d.sample_ids), list(d.landmark_ids),
                              list(d.target_ids), info=dict(d.info))


def _correlated(n=120, seed=0) -> ExpressionData:
    """8 landmarks in two co-expressed blocks (0-3, 4-7), 3 targets."""
    rng = np.random.default_rng(seed)
    factors = rng.normal(size=(n, 2))
    x = np.repeat(factors, 4, axis=1) + 0.5 * rng.normal(size=(n, 8))
    y = x[:, [0, 4, 5]] + 0.1 * rng.normal(size=(n, 3))
    return ExpressionData(x.astype(np.float32), y.astype(np.float32), [f"s{i}" for i in range(n)],
                          [f"G{i}" for i in range(8)], ["T0", "T1", "T2"])


def _built_graph(data: ExpressionData, caplog=None) -> tuple[np.ndarray, ExpressionDataModule]:
    """The co-expression graph NCNN builds at setup on ``data`` (a DataModule as training makes it)."""
    dm = ExpressionDataModule(_Memory(data), calibration=0.1)
    dm.setup("fit")
    model = NCNN(8, 3, graph="auto", graph_neighbours=2, units_per_gene=2, widths=[8])
    model.attach_data(dm.preprocessing)
    model._trainer = SimpleNamespace(datamodule=dm, world_size=1, is_global_zero=True)
    model.setup("fit")
    assert not model.coexpression_pending
    return model.net.neighbours.edge_index.numpy(), dm


def test_the_coexpression_graph_is_built_from_the_training_split_only(caplog):
    data = _correlated()
    with caplog.at_level("INFO", logger="src.models.ncnn"):
        edges, dm = _built_graph(data)
    within = (edges[0] < 4) == (edges[1] < 4)
    assert within.all()  # only the co-expressed blocks are joined
    assert ("NCNN: no landmark graph file given; built one from the training split's co-expression: 8 landmarks, "
            "each linked to its 2 most correlated (") in caplog.text
    train = [int(s[1:]) for s in dm.sample_ids["train"]]
    expected = coexpression_graph(data.landmarks[train], 2)
    assert np.array_equal(neighbour_edges(8, expected.edges).numpy(), edges)
    # Other validation, calibration and test samples: the same graph; other training samples: another one.
    held_out = np.setdiff1d(np.arange(len(data.sample_ids)), train)
    changed = _correlated()
    changed.landmarks[held_out] = np.random.default_rng(9).normal(size=(len(held_out), 8)) * 5
    assert np.array_equal(_built_graph(changed)[0], edges)
    changed.landmarks[train] = _correlated(seed=3).landmarks[train][:, ::-1]
    assert not np.array_equal(_built_graph(changed)[0], edges)


def test_a_checkpoint_rebuilds_the_model_without_the_graph_file(tmp_path):
    from src.models.loading import load_model

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


def test_ncnn_trains_on_a_matrix_without_a_graph_file_and_its_checkpoint_predicts(tmp_path, train_config, data_dir,
                                                                                   caplog):
    """data=matrix (no graph of its own): the co-expression graph of the training split, stored in the
    checkpoint, kept on resume, and used by src.predict without the training data."""
    import anndata

    from src.common.checkpoint_format import our_part
    from src.data.io.gctx import write_gctx
    from src.predict import predict
    from src.train import build_datamodule, train
    from tests.conftest import compose_config

    rng = np.random.default_rng(0)
    n, genes = 150, [f"ENSG{i:011d}" for i in range(1, 15)]  # 10 landmarks, 4 targets
    x = np.repeat(rng.normal(size=(n, 2)), 5, axis=1) + 0.5 * rng.normal(size=(n, 10))
    y = x[:, [0, 3, 5, 8]] + 0.1 * rng.normal(size=(n, 4))
    values = np.concatenate([x, y], axis=1).astype(np.float32) + 8
    path = write_gctx(tmp_path / "cohort.gctx", values, [f"S{i}" for i in range(n)], [g + ".1" for g in genes])
    (tmp_path / "map_lm.txt").write_text("".join(f"L{i}\t{g}\tp{i}_at\n" for i, g in enumerate(genes[:10])))
    (tmp_path / "map_tg.txt").write_text("".join(f"T{i}\t{g}\tq{i}_at\n" for i, g in enumerate(genes[10:])))
    data = ["data=matrix", f"data.source.path={path}", f"data.source.landmark_map={tmp_path / 'map_lm.txt'}",
            f"data.source.target_map={tmp_path / 'map_tg.txt'}", "model=ncnn", "model.graph_neighbours=2",
            "debug=fast", "keep_last_checkpoint=true"]
    cfg = train_config(*data, "trainer.max_epochs=2")
    with caplog.at_level("INFO", logger="src.models.ncnn"):
        train(cfg)
    assert ("NCNN: no landmark graph file given; built one from the training split's co-expression: 10 landmarks, "
            "each linked to its 2 most correlated (") in caplog.text
    run = tmp_path / "run"
    ckpt = torch.load(run / "checkpoints" / "best.ckpt", weights_only=False)
    edge_index = ckpt["state_dict"]["net.neighbours.edge_index"]
    assert our_part(ckpt).extras["graph"]["source"] == "coexpression"
    train_landmarks = build_datamodule(cfg).split_data("train").landmarks
    expected = coexpression_graph(train_landmarks, 2)
    assert torch.equal(edge_index, neighbour_edges(10, expected.edges))
    assert our_part(ckpt).extras["graph"]["edges"] == expected.n_edges
    # Resume: the graph is the checkpoint's.
    resumed = compose_config("train", tmp_path / "resumed", [*data, "trainer.max_epochs=3",
                                                             f"ckpt_path={run / 'checkpoints' / 'last.ckpt'}"],
                             data_dir)
    train(resumed)
    again = torch.load(f"{resumed.paths.output_dir}/checkpoints/last.ckpt", weights_only=False)
    assert again["epoch"] == 2 and torch.equal(again["state_dict"]["net.neighbours.edge_index"], edge_index)
    # Prediction from the checkpoint alone.
    path.unlink()
    new = write_gctx(tmp_path / "new.gctx", values[:7, :10], [f"N{i}" for i in range(7)], genes[:10])
    out = tmp_path / "pred.h5ad"
    predict(compose_config("predict", tmp_path / "p", [f"ckpt_path={run / 'checkpoints' / 'best.ckpt'}",
                                                       f"input={new}", f"output={out}"]))
    predicted = anndata.read_h5ad(out)
    assert predicted.shape == (7, 4) and np.isfinite(predicted.X).all()
