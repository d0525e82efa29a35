import numpy as np
import pytest
import torch

from src.data.datamodule import ExpressionDataModule
from src.data.preprocessing import Preprocessing
from src.data.io.gctx import write_gctx
from src.data.sources import GCTXSource, SyntheticSource
from src.data.sources.base import ExpressionData


def _gctx(tmp_path, values, n_landmarks=3):
    ids = [f"g{i}" for i in range(values.shape[1])]
    path = write_gctx(tmp_path / "d.gctx", values, [f"s{i}" for i in range(len(values))], ids)
    return path, ids[:n_landmarks], ids[n_landmarks:]


def test_standardises_with_training_statistics_only(tmp_path):
    rng = np.random.default_rng(0)
    values = rng.normal(5, 2, size=(200, 6)).astype(np.float32)
    path, lm, tg = _gctx(tmp_path, values)
    dm = ExpressionDataModule(GCTXSource(path, lm, tg), split=(0.5, 0.25, 0.25), split_seed=1)
    dm.setup()
    train_x = dm.splits["train"].landmarks
    np.testing.assert_allclose(train_x.mean(0), 0, atol=1e-5)
    # Changing every val/test value leaves the training data and statistics untouched.
    held_out = [int(s[1:]) for s in dm.sample_ids["val"] + dm.sample_ids["test"]]
    values[held_out] += 100
    path2, *_ = _gctx(tmp_path / "other", values)
    dm2 = ExpressionDataModule(GCTXSource(path2, lm, tg), split=(0.5, 0.25, 0.25), split_seed=1)
    dm2.setup()
    assert torch.equal(dm2.splits["train"].landmarks, train_x)
    np.testing.assert_array_equal(dm2.preprocessing.target_scaler.mean, dm.preprocessing.target_scaler.mean)


def test_batches_are_cut_by_index_from_memory(tmp_path):
    values = np.arange(40 * 5, dtype=np.float32).reshape(40, 5)
    path, lm, tg = _gctx(tmp_path, values)
    dm = ExpressionDataModule(GCTXSource(path, lm, tg), batch_size=8, eval_batch_size=3)
    dm.setup()
    x, y = next(iter(dm.train_dataloader()))
    assert x.shape == (8, 3) and y.shape == (8, 2) and x.dtype == torch.float32
    assert sum(len(b[0]) for b in dm.val_dataloader()) == len(dm.splits["val"])


class _OnDevice:
    """The part of a Trainer the DataModule reads, with an accelerator device of our choosing."""

    def __init__(self, device):
        self.strategy = type("Strategy", (), {"root_device": torch.device(device)})()
        self.global_rank, self.world_size = 0, 1


@pytest.mark.parametrize("on_device, placed", [(True, True), (False, False), ("auto", False)])
def test_splits_are_held_on_the_accelerator_when_asked(tmp_path, on_device, placed):
    """data.on_device: batches cut from a copy on the accelerator (made once), the host split untouched;
    auto never assumes room on an accelerator it cannot ask (here the meta device, which has no memory)."""
    values = np.arange(40 * 5, dtype=np.float32).reshape(40, 5)
    path, lm, tg = _gctx(tmp_path, values)
    dm = ExpressionDataModule(GCTXSource(path, lm, tg), batch_size=8, on_device=on_device)
    dm.setup()
    dm.trainer = _OnDevice("meta")
    x, y = next(iter(dm.train_dataloader()))
    assert (x.device.type, y.device.type) == (("meta", "meta") if placed else ("cpu", "cpu")) and x.shape == (8, 3)
    assert dm.splits["train"].landmarks.device.type == "cpu"
    assert (dm._placed("train") is dm._placed("train")) and dm.splits["train"].nbytes == len(dm.splits["train"]) * 5 * 4
    dm.teardown("fit")
    assert not dm._device_splits
    dm.trainer = _OnDevice("cpu")  # a CPU run: always the host tensors
    assert dm._placed("train") is dm.splits["train"]


def test_preprocessing_round_trips_through_plain_types(tmp_path):
    dm = ExpressionDataModule(SyntheticSource(tmp_path, n_samples=60, n_landmarks=4, n_targets=5))
    dm.setup()
    d = dm.preprocessing.to_dict()
    saved = torch.load(_save(tmp_path, d), weights_only=True)
    back = Preprocessing.from_dict(saved)
    assert back.target_ids == dm.preprocessing.target_ids
    np.testing.assert_array_equal(back.landmark_scaler.std, dm.preprocessing.landmark_scaler.std)
    assert back.noise_floor_mae == pytest.approx(dm.preprocessing.noise_floor_mae) and back.noise_floor_mae > 0


def _save(tmp_path, obj):
    torch.save(obj, tmp_path / "g.pt")
    return tmp_path / "g.pt"


def test_limits_shrink_a_synthetic_source(tmp_path):
    dm = ExpressionDataModule(SyntheticSource(tmp_path, n_samples=500), max_samples=50, max_targets=7)
    dm.prepare_data()
    dm.setup()
    assert (dm.n_landmarks, dm.n_targets) == (943, 7)
    assert sum(len(s) for s in dm.splits.values()) == 50


def test_missing_genes_and_bad_values_fail_clearly(tmp_path):
    values = np.ones((10, 4), dtype=np.float32)
    path, lm, tg = _gctx(tmp_path, values)
    with pytest.raises(ValueError, match=r"1 of 2 requested target ids are missing.*nope"):
        GCTXSource(path, lm, [tg[0], "nope"]).load()
    values[3, 1] = np.nan
    path, lm, tg = _gctx(tmp_path, values)
    with pytest.raises(ValueError, match=rf"1 non-finite .* first in sample \S+ feature {lm[1]}"):
        GCTXSource(path, lm, tg).load()
