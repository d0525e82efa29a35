"""ResMLP: the network, its warm-up + cosine schedule, weight decay groups, and the EMA of its weights in
evaluation, checkpoints and resumed runs."""

import math

import lightning as L
import pytest
import torch
from lightning.pytorch.callbacks import Callback

from src.common.errors import InputError
from src.models.loading import load_model
from src.models.networks.resmlp import ResidualMLP
from src.models.resmlp import ResMLP, warmup_cosine, warmup_steps_of
from src.train import build, build_datamodule, fit_and_test, train
from tests.faults import StopAfterEpochs


class LearningRates(Callback):
    """The learning rate of every optimiser step, as the step uses it."""

    def __init__(self):
        self.lrs = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self.lrs.append([g["lr"] for g in trainer.optimizers[0].param_groups])


def test_network_shapes_and_residual_blocks():
    net = ResidualMLP(10, 7, width=16, blocks=3, expansion=2, activation_name="silu", dropout=0.0)
    assert net(torch.randn(4, 10)).shape == (4, 7) and len(net.blocks) == 3
    block = net.blocks[0]
    assert (block.up.in_features, block.up.out_features, block.down.out_features) == (16, 32, 16)
    with torch.no_grad():
        block.down.weight.zero_(), block.down.bias.zero_()
    x = torch.randn(2, 16)
    torch.testing.assert_close(block(x), x)  # the residual path alone when the branch is zero


