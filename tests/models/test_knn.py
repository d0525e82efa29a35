"""KNN-GE against a brute-force computation."""

import numpy as np
import torch

from src.data.batches import TensorBatches
from src.models.knn import KNN, nearest


def test_neighbours_and_prediction_match_brute_force():
    rng = np.random.default_rng(0)
    ref_x, ref_y = rng.normal(size=(200, 5)).astype(np.float32), rng.normal(size=(200, 3)).astype(np.float32)
    query = rng.normal(size=(30, 5)).astype(np.float32)
    dist = ((query[:, None, :] - ref_x[None, :, :]) ** 2).sum(-1)
    order = np.argsort(dist, axis=1)[:, :7]
    got = nearest(torch.from_numpy(query), torch.from_numpy(ref_x), 7, chunk=8).numpy()
    np.testing.assert_array_equal(got, order)
    model = KNN(5, 3, ks=[7])
    model.fit(TensorBatches(torch.from_numpy(ref_x), torch.from_numpy(ref_y)), TensorBatches(torch.from_numpy(query), torch.zeros(30, 3)))
    np.testing.assert_allclose(model(torch.from_numpy(query)).numpy(), ref_y[order].mean(1), rtol=1e-5, atol=1e-6)


def test_k_is_chosen_by_validation_mae():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(400, 3)).astype(np.float32)
    y = (np.sin(x).sum(1, keepdims=True) + 0.8 * rng.normal(size=(400, 1))).astype(np.float32)
    train = TensorBatches(torch.from_numpy(x[:300]), torch.from_numpy(y[:300]))
    val = TensorBatches(torch.from_numpy(x[300:]), torch.from_numpy(y[300:]))
    ks = [1, 3, 10, 30]
    maes = []
    for k in ks:
        single = KNN(3, 1, ks=[k])
        single.fit(train, val)
        maes.append(float((single(val.landmarks) - val.targets).abs().mean()))
    model = KNN(3, 1, ks=ks)
    model.fit(train, val)
    assert int(model.k) == ks[int(np.argmin(maes))] == model.selected["k"]
    assert int(model.k) > 1  # noisy targets: averaging helps
