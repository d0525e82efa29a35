"""Ridge plus a learned residual: the untrained network is the ridge fit, epoch 0 changes nothing and is
checkpointed as ridge, later epochs learn what ridge misses; end to end and resumed (under DDP:
tests/test_cli.py, test_ddp_inside_a_multirun_...)."""

import json
import warnings

import anndata
import lightning as L
import numpy as np
import pytest
import torch
from lightning.pytorch.callbacks import Callback, ModelCheckpoint

from src.common.errors import InputError
from src.data.datamodule import ExpressionDataModule
from src.data.sources import SyntheticSource
from src.models.loading import load_model
from src.models.linear import LinearRegression, fit_ridge_loo
from src.models.networks.residual import LinearPlusResidual, last_linear
from src.models.networks.mlp import MLP
from src.models.ridge_residual import RidgeResidual
from src.train import build, build_datamodule, fit_and_test, train
from tests.conftest import compose_config
from tests.faults import StopAfterEpochs

ALPHAS = [0.01, 0.1, 1.0, 10.0]
SMALL = dict(ae_widths=[16], latent=4, mlp_widths=[16])


def _adam(lr=1e-3):
    return lambda params: torch.optim.Adam(params, lr=lr)


def _trainer(tmp_path, max_epochs, callbacks=(), monitor=True):
    checkpoints = [ModelCheckpoint(dirpath=tmp_path, filename="best", monitor="val/mae", mode="min")] if monitor else []
    return L.Trainer(max_epochs=max_epochs, logger=False, enable_progress_bar=False, enable_model_summary=False,
                     accelerator="cpu", num_sanity_val_steps=0, callbacks=[*checkpoints, *callbacks],
                     enable_checkpointing=monitor)


def _ridge(dm) -> LinearRegression:
    """model=lr_l2 on the same splits, fitted as src.train fits it."""
    ridge = LinearRegression(dm.n_landmarks, dm.n_targets, penalty="l2", alphas=ALPHAS)
    with torch.no_grad():
        ridge.fit(dm.split_data("train"), dm.split_data("val"))
    return ridge.eval()


def _loo_ridge(dm, alphas=ALPHAS) -> tuple[torch.nn.Linear, torch.Tensor, bool]:
    """The linear path fitted directly: ridge with leave-one-out penalties, per gene or one for all."""
    linear = torch.nn.Linear(dm.n_landmarks, dm.n_targets)
    gene_alphas, per_gene, _, _ = fit_ridge_loo(linear, dm.split_data("train"), dm.split_data("val"), alphas)
    return linear.requires_grad_(False), gene_alphas, per_gene


class EpochZero(Callback):
    """Every parameter and the optimiser state once the ridge is fitted, and again after epoch 0."""

    def on_train_start(self, trainer, pl_module):
        self.before = {k: v.clone() for k, v in pl_module.state_dict().items()}

    def on_train_epoch_end(self, trainer, pl_module):
        if trainer.current_epoch == 0:
            self.after = {k: v.clone() for k, v in pl_module.state_dict().items()}
            self.optimizer_state = dict(trainer.optimizers[0].state)
            self.steps = trainer.global_step


def test_network_output_is_the_linear_path_until_the_residual_trains():
    residual = MLP(6, [8], 3)
    net = LinearPlusResidual(6, 3, residual)
    assert last_linear(residual) is residual[-1] and not residual[-1].weight.any() and not residual[-1].bias.any()
    assert not any(p.requires_grad for p in net.linear.parameters()) and "linear.weight" in net.state_dict()
    with torch.no_grad():
        net.linear.weight.normal_(), net.linear.bias.normal_()
    x = torch.randn(5, 6)
    fp32 = net.linear(x)
    assert torch.equal(net(x), fp32)
    with torch.autocast("cpu", dtype=torch.bfloat16):  # the linear path stays fp32 under mixed precision
        assert net.linear(x).dtype == torch.bfloat16 and torch.equal(net(x), fp32)


