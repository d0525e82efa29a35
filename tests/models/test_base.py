"""The shared training plan: what a training step logs, and that it never waits for the device in between."""

from __future__ import annotations

import contextlib

import pytest
import torch
from omegaconf import open_dict

from src.train import build

# The ways a value is read back from the device to the host (each one waits for the device on a GPU).
READ_BACKS = ("item", "tolist", "numpy", "cpu", "__float__", "__int__", "__bool__", "__index__")


@contextlib.contextmanager
def counting_read_backs(counter: dict, host_values):
    """Count every call of a read-back method of ``torch.Tensor`` while ``counter["on"]`` is true, into
    ``counter["reads"]``, except on the tensors ``host_values()`` returns (what ``log_train_step`` logged:
    values it already copied to the host, which the progress bar shows until the next logging step).
    On this CPU machine every tensor is a host tensor; on a GPU each counted call would wait for the device."""
    originals = {name: getattr(torch.Tensor, name) for name in READ_BACKS}

    def wrap(name, original):
        def method(self, *args, **kwargs):
            if counter["on"]:
                counter["on"] = False  # what the check itself reads is not counted
                if not any(self.data_ptr() == value.data_ptr() for value in host_values()):  # (a view of it)
                    counter["reads"] += 1
                counter["on"] = True
            return original(self, *args, **kwargs)
        return method

    for name, original in originals.items():
        setattr(torch.Tensor, name, wrap(name, original))
    try:
        yield counter
    finally:
        for name, original in originals.items():
            setattr(torch.Tensor, name, original)


@pytest.mark.parametrize("model", ["dgex", "egex", "resmlp", "ggan"])
def test_a_training_step_reads_nothing_back_from_the_device_except_on_logging_steps(train_config, model):
    """From the start of a training batch to its end, callbacks (the progress bar) included: reads only on
    the steps that log (every trainer.log_every_n_steps), none on the others."""
    cfg = train_config(f"model={model}", "debug=fast", "logger=csv", "trainer.max_epochs=1", "trainer.log_every_n_steps=10")
    with open_dict(cfg):
        cfg.trainer.enable_progress_bar = True  # what a user sees; the bar reads the values it shows
    run = build(cfg)
    module, steps_with_reads, devices = run.model, {}, set()
    counter = {"on": False, "reads": 0}

    def batch_start(batch, batch_idx):
        counter.update(on=True, reads=0)

    def batch_end(outputs, batch, batch_idx):  # Lightning calls the module's hook after every callback's
        counter["on"] = False
        devices.update(value.device.type for value in host_values())
        if counter["reads"]:
            steps_with_reads[batch_idx] = counter["reads"]

    module.on_train_batch_start, module.on_train_batch_end = batch_start, batch_end
    def host_values():  # the values of train/*_step that Lightning keeps (its results are internal)
        return [m._forward_cache for m in run.trainer._results.values() if m.meta.name.endswith("_step")]

    with counting_read_backs(counter, host_values):
        run.trainer.fit(module, datamodule=run.datamodule)
    steps = run.trainer.global_step
    assert steps >= 20
    logging_steps = {i for i in range(steps) if (i + 1) % 10 == 0}
    assert set(steps_with_reads) <= logging_steps, steps_with_reads
    assert devices == {"cpu"}  # on a GPU too: the bar shows them without a read-back
    logged = run.trainer.logged_metrics
    assert {"train/loss_step", "train/loss", "train/mae"} <= set(logged)


def test_the_epoch_values_are_means_over_the_epoch_samples(train_config):
    """train/mae is the mean absolute error over the first rows (an eighth) of every batch of the epoch,
    train/loss the mean loss over its samples."""
    cfg = train_config("model=dgex", "model.dropout=0", "debug=fast", "logger=none", "trainer.max_epochs=1")
    run = build(cfg)
    module, errors, losses = run.model, [], []
    original = module.training_loss

    def recording(batch):
        loss, pred = original(batch)
        rows = round(len(pred) / 8)
        errors.append((pred.detach()[:rows] - batch[1][:rows]).abs().double().mean())
        losses.append(loss.detach().double())
        return loss, pred

    module.training_loss = recording
    run.trainer.fit(module, datamodule=run.datamodule)
    logged = run.trainer.logged_metrics
    # Equal batches (debug=fast: 2,100 samples, batch 50): the mean over batches is the mean over samples.
    assert float(logged["train/mae"]) == pytest.approx(float(torch.stack(errors).mean()), rel=1e-5)
    assert float(logged["train/loss"]) == pytest.approx(float(torch.stack(losses).mean()), rel=1e-5)