def test_schedule_warms_up_linearly_then_decays_along_a_cosine():
    total, warmup = 100, 5
    assert warmup_steps_of(0.05, total) == warmup and warmup_steps_of(0.0, total) == 0 and warmup_steps_of(0.001, total) == 1
    values = [warmup_cosine(s, warmup, total) for s in range(total)]
    assert values[0] == pytest.approx(1 / warmup)  # step 0
    assert values[warmup - 1] == 1.0 and values[warmup] == 1.0  # warm-up end, cosine start
    assert values[warmup + (total - warmup) // 2] == pytest.approx(0.5, abs=0.02)
    assert values[-1] == pytest.approx(0.5 * (1 + math.cos(math.pi * (total - 1 - warmup) / (total - warmup))))
    assert 0 < values[-1] < 1e-3 and warmup_cosine(total, warmup, total) == 0.0  # towards 0, one step after the last
    assert all(a < b for a, b in zip(values[:warmup], values[1:warmup]))
    assert all(a > b for a, b in zip(values[warmup:], values[warmup + 1:]))
    assert warmup_cosine(0, 0, total) == 1.0  # no warm-up


def test_training_follows_the_schedule_step_by_step(train_config):
    cfg = train_config("model=resmlp", "debug=fast", "trainer.max_epochs=2", "model.warmup=0.1", "logger=none",
                       "callbacks=none")
    recorder = LearningRates()
    run = build(cfg, callbacks=[recorder])
    run.trainer.fit(run.model, datamodule=run.datamodule)
    total = int(run.trainer.estimated_stepping_batches)
    warmup = round(0.1 * total)
    lrs = [group[0] for group in recorder.lrs]
    assert len(lrs) == total == run.trainer.global_step and warmup > 1
    assert lrs[0] == pytest.approx(1e-3 / warmup)
    assert lrs[warmup - 1] == pytest.approx(1e-3) and max(lrs) == pytest.approx(1e-3)
    assert lrs[-1] == pytest.approx(1e-3 * warmup_cosine(total - 1, warmup, total))
    assert all(g[0] == g[1] for g in recorder.lrs)  # both parameter groups on one schedule
    groups = run.trainer.optimizers[0].param_groups
    assert groups[0]["weight_decay"] == 0.01 and groups[1]["weight_decay"] == 0.0


def test_weight_decay_only_on_weight_matrices():
    model = ResMLP(10, 7, width=16, blocks=2)
    decay, no_decay = model.param_groups()
    assert all(p.ndim == 2 for p in decay["params"]) and all(p.ndim == 1 for p in no_decay["params"])
    assert no_decay["weight_decay"] == 0.0
    assert len(decay["params"]) + len(no_decay["params"]) == len(list(model.net.parameters()))


def test_ema_is_off_by_default_and_predicts_outside_training():
    assert ResMLP(10, 7, width=16, blocks=1).ema is None
    model = ResMLP(10, 7, width=16, blocks=1, dropout=0.0, ema=True, ema_decay=0.5)
    assert not any(p.requires_grad for p in model.ema.parameters())
    assert all(p.requires_grad for g in model.param_groups() for p in g["params"])
    with torch.no_grad():
        model.ema.update_parameters(model.net)
        for p in model.ema.module.parameters():
            p.add_(1.0)
    x = torch.randn(3, 10)
    model.eval()
    torch.testing.assert_close(model(x), model.ema.module(x))
    assert not torch.allclose(model(x), model.net(x))
    model.train()
    torch.testing.assert_close(model(x), model.net(x))


def _mae(model, split) -> float:
    model.eval()
    with torch.no_grad():
        return float((model(split.landmarks) - split.targets).abs().mean())


def test_ema_weights_differ_from_the_trained_ones_and_are_what_the_checkpoint_evaluates(train_config):
    cfg = train_config("model=resmlp", "debug=fast", "trainer.max_epochs=1", "model.ema=true", "model.ema_decay=0.9",
                       "keep_last_checkpoint=true", "logger=none")
    metrics = train(cfg)
    folder = f"{cfg.paths.output_dir}/checkpoints"
    last = torch.load(f"{folder}/last.ckpt", weights_only=True)["state_dict"]
    best = torch.load(f"{folder}/best.ckpt", weights_only=True)["state_dict"]
    raw = {k[len("net."):]: v for k, v in last.items() if k.startswith("net.")}
    ema = {k[len("ema.module."):]: v for k, v in last.items() if k.startswith("ema.module.")}
    assert raw.keys() == ema.keys() and any(not torch.equal(raw[k], ema[k]) for k in raw)
    # best.ckpt (weights only) holds the averaged weights once, as the network's.
    assert not any(k.startswith("ema.") for k in best)
    assert all(torch.equal(best[f"net.{k}"], ema[k]) for k in ema)
    model = load_model(f"{folder}/best.ckpt")
    test = build_datamodule(cfg).splits["test"]
    assert _mae(model, test) == pytest.approx(metrics["test/mae"], rel=1e-5)
    model.net.load_state_dict(raw)  # the trained, not averaged, weights score differently
    assert model.ema is not None and _mae(model.net, test) != pytest.approx(metrics["test/mae"], rel=1e-5)


def test_a_run_resumed_with_ema_ends_as_if_never_interrupted(train_config, tmp_path, data_dir):
    from tests.conftest import compose_config

    common = ["model=resmlp", "debug=fast", "trainer.max_epochs=2", "model.ema=true", "model.ema_decay=0.9", "logger=none"]
    whole = train(compose_config("train", tmp_path / "whole", common, data_dir))
    # Stopped after 1 of 2 epochs, then resumed in its own folder (README's recipe: ckpt_path=last).
    fit_and_test(build(train_config(*common, "keep_last_checkpoint=true"), callbacks=[StopAfterEpochs(1)]))
    stopped = torch.load(f"{tmp_path}/run/checkpoints/last.ckpt", weights_only=True)
    assert stopped["epoch"] == 0 and any(k.startswith("ema.") for k in stopped["state_dict"])
    recorder = LearningRates()
    run = build(train_config(*common, "ckpt_path=last"), callbacks=[recorder])
    assert fit_and_test(run) == whole
    # It did resume: only the second epoch's steps ran, on the second half of the schedule.
    assert 0 < len(recorder.lrs) == run.trainer.global_step - stopped["global_step"] == stopped["global_step"]
    assert recorder.lrs[0][0] < 1e-3


def test_bad_settings_are_input_errors():
    with pytest.raises(InputError, match="model.warmup"):
        ResMLP(4, 3, width=8, blocks=1, warmup=1.5)
    with pytest.raises(InputError, match="model.ema_decay"):
        ResMLP(4, 3, width=8, blocks=1, ema=True, ema_decay=1.0)
    with pytest.raises(InputError, match="model.scheduler"):
        ResMLP(4, 3, width=8, blocks=1, scheduler=lambda optimizer: None)