def test_the_untrained_network_is_the_ridge_fit_and_epoch_0_changes_nothing(tmp_path):
    dm = ExpressionDataModule(SyntheticSource(tmp_path / "data", n_samples=400, n_landmarks=12, n_targets=6),
                              batch_size=50)
    model = RidgeResidual(12, 6, alphas=ALPHAS, optimizer=_adam(), **SMALL)
    probe = EpochZero()
    trainer = _trainer(tmp_path, max_epochs=1, callbacks=[probe])
    trainer.fit(model, datamodule=dm)
    ridge, gene_alphas, per_gene = _loo_ridge(dm)
    # The ridge path is the leave-one-out ridge fit bit for bit, and so is the network's output.
    assert torch.equal(model.net.linear.weight, ridge.weight) and torch.equal(model.net.linear.bias, ridge.bias)
    alpha = float(gene_alphas.median())
    assert model.selected == {"alpha": alpha, "per_gene": float(per_gene), "residual_alpha": 100 * alpha}
    x = dm.split_data("test").landmarks
    with torch.no_grad():
        assert torch.equal(model.eval()(x), ridge(x))
    # Epoch 0: every batch a counted no-op step; no parameter, no optimiser state changed.
    assert probe.steps == len(dm.train_dataloader()) > 1 and probe.optimizer_state == {}
    assert probe.before.keys() == probe.after.keys()
    assert all(torch.equal(probe.before[k], probe.after[k]) for k in probe.before)
    # Its validation scored the ridge and the checkpoint holds it.
    best = torch.load(trainer.checkpoint_callback.best_model_path, weights_only=True)
    assert best["epoch"] == 0 and best["global_step"] == probe.steps
    assert all(torch.equal(best["state_dict"][k], v) for k, v in probe.before.items())


class EpochOne(Callback):
    """Early stopping's record after epoch 0, and at the first step of epoch 1 with the linear path then."""

    def on_train_epoch_start(self, trainer, pl_module):  # callbacks first, then the training plan's hook
        if trainer.current_epoch == 1:
            self.ridge_score = float(trainer.early_stopping_callback.best_score)

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if trainer.current_epoch == 1 and batch_idx == 0:
            stopping = trainer.early_stopping_callback
            self.record = (stopping.wait_count, float(stopping.best_score))
            self.weight = pl_module.net.linear.weight.detach().clone()
            self.bias = pl_module.net.linear.bias.detach().clone()


