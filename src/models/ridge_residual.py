"""Ridge plus a learned non-linear residual: a network that starts as ridge regression and keeps it unless it
does better on validation.

What it takes from whom:

- the linear path is D-GEX's LR-L2 baseline (ridge regression on all targets at once, Chen et al.,
  Bioinformatics 2016), fitted in closed form as ``model=lr_l2`` fits it, except that its penalty is chosen by
  exact leave-one-out error on the training split (Allen's PRESS, Technometrics 1974), per target gene where
  that validates better than one penalty for all (:func:`src.models.linear.fit_ridge_loo`);
- the residual path is E-GEX's network (an MLP from landmarks into a latent space, then a decoder to all
  targets; Bhukya & Ashok, IAJIT 2020), trained end to end with Adam as ``model=egex`` trains it;
- putting a linear ("wide") path beside a deep one is the layout of Wide & Deep (Cheng et al., DLRS 2016),
  and training the second model on what a fixed first one leaves over is the idea of residual boosting
  (stagewise fitting of residuals, Friedman, Annals of Statistics 2001). Nothing here is from a paper on
  gene expression inference: it is this framework's answer to ridge beating the networks on small cohorts.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from src.common.config_checks import WIDTHS, check_table, list_of, number
from src.common.errors import InputError
from src.data.batches import TensorBatches
from src.models.base import ExpressionModel
from src.models.closed_form import whole_splits
from src.models.linear import fit_ridge_loo
from src.models.networks.autoencoder import LatentRegressor, mirrored_decoder
from src.models.networks.mlp import MLP
from src.models.networks.residual import LinearPlusResidual


class RidgeResidual(ExpressionModel):
    """``ridge(x) + residual(x)``: ridge regression, frozen, plus E-GEX's network trained on what it misses.

    Fitting, in one Lightning run:

    1. When fitting starts, the linear path is solved in closed form on the training split: ridge, each
       target gene's alpha (from ``alphas``) the one of lowest leave-one-out error on the training split, or
       one alpha for all genes (the lowest mean leave-one-out error), whichever of the two has the lower
       validation MAE (:func:`~src.models.linear.fit_ridge_loo`; logged as ``selected/per_gene`` and
       ``selected/alpha``, the median of the genes' alphas, written to ``metrics.json``). Per-gene penalties
       are what makes it better than ``model=lr_l2`` (one penalty chosen on validation) on the real cohorts
       (docs/RESULTS.md). Every DDP process holds the whole training split and computes the same solution;
       rank 0's is then broadcast, so all hold it bit for bit. A run resumed from a checkpoint
       (``ckpt_path=last``) does not refit: the weights are the checkpoint's.
    2. Epoch 0 is the ridge alone: every step of it is a no-op (a zero loss tied to the trainable
       parameters is back-propagated, so DDP reduces gradients as in any step, and the optimiser update is
       skipped: no parameter and no optimiser state changes). The residual's output layer starts at zero,
       so the validation at the end of epoch 0 scores pure ridge and the checkpoint callback saves it as
       the best so far.
    3. From epoch 1 the residual trains (Adam; the linear path stays frozen) on the loss of the sum. When
       epoch 1 starts, the linear path under it becomes a more strongly shrunk ridge, each gene's alpha
       ``residual_shrinkage`` times its selected one (``selected/residual_alpha``, the median; computed from
       the selected ridge through the training Gram matrix's eigendecomposition, kept in the checkpoint
       with the genes' alphas): the alpha that is best for ridge alone leaves the residual the ridge's
       estimation noise, which it cannot learn away, while a ridge shrunk further leaves it signal it can
       learn (synthetic data, 1,400 training samples: test MAE 0.311 on the selected ridge, 0.279 on one
       shrunk 100 times, E-GEX 0.291; see ``conf/model/ridge_residual.yaml``). ``residual_shrinkage: 1``
       keeps the selected ridge.
    4. Early stopping then follows the residual phase's own validation curve: its record is cleared when
       epoch 1 starts (the ridge epoch is a baseline to beat, not the first point of a curve that must
       improve within ``patience`` epochs: the residual needs several epochs before it beats the ridge,
       as E-GEX needs them to reach the ridge). The checkpoint callback keeps its record, so ``best.ckpt``
       is the best of the ridge (epoch 0) and every residual epoch: exactly ridge where the residual never
       does better on validation (a few hundred samples), ridge + residual where it does.

    Why no-op steps rather than one step and a cut epoch: Lightning only saves a checkpoint after
    ``trainer.global_step`` advanced, and an epoch ended early (``on_train_batch_start`` returning -1) is
    not validated, so epoch 0 would never be scored. The no-op steps run no forward pass, and the step count
    stays a multiple of the epoch's batches, so resuming sees end-of-epoch checkpoints.

    Args:
        alphas: ridge penalties to try (``alpha/2 ||W||^2`` per sample, as ``model=lr_l2``); each gene's is one
            of them. Leave-one-out errors cost a pass over the training split per alpha.
        residual_shrinkage: the linear path's alpha under the residual, as a multiple of the selected one
            (>= 1; 1 keeps the selected ridge).
        ae_widths, latent, mlp_widths, activation, dropout, norm: the residual network, as E-GEX's
            (:class:`~src.models.egex.EGEX`): ``MLP(landmarks -> mlp_widths -> latent)`` then the decoder
            ``MLP(latent -> ae_widths[::-1] -> targets)``.
        **kwargs: optimizer, scheduler and loss, see :class:`ExpressionModel` (they train the residual).

    Defaults (the config, ``conf/model/ridge_residual.yaml``, with the measurements behind them): E-GEX's
    network, Adam at 1e-3 (as E-GEX), ``residual_shrinkage`` 100.
    """

    config_checks = check_table(
        ("alphas", list_of(lambda v: number(v) and v > 0), "a list of positive penalty strengths", "[0.01,0.1,1.0]"),
        ("residual_shrinkage", lambda v: number(v) and v >= 1, "a factor >= 1 (1: the selected ridge)", "100"),
        ("ae_widths", *WIDTHS, "[1024]"),
        ("mlp_widths", *WIDTHS, "[1024,1024]"),
    )

    def __init__(
        self,
        n_inputs: int,
        n_outputs: int,
        alphas: Sequence[float] = (0.001, 0.00316, 0.01, 0.0316, 0.1, 0.316, 1.0, 3.16, 10.0, 31.6, 100.0, 316.0, 1000.0),
        residual_shrinkage: float = 100.0,
        ae_widths: Sequence[int] = (1024,),
        latent: int = 128,
        mlp_widths: Sequence[int] = (1024, 1024),
        activation: str = "tanh",
        dropout: float = 0.0,
        norm: str | None = None,
        **kwargs,
    ):
        super().__init__(n_inputs, n_outputs, **kwargs)
        if not alphas:
            raise InputError("model.alphas=[]: the ridge path needs at least one alpha, e.g. model.alphas=[0.1,1.0,10.0]")
        if not residual_shrinkage >= 1.0:
            raise InputError(f"model.residual_shrinkage={residual_shrinkage}: expected a factor >= 1 (1: the selected "
                             "ridge under the residual), e.g. model.residual_shrinkage=100")
        self.alphas = [float(a) for a in alphas]
        layers = dict(activation_name=activation, dropout=dropout, norm=norm)
        # E-GEX's network without its encoder (trained end to end, as model=egex trains by default).
        residual = LatentRegressor(MLP(n_inputs, list(mlp_widths), latent, **layers),
                                   mirrored_decoder(n_outputs, ae_widths, latent, **layers))
        self.net = LinearPlusResidual(n_inputs, n_outputs, residual)
        # What turns the selected ridge into the one under the residual when epoch 1 starts (see
        # shrink_linear), from the training split; checkpointed, so a resumed run never needs the data again.
        self.register_buffer("gram_evals", torch.zeros(n_inputs))
        self.register_buffer("gram_evecs", torch.eye(n_inputs))
        self.register_buffer("ridge_mean", torch.zeros(n_inputs))
        self.register_buffer("gene_alphas", torch.ones(n_outputs))
        self.register_buffer("shrunk", torch.tensor(False))

    # ----------------------------------------------------------------- the linear path
    def fit_linear(self, train: TensorBatches, val: TensorBatches) -> None:
        """Solve the linear path on ``train`` (ridge, alphas by leave-one-out error, per gene or one for all
        by ``val``), keep what its shrinking needs and, under DDP, take rank 0's."""
        linear, factor = self.net.linear, float(self.hparams.residual_shrinkage)
        gene_alphas, per_gene, x_mean, (evals, evecs) = fit_ridge_loo(linear, train, val, self.alphas)
        for buffer, value in ((self.gram_evals, evals), (self.gram_evecs, evecs), (self.ridge_mean, x_mean),
                              (self.gene_alphas, gene_alphas)):
            buffer.copy_(value)
        self.shrunk.fill_(False)
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            for tensor in (linear.weight, linear.bias, self.gram_evals, self.gram_evecs, self.ridge_mean,
                           self.gene_alphas):
                torch.distributed.broadcast(tensor, src=0)
        per_gene, alpha = self.trainer.strategy.broadcast((bool(per_gene), float(gene_alphas.median())), src=0)
        self.selected = {"alpha": alpha, "per_gene": float(per_gene), "residual_alpha": factor * alpha}

    def shrink_linear(self) -> None:
        """Replace the selected ridge by the more strongly shrunk one (``residual_shrinkage``), once."""
        if self.shrunk:
            return
        if self.hparams.residual_shrinkage != 1.0:
            # Gene t's W(k a_t) = V diag((l + a_t) / (l + k a_t)) V' W(a_t), with G = V diag(l) V'; the
            # intercept follows the new weights at the training landmarks' mean.
            linear, factor = self.net.linear, float(self.hparams.residual_shrinkage)
            evals, evecs, alphas = self.gram_evals.double(), self.gram_evecs.double(), self.gene_alphas.double()
            scale = (evals.unsqueeze(1) + alphas) / (evals.unsqueeze(1) + factor * alphas)
            weight = (evecs @ (scale * (evecs.T @ linear.weight.double().T))).T.to(linear.weight.dtype)
            linear.bias.add_(((linear.weight - weight).double() @ self.ridge_mean.double()).to(linear.bias.dtype))
            linear.weight.copy_(weight)
        self.shrunk.fill_(True)

    def on_fit_start(self) -> None:
        if self.trainer.ckpt_path is not None:
            return  # resumed: the weights are the checkpoint's
        train, val = whole_splits(self)
        with torch.no_grad():
            self.fit_linear(train, val)

    # ----------------------------------------------------------------- epoch 0: the ridge alone
    def training_step(self, batch, batch_idx):
        if self.current_epoch > 0:
            return super().training_step(batch, batch_idx)
        if batch_idx == 0:
            self.log_selected()
        # No forward pass: a zero loss that reaches every trainable parameter (DDP reduces zero gradients).
        return torch.stack([p.reshape(-1)[0] for p in self.param_groups()]).sum() * 0.0

    def optimizer_step(self, epoch, batch_idx, optimizer, optimizer_closure=None):
        if epoch == 0:
            optimizer_closure()  # the step's (zero) loss and backward; no update, and Lightning counts the step
            return
        super().optimizer_step(epoch, batch_idx, optimizer, optimizer_closure)

    # ----------------------------------------------------------------- epoch 1: the residual's start
    def on_train_epoch_start(self) -> None:
        super().on_train_epoch_start()
        if self.current_epoch >= 1 and not self.shrunk:
            with torch.no_grad():
                self.shrink_linear()
            # Early stopping follows the residual phase's own curve (ModelCheckpoint keeps the ridge's score).
            for callback in self.trainer.early_stopping_callbacks:
                callback.wait_count = 0
                callback.best_score = torch.tensor(torch.inf if callback.monitor_op == torch.lt else -torch.inf)
