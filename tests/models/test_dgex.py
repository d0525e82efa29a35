"""D-GEX as published: initialisation, learning rates, loss and the decay rule."""

import pytest
import torch

from src.models.training_callbacks import decayed
from src.models.dgex import DGEX, paper_learning_rate
from src.models.networks.mlp import MLP, dgex_init
from src.train import build_datamodule, train


def test_initialisation_ranges():
    net = MLP(943, [300, 200], 100)
    dgex_init(net)
    first, second, out = net.linears
    for layer in (first, second):
        bound = (6 / (layer.in_features + layer.out_features)) ** 0.5
        assert layer.weight.abs().max() <= bound and layer.weight.abs().max() > 0.9 * bound
    assert out.weight.abs().max() <= 1e-4
    assert all((layer.bias == 0).all() for layer in net.linears)


@pytest.mark.parametrize("widths, base", [([30], 5e-4), ([30, 30], 3e-4), ([30, 30, 30], 3e-4)])
def test_learning_rates_per_layer(widths, base):
    assert paper_learning_rate(len(widths)) == base  # the paper's networks: 4,760 outputs each
    model = DGEX(8, 9520, widths=widths, n_splits=2)
    groups = model.param_groups()
    assert groups[0]["lr"] == base
    first_layers = {id(p) for part in model.net.parts for p in part.linears[0].parameters()}
    assert {id(p) for p in groups[0]["params"]} == first_layers
    later = {id(p) for part in model.net.parts for layer in part.linears[1:] for p in layer.parameters()}
    assert {id(p) for p in groups[1]["params"]} == later and groups[1]["lr"] == pytest.approx(3 * base)


def test_the_paper_rates_scale_with_the_outputs_per_network_and_a_given_rate_is_kept():
    """The summed loss's gradient grows with a network's outputs: 500 outputs get 9.52 times the rate."""
    assert DGEX(8, 1000, widths=[30, 30], n_splits=2).base_lr == pytest.approx(3e-4 * 4760 / 500)
    assert DGEX(8, 9520, widths=[30, 30], n_splits=1).base_lr == pytest.approx(3e-4 / 2)
    assert DGEX(8, 1000, widths=[30, 30], n_splits=2, lr=1e-3).base_lr == 1e-3


def test_loss_is_squared_error_summed_over_genes_and_averaged_over_the_batch():
    model = DGEX(3, 4, widths=[5], loss="sse")
    pred, target = torch.randn(7, 4), torch.randn(7, 4)
    assert model.criterion(pred, target) == pytest.approx(float(((pred - target) ** 2).sum(1).mean()))


def test_two_splits_predict_halves_of_the_targets():
    model = DGEX(10, 9520, widths=[4], n_splits=2)
    assert model.net.sizes == [4760, 4760]
    model.eval()
    x = torch.randn(3, 10)
    torch.testing.assert_close(model(x)[:, 4760:], model.net.parts[1](x))


def test_learning_rate_decays_by_0_9_only_when_the_monitored_mae_rose():
    assert decayed([3e-4, 9e-4], rose=False, factor=0.9, min_lr=1e-5) == [3e-4, 9e-4]
    assert decayed([3e-4, 9e-4], rose=True, factor=0.9, min_lr=1e-5) == pytest.approx([2.7e-4, 8.1e-4])
    assert decayed([1.05e-5, 3.15e-5], rose=True, factor=0.9, min_lr=1e-5) == pytest.approx([1e-5, 3e-5])


def test_decay_is_driven_by_a_fixed_training_subset(train_config):
    cfg = train_config("model=dgex", "debug=fast", "trainer.max_epochs=5", "model.decay_samples=100",
                       "model.lr=0.04", "logger=csv")
    train(cfg)
    import csv

    rows = list(csv.DictReader(open(f"{cfg.paths.output_dir}/csv/version_0/metrics.csv")))
    maes = [float(r["train/subset_mae"]) for r in rows if r.get("train/subset_mae")]
    lrs = [float(r["train/lr"]) for r in rows if r.get("train/lr")]
    assert len(maes) == 5 and len(lrs) == 5
    # The rate of epoch i+1 is decided at the end of epoch i, from the MAEs of epochs i-1 and i.
    assert any(cur > prev for prev, cur in zip(maes, maes[1:]))  # the rate is high enough to overshoot
    for prev, cur, lr_before, lr_after in zip(maes, maes[1:], lrs[1:], lrs[2:]):
        assert lr_after == pytest.approx(lr_before * (0.9 if cur > prev else 1.0))


def test_faithful_recipe_trains_end_to_end(quick_dgex):
    cfg, metrics = quick_dgex
    assert cfg.model.optimizer._target_ == "torch.optim.SGD" and cfg.model.optimizer.momentum == 0.5
    dm = build_datamodule(cfg)
    assert metrics["test/mae"] < 0.9 * float(dm.splits["test"].targets.abs().mean())