def test_epoch_1_shrinks_the_ridge_under_the_residual_and_clears_early_stopping_s_record(tmp_path):
    from lightning.pytorch.callbacks import EarlyStopping

    from src.models.linear import gram, gram_eigen, ridge_per_target, set_solution

    dm = ExpressionDataModule(SyntheticSource(tmp_path / "data", n_samples=400, n_landmarks=12, n_targets=6),
                              batch_size=50)
    model = RidgeResidual(12, 6, alphas=ALPHAS, residual_shrinkage=30.0, optimizer=_adam(), **SMALL)
    probe = EpochOne()
    trainer = _trainer(tmp_path, max_epochs=2, callbacks=[EarlyStopping(monitor="val/mae", patience=5), probe])
    trainer.fit(model, datamodule=dm)
    _, gene_alphas, _ = _loo_ridge(dm)
    assert model.selected["residual_alpha"] == 30 * model.selected["alpha"] and bool(model.shrunk)
    # The linear path under the residual is, for each gene, the ridge of 30 times its alpha, fitted directly.
    train = dm.split_data("train")
    x_mean, y_mean, g, c = gram(train.landmarks, train.targets)
    direct = torch.nn.Linear(12, 6)
    set_solution(direct, ridge_per_target(c, 30 * gene_alphas, gram_eigen(g)), x_mean, y_mean)
    torch.testing.assert_close(probe.weight, direct.weight, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(probe.bias, direct.bias, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(model.net.linear.weight, probe.weight, rtol=0, atol=0)  # then frozen
    # Early stopping scored the ridge after epoch 0, then starts afresh with the residual.
    val = dm.split_data("val")
    with torch.no_grad():
        ridge_mae = float((_loo_ridge(dm)[0](val.landmarks) - val.targets).abs().mean())
    assert probe.ridge_score == pytest.approx(ridge_mae, rel=1e-5)
    assert probe.record == (0, float("inf"))


def test_with_many_samples_of_a_nonlinear_problem_it_beats_ridge_on_validation(tmp_path):
    source = SyntheticSource(tmp_path / "data", n_samples=3000, n_landmarks=10, n_targets=8, latent_dim=4, n_programs=8,
                             nonlinearity=3.0, nonlinear_fraction=[0.9, 1.0], target_noise=[0.05, 0.1])
    dm = ExpressionDataModule(source, batch_size=100)
    L.seed_everything(0)
    model = RidgeResidual(10, 8, alphas=ALPHAS, optimizer=_adam(3e-3), ae_widths=[64], latent=16, mlp_widths=[64])
    trainer = _trainer(tmp_path, max_epochs=8)
    trainer.fit(model, datamodule=dm)
    val = dm.split_data("val")
    with torch.no_grad():
        ridge_mae = float((_ridge(dm)(val.landmarks) - val.targets).abs().mean())
    best = trainer.checkpoint_callback
    assert best.best_model_score < 0.9 * ridge_mae  # 0.297 against 0.344
    assert torch.load(best.best_model_path, weights_only=True)["epoch"] > 0


def _linear_gctx(path, n=1200, p=5, m=8, seed=0):
    """A linear problem with noise and 200 training samples: nothing for the residual to learn but the noise."""
    from src.data.io.gctx import write_gctx

    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, p)).astype(np.float32)
    y = (x @ rng.normal(size=(p, m)) + 0.5 * rng.normal(size=(n, m))).astype(np.float32)
    ids = [f"L{i}" for i in range(p)] + [f"T{i}" for i in range(m)]
    write_gctx(path, np.hstack([x, y]), [f"s{i}" for i in range(n)], ids)
    return ["data=gctx", f"data.source.path={path}", f"data.source.landmark_ids=[{','.join(ids[:p])}]",
            f"data.source.target_ids=[{','.join(ids[p:])}]", "data.split=[200,500,500]", "data.calibration=0",
            "logger=none", f"model.alphas=[{','.join(map(str, ALPHAS))}]",
            "trainer.precision=32-true"]  # lr_l2 under bf16-mixed would score its own bf16-rounded products


def test_where_the_residual_cannot_help_best_ckpt_is_exactly_ridge(train_config, tmp_path):
    """A fast-learning residual only fits the training noise: every later epoch validates worse (each of
    8 data seeds tried), so best.ckpt is epoch 0's, which predicts as its ridge alone does."""
    data = _linear_gctx(tmp_path / "linear.gctx")
    cfg = train_config("model=ridge_residual", *data, "trainer.max_epochs=4", "model.optimizer.lr=0.03",
                       "model.ae_widths=[16]", "model.latent=4", "model.mlp_widths=[16]")
    metrics = train(cfg)
    best = f"{cfg.paths.output_dir}/checkpoints/best.ckpt"
    assert torch.load(best, weights_only=True)["epoch"] == 0
    dm = build_datamodule(cfg)
    ridge, _, _ = _loo_ridge(dm)
    test = dm.split_data("test")
    with torch.no_grad():
        assert torch.equal(load_model(best)(test.landmarks), ridge(test.landmarks))
        assert metrics["test/mae"] == pytest.approx(float((ridge(test.landmarks) - test.targets).abs().mean()), rel=1e-6)


