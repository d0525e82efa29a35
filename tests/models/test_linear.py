"""The linear baselines against direct numpy / scikit-learn solutions."""

import lightning as L
import numpy as np
import pytest
import torch

from src.data.batches import TensorBatches
from src.models.linear import LinearRegression, fit_ridge_loo, gram, gram_eigen, lasso_path, ridge_loo_mse, ridge_path


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


def _genes_of_every_noise(n, p=30, m=8, seed=0):
    """Targets from sparse landmarks with noise from 0.1 to 4 (scale 1): each needs another ridge penalty."""
    genes, rng = np.random.default_rng(0), np.random.default_rng(seed)  # the same genes, samples of the seed
    w = genes.normal(size=(p, m)) * (genes.random((p, m)) < 0.3)
    x = rng.normal(size=(n, p))
    return x.astype(np.float32), (x @ w + 2.0 + rng.normal(size=(n, m)) * np.geomspace(0.1, 4, m)).astype(np.float32)


@pytest.mark.parametrize("n", [20, 200])  # fewer samples than landmarks, and more
def test_leave_one_out_errors_match_scikit_learn_ridgecv(n):
    from sklearn.linear_model import RidgeCV

    x, y = _genes_of_every_noise(n)
    alphas = [0.01, 0.1, 1.0, 10.0, 100.0]
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    x_mean, y_mean, g, c = gram(xt, yt)
    ours = ridge_loo_mse(xt, yt, alphas, x_mean, y_mean, c, gram_eigen(g), chunk=7)  # several chunks
    # scikit-learn's penalty is alpha ||w||^2 on the summed squared error: n times ours.
    ref = RidgeCV(alphas=[a * n for a in alphas], alpha_per_target=True, store_cv_results=True)
    ref.fit(x.astype(np.float64), y.astype(np.float64))
    np.testing.assert_allclose(ours.numpy(), ref.cv_results_.mean(0).T, rtol=1e-6)


def test_per_gene_penalties_are_kept_where_they_validate_better():
    from torch import nn

    alphas = [0.01, 0.1, 1.0, 10.0, 100.0]
    x, y = _genes_of_every_noise(60)
    xv, yv = _genes_of_every_noise(2000, seed=1)
    train, val = TensorBatches(torch.from_numpy(x), torch.from_numpy(y)), TensorBatches(torch.from_numpy(xv), torch.from_numpy(yv))
    linear = nn.Linear(30, 8)
    gene_alphas, per_gene, _, _ = fit_ridge_loo(linear, train, val, alphas)
    x_mean, y_mean, g, c = gram(train.landmarks, train.targets)
    loo = ridge_loo_mse(train.landmarks, train.targets, alphas, x_mean, y_mean, c, gram_eigen(g))
    assert per_gene and gene_alphas.tolist() == [alphas[i] for i in loo.argmin(0)] and len(set(gene_alphas.tolist())) > 1
    # The weights are each gene's own ridge.
    for t, alpha in enumerate(gene_alphas.tolist()):
        expected = ridge_path(g, c[:, t : t + 1], [alpha])[0][:, 0]
        torch.testing.assert_close(linear.weight[t].double(), expected, rtol=1e-5, atol=1e-6)
    # Validated on a split that one penalty for all predicts exactly, one penalty for all is kept.
    one = alphas[int(loo.mean(1).argmin())]
    exact = (val.landmarks.double() - x_mean) @ ridge_path(g, c, [one])[0] + y_mean
    gene_alphas, per_gene, _, _ = fit_ridge_loo(linear, train, TensorBatches(val.landmarks, exact.float()), alphas)
    assert not per_gene and gene_alphas.tolist() == [one] * 8


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
