import lightning as L
import numpy as np
import pytest
import torch

from src.data.batches import IndexBatchSampler, TensorBatches, index_loader
from src.models.linear import LinearRegression


def _fit(x, y, ridge):
    model = LinearRegression(x.shape[1], y.shape[1], ridge=ridge)
    loader = index_loader(TensorBatches(x, y), IndexBatchSampler(len(x), 50, shuffle=True, seed=0))
    trainer = L.Trainer(max_epochs=5, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, accelerator="cpu")
    trainer.fit(model, train_dataloaders=loader)
    assert trainer.current_epoch == 1  # one pass, then it stops
    return model


@pytest.mark.parametrize("ridge", [0.0, 0.5])
def test_closed_form_matches_numpy(ridge):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 6)).astype(np.float32)
    y = (x @ rng.normal(size=(6, 3)) + 1.5 + 0.1 * rng.normal(size=(300, 3))).astype(np.float32)
    model = _fit(torch.from_numpy(x), torch.from_numpy(y), ridge)
    xa = np.c_[x, np.ones(300)].astype(np.float64)
    penalty = np.diag([ridge * 300] * 6 + [0.0])
    w = np.linalg.solve(xa.T @ xa + penalty, xa.T @ y)
    np.testing.assert_allclose(model.net.weight.detach().numpy(), w[:-1].T, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(model.net.bias.detach().numpy(), w[-1], rtol=1e-4, atol=1e-5)
