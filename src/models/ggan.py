"""GGAN (Wang, Ghasedi Dizaji & Huang, Bioinformatics 2018): a conditional GAN for gene expression inference."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import torch
import torch.nn.functional as F

from src.common.errors import InputError
from src.models.base import ExpressionModel
from src.models.networks.ggan import PairDiscriminator
from src.models.networks.mlp import MLP

log = logging.getLogger(__name__)

RECONSTRUCTIONS = ("l1", "mse")


def discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """The discriminator's binary cross-entropy: real pairs labelled 1, predicted pairs 0 (the mean of the two)."""
    real = F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits))
    fake = F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))
    return 0.5 * (real + fake)


def adversarial_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """The generator's adversarial term (non-saturating): the cross-entropy of its predictions labelled real."""
    return F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits))


def consistency_loss(pred: torch.Tensor, perturbed_pred: torch.Tensor) -> torch.Tensor:
    """How much the prediction moves when the landmarks are perturbed: squared difference, averaged over
    genes and samples."""
    return (pred - perturbed_pred).square().mean()


def reconstruction_loss(pred: torch.Tensor, target: torch.Tensor, kind: str = "l1") -> torch.Tensor:
    """The prediction's error: absolute (``l1``, the paper's) or squared (``mse``), averaged over genes and samples."""
    return (pred - target).abs().mean() if kind == "l1" else (pred - target).square().mean()


