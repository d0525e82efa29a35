import numpy as np
import pytest
import torch

from src.models.metrics import GeneMetrics


def test_mae_and_pearson_match_numpy_over_batches():
    rng = np.random.default_rng(0)
    truth = rng.normal(size=(120, 4))
    pred = truth + rng.normal(scale=0.5, size=(120, 4))
    metrics = GeneMetrics(4)
    for chunk in np.array_split(np.arange(120), 7):
        metrics.update(torch.tensor(pred[chunk], dtype=torch.float32), torch.tensor(truth[chunk], dtype=torch.float32))
    per_gene = metrics.per_gene()
    np.testing.assert_allclose(per_gene["mae"], np.abs(pred - truth).mean(0), rtol=1e-5)
    r = [np.corrcoef(pred[:, g], truth[:, g])[0, 1] for g in range(4)]
    np.testing.assert_allclose(per_gene["pearson"], r, rtol=1e-4)
    summary = GeneMetrics.summarise(per_gene)
    assert float(summary["mae"]) == pytest.approx(np.abs(pred - truth).mean(), rel=1e-5)
