"""Training losses (src/models/losses.py) against torch.nn.functional, and the loss= config group."""

import hydra
import pytest
import torch
import torch.nn.functional as F

from src.common.errors import InputError
from src.models.losses import HUBER_DELTA, LOSS_FUNCTIONS, LOSSES, loss_function
from tests.conftest import CONF

MODELS = sorted(p.stem for p in (CONF / "model").glob("*.yaml"))


def _data(scale: float = 2.0):
    torch.manual_seed(0)
    return scale * torch.randn(7, 5), scale * torch.randn(7, 5)  # errors well inside and outside Huber's delta


@pytest.mark.parametrize("name, reference", [
    ("l1", lambda p, t: F.l1_loss(p, t)),
    ("huber", lambda p, t: F.huber_loss(p, t, delta=1.0)),
    ("mse", lambda p, t: F.mse_loss(p, t)),
    ("sse", lambda p, t: F.mse_loss(p, t, reduction="sum") / len(p)),  # summed over genes, mean over the batch
])
def test_each_loss_matches_torch_functional(name, reference):
    pred, target = _data()
    torch.testing.assert_close(loss_function(name)(pred, target), reference(pred, target))


def test_huber_is_half_squared_within_delta_and_linear_beyond():
    assert HUBER_DELTA == 1.0
    pred, target = torch.tensor([[0.5, 3.0]]), torch.zeros(1, 2)
    assert float(loss_function("huber")(pred, target)) == pytest.approx((0.5 * 0.5**2 + (3.0 - 0.5)) / 2)


def test_sse_is_n_genes_times_mse():
    pred, target = _data()
    torch.testing.assert_close(loss_function("sse")(pred, target), 5 * loss_function("mse")(pred, target))


def test_unknown_loss_is_an_input_error_naming_the_choices():
    with pytest.raises(InputError, match="model.loss=l2.*l1, huber, mse, sse"):
        loss_function("l2")


@pytest.mark.parametrize("name", LOSSES)
def test_every_training_plan_uses_the_configured_loss(name):
    from src.models.egex import EGEX

    model = EGEX(5, 5, ae_widths=[3], latent=2, mlp_widths=[3], stages={"finetune": 1}, loss=name)
    pred, target = _data()
    torch.testing.assert_close(model.criterion(pred, target), LOSS_FUNCTIONS[name](pred, target))


def test_a_plan_refuses_an_unknown_loss():
    from src.models.dgex import DGEX

    with pytest.raises(ValueError, match="unknown loss"):
        DGEX(3, 4, widths=[5], loss="l2")


@pytest.mark.parametrize("model", MODELS)
def test_loss_l1_composes_for_every_model_config(train_config, model):
    cfg = train_config(f"model={model}", "loss=l1")
    assert cfg.model.loss == "l1"
    plan = hydra.utils.instantiate(cfg.model, n_inputs=4, n_outputs=3, _convert_="all")
    assert plan.hparams.loss == "l1"


@pytest.mark.parametrize("model, default", [("dgex", "sse"), ("taaf", "sse"), ("egex", "mse"), ("autoencoder", "mse"),
                                            ("resmlp", "mse")])
def test_without_loss_each_model_keeps_its_own(train_config, model, default):
    assert train_config(f"model={model}").model.loss == default
    assert train_config(f"model={model}", "debug=fast").model.loss == default


def test_loss_group_overrides_an_experiments_model(train_config):
    cfg = train_config("experiment=dgex", "loss=huber")
    assert cfg.model._target_ == "src.models.dgex.DGEX" and cfg.model.loss == "huber"


def test_a_network_trains_on_l1(train_config):
    from src.models.loading import load_model
    from src.train import build_datamodule, train

    cfg = train_config("model=egex", "debug=fast", "loss=l1", "logger=none")
    metrics = train(cfg)
    assert metrics["test/mae"] < 0.9 * float(build_datamodule(cfg).splits["test"].targets.abs().mean())
    assert load_model(f"{cfg.paths.output_dir}/checkpoints/best.ckpt").hparams.loss == "l1"
