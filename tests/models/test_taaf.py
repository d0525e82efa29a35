"""TAAF: the adaptive activation, D-GEX at initialisation, and its parameters in training."""

import lightning as L
import pytest
import torch
from torch import nn

from src.common.errors import InputError
from src.models.dgex import DGEX
from src.models.networks.mlp import MLP
from src.models.networks.taaf import AdaptiveActivation, TAAFMLP, make_adaptive
from src.models.taaf import TAAF


def test_adaptive_activation_is_tanh_at_initialisation():
    act = AdaptiveActivation(6)
    x = 3 * torch.randn(10, 6)
    torch.testing.assert_close(act(x), torch.tanh(x))
    assert [p.tolist() for p in (act.alpha, act.beta, act.gamma, act.delta)] == [[1.0] * 6, [1.0] * 6, [0.0] * 6, [0.0] * 6]


def test_adaptive_activation_is_alpha_g_of_beta_x_plus_gamma_plus_delta_per_unit():
    act = AdaptiveActivation(4, "sigmoid")
    with torch.no_grad():
        for p in act.parameters():
            p.copy_(torch.randn(4))
    x = torch.randn(3, 4)
    torch.testing.assert_close(act(x), act.alpha * torch.sigmoid(act.beta * x + act.gamma) + act.delta)


def test_every_adaptive_parameter_gets_a_gradient():
    act = AdaptiveActivation(5)
    with torch.no_grad():
        act.alpha.mul_(2.0)  # so that the output depends on gamma and beta through a non-zero slope everywhere
    act(torch.randn(8, 5)).square().sum().backward()
    for name in ("alpha", "beta", "gamma", "delta"):
        grad = getattr(act, name).grad
        assert grad is not None and grad.shape == (5,) and (grad != 0).all(), name


def test_taaf_starts_as_dgex():
    L.seed_everything(0, verbose=False)
    dgex = DGEX(8, 6, widths=[5, 4], n_splits=2).eval()
    L.seed_everything(0, verbose=False)
    taaf = TAAF(8, 6, widths=[5, 4], n_splits=2).eval()
    x = torch.randn(3, 8)
    torch.testing.assert_close(taaf(x), dgex(x))
    for part in taaf.net.parts:
        assert [type(m) for m in part if not isinstance(m, (nn.Linear, nn.Dropout))] == [AdaptiveActivation] * 2
        assert [m.alpha.numel() for m in part if isinstance(m, AdaptiveActivation)] == [5, 4]


def test_every_parameter_is_trained_once_taafs_with_their_layer():
    model = TAAF(8, 6, widths=[5, 4], n_splits=2, adaptive_output=True)
    groups = model.param_groups()
    ids = [id(p) for g in groups for p in g["params"]]
    assert sorted(ids) == sorted(id(p) for p in model.parameters()) and len(ids) == len(set(ids))
    first = {id(p) for part in model.net.parts for m in list(part)[:2] for p in m.parameters()}  # Linear, TAAF
    assert {id(p) for p in groups[0]["params"]} == first
    assert groups[1]["lr"] == pytest.approx(3 * groups[0]["lr"])


def test_an_sgd_step_moves_the_adaptive_parameters():
    L.seed_everything(0, verbose=False)
    model = TAAF(8, 6, widths=[5], n_splits=1, init="torch", lr=0.1)
    optimizer = torch.optim.SGD(model.param_groups(), lr=0.1)
    x, y = torch.randn(16, 8), torch.randn(16, 6)
    loss, _ = model.training_loss((x, y))
    loss.backward()
    optimizer.step()
    (act,) = [m for m in model.net.parts[0] if isinstance(m, AdaptiveActivation)]
    assert not torch.equal(act.alpha, torch.ones(5)) and not torch.equal(act.gamma, torch.zeros(5))


def test_sigmoid_and_adaptive_output():
    net = TAAFMLP(8, [5], 3, activation_name="sigmoid", adaptive_output=True, dropout=0.1)
    acts = [m for m in net if isinstance(m, AdaptiveActivation)]
    assert [a.alpha.numel() for a in acts] == [5, 3] and all(isinstance(a.g, nn.Sigmoid) for a in acts)
    assert isinstance(net[-1], AdaptiveActivation) and len(net.linears) == 2
    model = TAAF(8, 3, widths=[5], n_splits=1, activation="sigmoid")
    assert model.hparams.activation == "sigmoid" and isinstance(model.net.parts[0][1].g, nn.Sigmoid)


def test_make_adaptive_keeps_the_layout():
    net = make_adaptive(MLP(8, [5, 4], 3, dropout=0.2))
    assert [type(m).__name__ for m in net] == ["Linear", "AdaptiveActivation", "Dropout", "Linear",
                                               "AdaptiveActivation", "Dropout", "Linear"]


def test_unknown_activation_is_an_input_error():
    with pytest.raises(InputError, match="model.activation=swish"):
        TAAF(8, 3, widths=[5], activation="swish")
