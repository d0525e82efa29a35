"""GGAN: its losses, both optimisers stepping once per batch, the discriminator checkpointed but never predicting."""

import functools
import math

import lightning as L
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from src.common.errors import InputError
from src.models.ggan import GGAN, adversarial_loss, consistency_loss, discriminator_loss, reconstruction_loss


def _model(**kwargs) -> GGAN:
    settings = dict(widths=[16], discriminator_widths=[8], optimizer=functools.partial(torch.optim.Adam, lr=1e-2, betas=(0.5, 0.999)))
    return GGAN(5, 3, **{**settings, **kwargs})


def _loader(n: int = 64, batch: int = 8) -> DataLoader:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, 5, generator=g)
    y = torch.tanh(x[:, :3] * 2) + 0.1 * torch.randn(n, 3, generator=g)
    return DataLoader(TensorDataset(x, y), batch_size=batch, shuffle=False)


def _trainer(tmp_path, **kwargs) -> L.Trainer:
    return L.Trainer(accelerator="cpu", devices=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                     enable_model_summary=False, limit_val_batches=0, num_sanity_val_steps=0,
                     default_root_dir=tmp_path, **kwargs)


def test_the_losses():
    sure = torch.tensor([20.0, 20.0])
    assert discriminator_loss(sure, -sure) < 1e-6  # real called real, predicted called predicted
    undecided = torch.zeros(4)
    assert discriminator_loss(undecided, undecided) == pytest.approx(math.log(2))
    assert adversarial_loss(undecided) == pytest.approx(math.log(2))
    assert adversarial_loss(sure) < 1e-6 < adversarial_loss(-sure)  # the generator wants its pairs called real
    a, b = torch.tensor([[1.0, 2.0]]), torch.tensor([[1.0, 4.0]])
    assert consistency_loss(a, a) == 0 and consistency_loss(a, b) == pytest.approx(2.0)
    assert reconstruction_loss(a, b) == pytest.approx(1.0) and reconstruction_loss(a, b, "mse") == pytest.approx(2.0)


def test_the_generator_loss_weighs_its_three_terms():
    torch.manual_seed(0)
    model = _model(lambda_adv=0.5, lambda_consistency=2.0, noise_sd=0.3)
    x, y = torch.randn(6, 5), torch.randn(6, 3)
    pred = model.net(x)
    torch.manual_seed(1)
    terms = model.generator_losses(x, y, pred)
    torch.manual_seed(1)
    perturbed = model.net(x + 0.3 * torch.randn_like(x))
    torch.testing.assert_close(terms["reconstruction"], (pred - y).abs().mean())
    torch.testing.assert_close(terms["adversarial"], adversarial_loss(model.discriminator(x, pred)))
    torch.testing.assert_close(terms["consistency"], (pred - perturbed).square().mean())
    expected = terms["reconstruction"] + 0.5 * terms["adversarial"] + 2.0 * terms["consistency"]
    torch.testing.assert_close(model.generator_loss(terms), expected)
    off = _model(lambda_adv=0.0, lambda_consistency=0.0).generator_losses(x, y, pred)
    assert off["adversarial"] == 0 and off["consistency"] == 0


def test_the_discriminator_loss_sends_no_gradient_to_the_generator():
    model = _model()
    x, y = torch.randn(6, 5), torch.randn(6, 3)
    model.discriminator_step_loss(x, y, model.net(x)).backward()
    assert all(p.grad is None for p in model.net.parameters())
    assert all(p.grad is not None for p in model.discriminator.parameters())


def test_both_optimisers_step_once_per_batch_and_resume_from_a_checkpoint(tmp_path):
    torch.manual_seed(0)
    model = _model()
    before_g = [p.detach().clone() for p in model.net.parameters()]
    before_d = [p.detach().clone() for p in model.discriminator.parameters()]
    trainer = _trainer(tmp_path, max_steps=5)
    trainer.fit(model, train_dataloaders=_loader())
    assert trainer.global_step == 5  # batches, not optimiser steps (Lightning would count 10)
    opt_g, opt_d = (o.optimizer if hasattr(o, "optimizer") else o for o in trainer.optimizers)
    for optimizer, params in ((opt_g, list(model.net.parameters())), (opt_d, list(model.discriminator.parameters()))):
        assert {int(optimizer.state[p]["step"]) for p in params} == {5}
    assert all(not torch.equal(a, b) for a, b in zip(before_g, model.net.parameters()))
    assert all(not torch.equal(a, b) for a, b in zip(before_d, model.discriminator.parameters()))
    logged = trainer.callback_metrics
    assert {"train/loss", "train/d_loss", "train/reconstruction", "train/adversarial", "train/consistency"} <= set(logged)
    assert all(torch.isfinite(logged[k]) for k in ("train/loss", "train/d_loss"))

    ckpt = tmp_path / "last.ckpt"
    trainer.save_checkpoint(ckpt)
    saved = torch.load(ckpt, weights_only=False)
    assert len(saved["optimizer_states"]) == 2 and any(k.startswith("discriminator.") for k in saved["state_dict"])
    resumed = _model()
    again = _trainer(tmp_path, max_steps=8)
    again.fit(resumed, train_dataloaders=_loader(), ckpt_path=ckpt)
    assert again.global_step == 8
    assert {int(again.optimizers[1].state[p]["step"]) for p in resumed.discriminator.parameters()} == {8}


def test_the_generator_alone_predicts():
    model = _model().eval()
    x = torch.randn(4, 5)
    before = model(x)
    torch.testing.assert_close(before, model.net(x))
    with torch.no_grad():
        for p in model.discriminator.parameters():
            p.add_(1.0)
    torch.testing.assert_close(model(x), before)


def test_settings_are_checked():
    with pytest.raises(InputError, match="model.reconstruction=huber"):
        _model(reconstruction="huber")
    with pytest.raises(InputError, match="model.noise_sd=-0.1"):
        _model(noise_sd=-0.1)
    with pytest.raises(InputError, match="takes no scheduler"):
        _model(scheduler=functools.partial(torch.optim.lr_scheduler.StepLR, step_size=1))
    optimizers = _model(discriminator_lr=5e-4, discriminator_betas=[0.9, 0.99]).configure_optimizers()
    assert optimizers[0].param_groups[0]["lr"] == 1e-2 and optimizers[0].param_groups[0]["betas"] == (0.5, 0.999)
    assert optimizers[1].param_groups[0]["lr"] == 5e-4 and optimizers[1].param_groups[0]["betas"] == (0.9, 0.99)
