"""The linear baselines against direct numpy / scikit-learn solutions."""

import lightning as L
import numpy as np
import pytest
import torch

from src.data.batches import TensorBatches
from src.models.linear import LinearRegression, gram, lasso_path, ridge_path


def _problem(n=300, p=6, m=3, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, p))
    y = x @ rng.normal(size=(p, m)) + 1.5 + 0.5 * rng.normal(size=(n, m))
    return x.astype(np.float32), y.astype(np.float32)


def _fit(model, x, y, xv=None, yv=None):
    train = TensorBatches(torch.from_numpy(x), torch.from_numpy(y))
    val = TensorBatches(torch.from_numpy(xv if xv is not None else x), torch.from_numpy(yv if yv is not None else y))
    with torch.no_grad():
        model.fit(train, val)
    return model


def test_least_squares_matches_numpy_lstsq():
    x, y = _problem()
    model = _fit(LinearRegression(6, 3), x, y)
    xa = np.c_[x, np.ones(len(x))].astype(np.float64)
    w, *_ = np.linalg.lstsq(xa, y, rcond=None)
    np.testing.assert_allclose(model.net.weight.detach().numpy(), w[:-1].T, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(model.net.bias.detach().numpy(), w[-1], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("alpha", [0.1, 2.0])
def test_ridge_matches_the_normal_equations(alpha):
    x, y = _problem()
    xc, yc = x - x.mean(0), y - y.mean(0)
    expected = np.linalg.solve(xc.T @ xc / len(x) + alpha * np.eye(6), xc.T @ yc / len(x))
    _, _, g, c = gram(torch.from_numpy(x), torch.from_numpy(y))
    np.testing.assert_allclose(ridge_path(g, c, [alpha])[0].numpy(), expected, rtol=1e-6, atol=1e-8)


def test_lasso_matches_scikit_learn():
    from sklearn import linear_model as sklearn
    x, y = _problem(n=400, p=20, m=4)
    _, _, g, c = gram(torch.from_numpy(x), torch.from_numpy(y))
    ours = lasso_path(g, c, [0.3, 0.05], tol=1e-8, max_iter=5000)
    for alpha, w in zip([0.3, 0.05], ours):
        ref = sklearn.Lasso(alpha=alpha, tol=1e-10, max_iter=100000).fit(x.astype(np.float64), y.astype(np.float64))
        np.testing.assert_allclose(w.numpy(), ref.coef_.T, atol=1e-5)
    assert (ours[0] == 0).sum() > (ours[1] == 0).sum() > 0  # stronger penalty, sparser


@pytest.mark.parametrize("penalty", ["l1", "l2"])
def test_penalty_is_chosen_by_validation_mae(penalty):
    x, y = _problem(n=60, p=40, m=3, seed=1)  # few samples per feature: some penalty helps
    xv, yv = _problem(n=500, p=40, m=3, seed=1)
    alphas = [3.0, 0.3, 0.03, 0.003]
    model = _fit(LinearRegression(40, 3, penalty=penalty, alphas=alphas), x, y, xv, yv)
    maes = []
    for alpha in alphas:
        single = _fit(LinearRegression(40, 3, penalty=penalty, alphas=[alpha]), x, y)
        maes.append(float((single.net(torch.from_numpy(xv)).detach() - torch.from_numpy(yv)).abs().mean()))
    assert model.selected["alpha"] == alphas[int(np.argmin(maes))]


def test_fit_runs_as_one_lightning_step_and_stops(tmp_path):
    from src.data.datamodule import ExpressionDataModule
    from src.data.sources import SyntheticSource

    dm = ExpressionDataModule(SyntheticSource(tmp_path, n_samples=300, n_landmarks=10, n_targets=4), batch_size=20)
    model = LinearRegression(10, 4)
    trainer = L.Trainer(max_epochs=5, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, accelerator="cpu")
    trainer.fit(model, datamodule=dm)
    assert trainer.current_epoch == 1 and trainer.global_step == 1
