"""Trust (reliability, difficulty model, stored calibration samples) and interval_metrics with a fixed
linear model standing in for a trained network."""

import io
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from src.data.batches import TensorBatches
from src.data.preprocessing import Preprocessing
from src.data.sources.base import ExpressionData
from src.models import trust as trust_module
from src.models.calibration import interval_metrics
from src.models.trust import Trust, predict_standardised
from src.models.trust import Intervals

N_LM, N_TG = 6, 5


class FixedLinear(torch.nn.Module):
    """What predict_standardised needs of a model: ``device``, ``hparams.n_outputs``, train/eval."""

    def __init__(self, weight: np.ndarray):
        super().__init__()
        self.net = torch.nn.Linear(weight.shape[0], weight.shape[1], bias=False)
        with torch.no_grad():
            self.net.weight.copy_(torch.from_numpy(weight.T.astype(np.float32)))
        self.hparams = SimpleNamespace(n_outputs=weight.shape[1])

    @property
    def device(self):
        return torch.device("cpu")

    def forward(self, x):
        return self.net(x)


@pytest.fixture(scope="module")
def setup():
    """Independent landmarks; targets 0-3 linear in them with noise growing with |landmark 0|; target 4
    pure noise. The model is least squares on the training rows (standardised scale)."""
    rng = np.random.default_rng(0)
    n = 6000
    z = rng.standard_normal((n, N_LM))
    noise_scale = 0.2 + np.abs(z[:, :1])
    coef = np.zeros((N_LM, N_TG))
    coef[[0, 1, 2, 3], [0, 1, 2, 3]] = [1.0, 1.5, 0.8, 1.2]
    targets = z @ coef + noise_scale * rng.standard_normal((n, N_TG)) * [0.5, 0.5, 0.5, 0.5, 1.0]
    data = ExpressionData((z * 2 + 7).astype(np.float32), (targets + 3).astype(np.float32), [f"s{i}" for i in range(n)],
                          [f"L{i}" for i in range(N_LM)], [f"T{i}" for i in range(N_TG)])
    raw = data.landmarks.copy()
    train, val, cal, test = np.split(np.arange(n), [3000, 4000, 5000])
    pp = Preprocessing.fit(data, train)
    x, y = data.landmarks, data.targets
    w, *_ = np.linalg.lstsq(x[train], y[train], rcond=None)
    model = FixedLinear(w)
    split = {name: TensorBatches(torch.from_numpy(x[rows]), torch.from_numpy(y[rows])) for name, rows in
             (("val", val), ("calibration", cal), ("test", test))}
    return SimpleNamespace(model=model, pp=pp, raw=raw, split=split, rows=dict(val=val, calibration=cal, test=test))


def _trust(s):
    return Trust.fit(s.model, s.split["val"], s.split["calibration"], s.raw[s.rows["calibration"]])


def test_predict_standardised_restores_the_mode_and_handles_empty_input(setup):
    model = setup.model
    model.train()
    x = setup.split["test"].landmarks
    np.testing.assert_allclose(predict_standardised(model, x, chunk=7), model(x).detach().numpy(), rtol=1e-6, atol=1e-6)
    assert model.training
    assert predict_standardised(model, np.zeros((0, N_LM))).shape == (0, N_TG)


def test_trust_calls_the_noise_target_unreliable(setup):
    trust = _trust(setup)
    np.testing.assert_array_equal(trust.reliability.reliable, [True, True, True, True, False])
    assert trust.reliability.n_samples == 1000
    assert trust.raw.shape == (1000, N_LM) and trust.truth.dtype == np.float16
    # the difficulty model learned that samples far from 0 on landmark 0 are harder (|z0| is not linear,
    # so only the bias and floor are meaningful; the fitted mean error must match the validation one)
    val = setup.split["val"]
    val_error = np.abs(predict_standardised(setup.model, val.landmarks) - val.targets.numpy()).mean(1)
    assert trust.difficulty(val.landmarks.numpy()).mean() == pytest.approx(val_error.mean(), rel=0.05)
    assert trust.difficulty.floor == pytest.approx(0.1 * val_error.mean(), rel=1e-5)