def test_end_to_end_train_eval_and_predict_with_intervals(train_config, tmp_path, data_dir):
    from src.data.io.gctx import write_gctx
    from src.eval import evaluate
    from src.predict import predict

    cfg = train_config("model=ridge_residual", "debug=fast", "logger=none")
    metrics = train(cfg)
    out = cfg.paths.output_dir
    assert metrics["test/mae"] < 0.9 * float(build_datamodule(cfg).splits["test"].targets.abs().mean())
    assert abs(metrics["test/interval_coverage"] - 0.9) < 0.05 and metrics["calibration/reliable_genes"] > 0
    saved = json.load(open(f"{out}/metrics.json"))
    assert saved["model"] == "RidgeResidual" and saved["selected"]["alpha"] in cfg.model.alphas
    ckpt = f"{out}/checkpoints/best.ckpt"
    evaluated = evaluate(compose_config("eval", tmp_path / "eval", [f"ckpt_path={ckpt}"], data_dir))
    assert evaluated["test/mae"] == pytest.approx(metrics["test/mae"], rel=1e-6)
    # src.predict on the raw test profiles, with 90% intervals.
    dm = build_datamodule(cfg)
    space, test = dm.preprocessing, dm.splits["test"]
    raw = space.landmark_scaler.inverse(test.landmarks.numpy())
    source = write_gctx(tmp_path / "in.gctx", raw, dm.sample_ids["test"], list(space.landmark_ids))
    pcfg = compose_config("predict", tmp_path / "predict", [f"ckpt_path={ckpt}", f"input={source}",
                                                            f"output={tmp_path / 'out.h5ad'}", "interval=0.9"])
    (written,) = predict(pcfg)
    adata = anndata.read_h5ad(written)
    with torch.no_grad():
        expected = load_model(ckpt)(test.landmarks).numpy()
    np.testing.assert_allclose(adata.layers["standardised"], expected, atol=2e-4)
    assert (adata.layers["standardised_lower"] < adata.layers["standardised"]).all()
    assert (adata.layers["standardised"] < adata.layers["standardised_upper"]).all()
    assert adata.uns["model"] == "RidgeResidual"


RESUMED = ["model=ridge_residual", "debug=fast", "logger=none", "model.dropout=0.1"]  # dropout: the random state too


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory, data_dir):
    """The metrics and the run folder of a run of :data:`RESUMED` that was never stopped."""
    cfg = compose_config("train", tmp_path_factory.mktemp("whole"), RESUMED, data_dir)
    return train(cfg), cfg.paths.output_dir


@pytest.mark.parametrize("stopped_after", [1, 2])  # after the ridge epoch; after a residual epoch
def test_a_resumed_run_ends_as_if_never_interrupted_without_refitting_the_ridge(train_config, tmp_path, uninterrupted,
                                                                                monkeypatch, stopped_after):
    common, (whole, whole_dir) = RESUMED, uninterrupted
    fit_and_test(build(train_config(*common, "keep_last_checkpoint=true"), callbacks=[StopAfterEpochs(stopped_after)]))
    stopped = torch.load(f"{tmp_path}/run/checkpoints/last.ckpt", weights_only=True)
    assert stopped["epoch"] == stopped_after - 1

    def refit(*args, **kwargs):
        raise AssertionError("a resumed run refitted the ridge")

    monkeypatch.setattr(RidgeResidual, "fit_linear", refit)
    run = build(train_config(*common, "ckpt_path=last"))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert fit_and_test(run) == whole
    # Epoch 0 took as many (no-op) steps as it has batches, so Lightning sees an end-of-epoch checkpoint.
    assert not [w for w in caught if "ended before the epoch ended" in str(w.message)]
    assert run.model.selected == json.load(open(f"{whole_dir}/metrics.json"))["selected"]


def test_bad_settings_are_input_errors(train_config):
    from src.utils.config import validate_config

    with pytest.raises(InputError, match="model.alphas"):
        RidgeResidual(4, 3, alphas=[], **SMALL)
    with pytest.raises(InputError, match="model.residual_shrinkage=0.5"):
        RidgeResidual(4, 3, residual_shrinkage=0.5, **SMALL)
    with pytest.raises(InputError, match=r"model.residual_shrinkage=abc: expected a factor >= 1"):
        validate_config(train_config("model=ridge_residual", "model.residual_shrinkage=abc"))