class GGAN(ExpressionModel):
    """GGAN: an MLP generator ``G`` (landmarks -> targets) trained against a conditional discriminator ``D``.

    From the paper (Wang, Ghasedi Dizaji & Huang, "Conditional generative adversarial network for gene
    expression inference", *Bioinformatics* 34(17):i603-i611, ECCB 2018, doi:10.1093/bioinformatics/bty563):

    - ``G`` is a fully connected network from the landmarks to the targets; it is what predicts (``self.net``:
      evaluation, prediction and calibration use it alone);
    - ``D`` sees landmark/target *pairs*, the real ``(x, y)`` and the predicted ``(x, G(x))``, and learns to
      tell them apart (conditional adversarial training);
    - ``G`` minimises three terms: the L1 error ``|G(x) - y|`` (``reconstruction: l1``), the adversarial term
      (fool ``D``), and a consistency term: the prediction must not move when the landmarks are perturbed by
      small random noise;
    - ``D`` and ``G`` are updated alternately with Adam, one step each per batch.

    Chosen here because the paper leaves it open or because the framework needs it:

    - sizes: ``G`` is ``widths`` hidden layers (default 3 x 1,024 tanh, the size of E-GEX's networks here, so
      the comparison runs in minutes on a CPU), ``D`` is ``discriminator_widths`` LeakyReLU(0.2) layers
      over the concatenated ``[x, y]`` (default 512 -> 128), one logit out;
    - the adversarial loss is the standard non-saturating binary cross-entropy (:func:`adversarial_loss`,
      :func:`discriminator_loss`, halved for ``D`` as in pix2pix);
    - the consistency term compares ``G(x)`` with ``G(x + eps)``, ``eps ~ N(0, noise_sd^2)`` on the
      standardised scale, squared difference averaged over genes (:func:`consistency_loss`): one extra
      forward pass per step (the paper's figure perturbs both passes, ``u`` and ``u'``; with one of them
      zero it is this term). ``noise_sd: 0.1`` is of the order of the landmarks' own measurement noise;
    - weights ``loss = L1 + lambda_adv * adversarial + lambda_consistency * consistency`` with
      ``lambda_adv: 0.01`` (pix2pix's 1:100 between adversarial and L1 terms) and ``lambda_consistency: 1``;
    - Adam for both networks, ``lr 1e-3``, ``betas (0.5, 0.999)`` (the usual GAN setting; the
      discriminator's can differ: ``discriminator_lr``, ``discriminator_betas``); no scheduler;
    - order per batch (pix2pix's): ``G(x)`` once, ``D`` steps on it (detached), then ``G`` steps against the
      updated ``D``.

    Training uses Lightning's manual optimisation (two optimisers). ``train/loss`` is the generator's total
    loss, ``train/d_loss`` the discriminator's (per epoch, and ``_step`` every ``trainer.log_every_n_steps``
    steps); ``train/reconstruction``, ``train/adversarial`` and ``train/consistency`` are its terms (per
    epoch). ``trainer.global_step`` counts batches, as for every other model (Lightning would count both
    optimisers' steps, so the discriminator's step is taken through the strategy without being counted).
    The discriminator is part of the checkpoints, so a run resumes with both networks and both optimisers;
    it never takes part in a prediction. ``model.loss`` (the framework's loss) is not what GGAN trains on:
    its generator loss is the one above.

    Args:
        widths, activation, dropout: the generator, as :class:`~src.models.networks.mlp.MLP`.
        discriminator_widths, discriminator_dropout: the discriminator's hidden layers.
        reconstruction: ``l1`` (the paper's) or ``mse``: the generator's error term.
        lambda_adv: weight of the adversarial term (0: no adversarial training of ``G``).
        lambda_consistency: weight of the consistency term (0: none).
        noise_sd: sd of the perturbation of the landmarks in the consistency term.
        discriminator_lr, discriminator_betas: the discriminator's Adam settings (None: the generator's,
            from ``optimizer``).
        **kwargs: optimizer (both networks' optimiser class and settings) and loss, see :class:`ExpressionModel`.
    """

    # The discriminator's update leaves the generator without gradients (and DDP must know).
    has_unused_parameters = True

    def __init__(
        self,
        n_inputs: int,
        n_outputs: int,
        widths: Sequence[int] = (1024, 1024, 1024),
        activation: str = "tanh",
        dropout: float = 0.0,
        discriminator_widths: Sequence[int] = (512, 128),
        discriminator_dropout: float = 0.0,
        reconstruction: str = "l1",
        lambda_adv: float = 0.01,
        lambda_consistency: float = 1.0,
        noise_sd: float = 0.1,
        discriminator_lr: float | None = None,
        discriminator_betas: Sequence[float] | None = None,
        **kwargs,
    ):
        if kwargs.get("loss", "mse") != "mse":  # the base's default; checkpoints carry it
            log.warning("GGAN trains its generator on model.reconstruction (%s) plus the adversarial and consistency "
                        "terms; model.loss=%s is not used", reconstruction, kwargs["loss"])
        super().__init__(n_inputs, n_outputs, **kwargs)
        if reconstruction not in RECONSTRUCTIONS:
            raise InputError(f"model.reconstruction={reconstruction}: choose one of {', '.join(RECONSTRUCTIONS)}")
        for name, value in (("lambda_adv", lambda_adv), ("lambda_consistency", lambda_consistency), ("noise_sd", noise_sd)):
            if value < 0:
                raise InputError(f"model.{name}={value}: must be >= 0")
        if self.scheduler_factory is not None:
            raise InputError("model.scheduler: GGAN steps its two optimisers itself and takes no scheduler (model.scheduler=null)")
        self.automatic_optimization = False
        self.net = MLP(n_inputs, list(widths), n_outputs, activation_name=activation, dropout=dropout)
        self.discriminator = PairDiscriminator(n_inputs, n_outputs, list(discriminator_widths), discriminator_dropout)

    # ----------------------------------------------------------------- losses
    def generator_losses(self, x: torch.Tensor, y: torch.Tensor, pred: torch.Tensor) -> dict[str, torch.Tensor]:
        """The generator's three terms for the prediction ``pred = G(x)`` of targets ``y``."""
        hp = self.hparams
        zero = pred.new_zeros(())
        adversarial = adversarial_loss(self.discriminator(x, pred)) if hp.lambda_adv > 0 else zero
        consistency = zero
        if hp.lambda_consistency > 0 and hp.noise_sd > 0:
            consistency = consistency_loss(pred, self.net(x + hp.noise_sd * torch.randn_like(x)))
        return {"reconstruction": reconstruction_loss(pred, y, hp.reconstruction), "adversarial": adversarial,
                "consistency": consistency}

    def generator_loss(self, terms: dict[str, torch.Tensor]) -> torch.Tensor:
        """``reconstruction + lambda_adv * adversarial + lambda_consistency * consistency``."""
        hp = self.hparams
        return terms["reconstruction"] + hp.lambda_adv * terms["adversarial"] + hp.lambda_consistency * terms["consistency"]

    def discriminator_step_loss(self, x: torch.Tensor, y: torch.Tensor, pred: torch.Tensor) -> torch.Tensor:
        """The discriminator's loss on real pairs ``(x, y)`` against predicted pairs ``(x, pred)`` (no gradient to ``G``)."""
        return discriminator_loss(self.discriminator(x, y), self.discriminator(x, pred.detach()))

    # ----------------------------------------------------------------- training
    def param_groups(self) -> list:
        """The generator's parameters (the discriminator has its own optimiser, see :meth:`configure_optimizers`)."""
        return [p for p in self.net.parameters() if p.requires_grad]

    def configure_optimizers(self):
        if self.optimizer_factory is None:
            raise RuntimeError("GGAN was built without an optimizer; it cannot be trained")
        hp = self.hparams
        settings = {}
        if hp.discriminator_lr is not None:
            settings["lr"] = hp.discriminator_lr
        if hp.discriminator_betas is not None:
            settings["betas"] = tuple(hp.discriminator_betas)
        generator = self.optimizer_factory(params=self.param_groups())
        discriminator = self.optimizer_factory(params=[p for p in self.discriminator.parameters() if p.requires_grad], **settings)
        return [generator, discriminator]

    def _uncounted_step(self, optimizer) -> None:
        """Step ``optimizer`` through the strategy (precision plugin and hooks included) without counting it as
        a training step: with manual optimisation Lightning counts every optimiser's step in ``global_step``
        (Lightning-AI/pytorch-lightning#17958), which would halve ``max_steps`` and double step-based intervals."""
        self.trainer.strategy.optimizer_step(optimizer.optimizer, closure=lambda: None)

    def training_step(self, batch, batch_idx):
        x, y = batch[0], batch[1]
        opt_g, opt_d = self.optimizers()
        pred = self.net(x)

        d_loss = self.discriminator_step_loss(x, y, pred)
        opt_d.zero_grad()
        self.manual_backward(d_loss)
        self._uncounted_step(opt_d)

        terms = self.generator_losses(x, y, pred)
        g_loss = self.generator_loss(terms)
        opt_g.zero_grad()
        self.manual_backward(g_loss)
        opt_g.step()

        self.accumulate_train(pred, y, loss=g_loss, d_loss=d_loss, **terms)
        self.log_train_step(loss=g_loss, d_loss=d_loss)
        return g_loss.detach()

    def on_train_epoch_start(self) -> None:
        optimizers = self.trainer.optimizers
        if optimizers:
            self.log("train/lr", optimizers[0].param_groups[0]["lr"], on_step=False, on_epoch=True, sync_dist=True)