def test_trust_intervals_are_the_calibration_of_the_stored_samples(setup):
    trust = _trust(setup)
    intervals = trust.intervals(setup.model, setup.pp, 0.1)
    x = setup.split["calibration"].landmarks.numpy()
    direct = Intervals.calibrate(predict_standardised(setup.model, x), trust.truth.astype(np.float32), x, trust.difficulty, 0.1)
    np.testing.assert_allclose(intervals.constant, direct.constant, rtol=1e-5)
    np.testing.assert_allclose(intervals.adaptive, direct.adaptive, rtol=1e-5)
    assert intervals.guaranteed and intervals.n_samples == 1000
    test = setup.split["test"]
    scored = np.array([0, 1, 2, 3])
    metrics = interval_metrics(setup.model, intervals, test.landmarks, test.targets, scored, prefix="t/")
    assert set(metrics) == {f"t/{a}_{b}" for a in ("interval", "adaptive_interval") for b in ("coverage", "width", "genes_within_0.05")}
    for name in ("interval", "adaptive_interval"):
        assert abs(metrics[f"t/{name}_coverage"] - 0.9) < 0.03
        assert metrics[f"t/{name}_genes_within_0.05"] == 1.0
    # the same with predictions passed in
    pred = predict_standardised(setup.model, test.landmarks)
    assert interval_metrics(setup.model, intervals, test.landmarks, test.targets, scored, "t/", pred=pred) == metrics


def test_reliability_for_a_panel_is_measured_again(setup):
    trust = _trust(setup)
    assert trust.reliability_for(setup.model, setup.pp) is trust.reliability
    assert trust.reliability_for(setup.model, setup.pp, np.ones(N_LM, bool)) is trust.reliability
    present = np.ones(N_LM, bool)
    present[1] = False  # target 1 depends on landmark 1 alone, independent of the others: lost
    panel = trust.reliability_for(setup.model, setup.pp, present)
    assert panel is not trust.reliability
    assert panel.heldout_pearson[1] < 0.3 < 0.7 < trust.reliability.heldout_pearson[1]
    assert not panel.reliable[1]
    assert panel.reliable[[0, 2, 3]].all()
    # and intervals for that panel are wider for the target that lost its landmark
    full = trust.intervals(setup.model, setup.pp, 0.1)
    partial = trust.intervals(setup.model, setup.pp, 0.1, present)
    assert partial.constant[1] > 1.5 * full.constant[1]


def test_trust_round_trips_through_a_checkpoint(setup):
    trust = _trust(setup)
    buffer = io.BytesIO()
    torch.save(trust.to_dict(), buffer)
    buffer.seek(0)
    back = Trust.from_dict(torch.load(buffer, weights_only=True))
    np.testing.assert_array_equal(back.raw, trust.raw)
    np.testing.assert_array_equal(back.truth, trust.truth)
    np.testing.assert_array_equal(back.reliability.reliable, trust.reliability.reliable)
    a, b = trust.intervals(setup.model, setup.pp, 0.2), back.intervals(setup.model, setup.pp, 0.2)
    np.testing.assert_array_equal(a.constant, b.constant)
    np.testing.assert_array_equal(a.adaptive, b.adaptive)


def test_trust_stores_at_most_max_stored_samples(setup, monkeypatch):
    monkeypatch.setattr(trust_module, "MAX_STORED", 50)
    trust = _trust(setup)
    assert trust.raw.shape == (50, N_LM) and trust.truth.shape == (50, N_TG)
    np.testing.assert_array_equal(trust.raw, setup.raw[setup.rows["calibration"][:50]])
    assert trust.reliability.n_samples == 1000  # measured on all of them


def test_trust_without_calibration_samples_fails(setup):
    empty = TensorBatches(torch.zeros(0, N_LM), torch.zeros(0, N_TG))
    with pytest.raises(ValueError, match="calibration"):
        Trust.fit(setup.model, setup.split["val"], empty, np.zeros((0, N_LM), np.float32))
