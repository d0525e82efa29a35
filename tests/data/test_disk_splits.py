"""Preprocessed splits on disk: the automatic choice, the same splits, statistics and batches as in memory,
one store shared and reused, and the same trained model."""

import logging

import numpy as np
import pytest
import torch

from src.data.datamodule import ExpressionDataModule
from src.data.disk_splits import choose_storage
from src.data.sources.synthetic import SyntheticSource


def test_auto_holds_data_in_memory_only_when_every_process_fits_in_half_the_memory(caplog):
    gb = 10**9
    with caplog.at_level(logging.INFO, logger="src.data.disk_splits"):
        assert choose_storage("auto", 4 * gb, 1, available=20 * gb) == "memory"
        assert choose_storage("auto", 6 * gb, 2, available=20 * gb) == "disk"  # 12 GB > half of 20
        assert choose_storage("memory", 60 * gb, 8, available=gb) == "memory"  # asked for: kept
    assert "data.storage=memory holds it in memory" in caplog.text and "12.00 GB" not in caplog.text
    assert "6.00 GB preprocessed x 2 process(es) is more than 50% of the 20.0 GB" in caplog.text


def datamodule(directory, storage, quantile_normalize):
    source = SyntheticSource(directory, n_samples=300, n_landmarks=20, n_targets=30, seed=3)
    dm = ExpressionDataModule(source, batch_size=32, calibration=0.1, storage=storage,
                              quantile_normalize=quantile_normalize)
    dm.prepare_data()
    dm.setup()
    return dm


@pytest.mark.parametrize("quantile_normalize", [False, True])
def test_disk_gives_the_splits_statistics_and_batches_of_memory(tmp_path, caplog, quantile_normalize):
    memory = datamodule(tmp_path, "memory", quantile_normalize)
    with caplog.at_level(logging.INFO, logger="src.data.disk_splits"):
        disk = datamodule(tmp_path, "disk", quantile_normalize)
        again = datamodule(tmp_path, "disk", quantile_normalize)
    assert disk.storage_used == "disk" and disk.store.is_dir() and again.store == disk.store
    assert "Wrote the preprocessed splits" in caplog.text and "Using the preprocessed splits" in caplog.text
    a, b = memory.preprocessing.to_dict(), disk.preprocessing.to_dict()
    for key, value in a.items():  # exact: the same float64 sums over the same blocks
        if isinstance(value, torch.Tensor):
            torch.testing.assert_close(b[key], value, rtol=0, atol=0)
    np.testing.assert_array_equal(memory.preprocessing.imputer.covariance, disk.preprocessing.imputer.covariance)
    for name in ("train", "val", "calibration", "test"):
        m, d = memory.splits[name], disk.splits[name]
        assert memory.sample_ids[name] == disk.sample_ids[name]
        torch.testing.assert_close(d.landmarks, m.landmarks, rtol=0, atol=0)
        torch.testing.assert_close(d.targets, m.targets, rtol=0, atol=0)
        torch.testing.assert_close(d.deployed_landmarks, m.deployed_landmarks, rtol=0, atol=0)
        if name != "train":
            np.testing.assert_array_equal(disk.raw(name), memory.raw(name))
    index = torch.tensor([17, 3, 200, 4, 5])
    for x, y in zip(memory.splits["train"][index], disk.splits["train"][index]):
        torch.testing.assert_close(y, x, rtol=0, atol=0)
    for x, y in zip(memory.train_dataloader(), disk.train_dataloader()):  # the same shuffled batches
        torch.testing.assert_close(y[0], x[0], rtol=0, atol=0)


def test_a_killed_writers_leftovers_are_removed_and_the_store_is_written(tmp_path):
    first = datamodule(tmp_path, "disk", False)
    store = first.store
    import shutil

    shutil.rmtree(store)
    leftover = store.with_name(f".{store.name}.999999.tmp")
    leftover.mkdir()
    (leftover / "landmarks.npy").write_bytes(b"partial")
    second = datamodule(tmp_path, "disk", False)
    assert second.store == store and (store / "preprocessing.pt").exists() and not leftover.exists()


def test_storage_disk_on_a_source_that_cannot_be_opened_by_rows_says_so(tmp_path):
    from src.common.errors import InputError

    class InMemoryOnly:
        def prepare(self, *args):
            pass

        def load(self, *args):
            raise AssertionError("not reached")

    dm = ExpressionDataModule(InMemoryOnly(), storage="disk")
    with pytest.raises(InputError, match="data.storage=disk: the InMemoryOnly cannot be read from disk by rows.*data.storage=auto"):
        dm.setup()


def test_a_model_trained_from_disk_has_the_test_mae_of_memory(train_config, quick_dgex):
    """The same seed, the same batches: D-GEX (debug=fast) from disk gives the in-memory run's metrics."""
    from src.train import train

    cfg, in_memory = quick_dgex
    from_disk = train(train_config("model=dgex", "debug=fast", "data.storage=disk"))
    assert from_disk["test/mae"] == pytest.approx(in_memory["test/mae"], abs=1e-5)
    assert from_disk["test/interval_coverage"] == pytest.approx(in_memory["test/interval_coverage"], abs=1e-5)
