"""What every training plan shares: loss, metrics, logging, optimiser, and the data a checkpoint carries."""

from __future__ import annotations

from collections.abc import Callable

import lightning as L
import torch
from torch import nn

from src.common.errors import InputError
from src.common.checkpoint import OurPart, our_part, store
from src.data.preprocessing import Preprocessing
from src.models.metrics import GeneMetrics
from src.models.calibration import Trust
from src.models.callbacks import RandomStateCheckpoint

from src.models.losses import LOSS_FUNCTIONS, LOSSES  # l1, huber, mse, sse


class ExpressionModel(L.LightningModule):
    """Base training plan: predicts standardised targets from standardised landmarks.

    Subclasses build ``self.net`` (a plain ``nn.Module``) and may override :meth:`model_input` (what the
    network reads from a batch) or :meth:`training_loss` (staged or closed-form training).

    Logged: ``train/loss``, ``train/mae`` and, for validation and test, ``mae`` (D-GEX's MAE on the
    standardised scale, averaged over genes) and ``pearson`` (mean per-gene correlation). After a test
    run, ``self.test_per_gene`` holds the per-gene values.

    Args:
        n_inputs: number of landmark genes.
        n_outputs: number of target genes.
        optimizer: a partial optimiser constructor (``_partial_: true`` in the config); not needed for eval.
        scheduler: optional partial LR scheduler constructor, stepped per epoch on ``val/mae``.
        loss: ``l1``, ``huber``, ``mse`` (mean over genes) or ``sse`` (sum over genes, D-GEX's loss), see
            :mod:`src.models.losses`; all are averaged over the batch.
    """

    #: True when some parameters get no gradient in some steps (staged training): DDP must then look
    #: for unused parameters (see :func:`src.utils.config.trainer_overrides`).
    has_unused_parameters: bool = False

    def __init__(
        self,
        n_inputs: int,
        n_outputs: int,
        optimizer: Callable | None = None,
        scheduler: Callable | None = None,
        loss: str = "mse",
    ):
        super().__init__()
        if loss not in LOSSES:
            raise InputError(f"model.loss={loss}: unknown loss {loss!r}; choose one of {', '.join(LOSSES)}")
        self.save_hyperparameters(ignore=["optimizer", "scheduler"])
        self.optimizer_factory = optimizer
        self.scheduler_factory = scheduler
        # Running sum of the training absolute error: cheaper per step than a metric object (bench/).
        self.register_buffer("_train_abs_error", torch.zeros(2, dtype=torch.float64), persistent=False)
        self.val_metrics = GeneMetrics(n_outputs)
        self.test_metrics = GeneMetrics(n_outputs)
        # The deployed path's metrics (landmarks preprocessed as src.predict does), for quantile-normalised data.
        self.val_deployed = GeneMetrics(n_outputs)
        self.test_deployed = GeneMetrics(n_outputs)
        # Genes the averaged metrics count: all but the constant ones (training sd below CONSTANT_SD).
        self.register_buffer("scored_genes", torch.ones(n_outputs, dtype=torch.bool), persistent=False)
        self.preprocessing: Preprocessing | None = None
        self.data_config: dict | None = None
        self.names: dict[str, str] = {}  # "method" and "data": how reports name this model and its data
        self.test_per_gene: dict[str, torch.Tensor] | None = None
        self.trust: Trust | None = None  # reliability and calibration samples (src.models.calibration)
        self.net: nn.Module | None = None

    # ----------------------------------------------------------------- what subclasses may change
    # Whether the network maps landmarks to targets (False for the target autoencoder).
    predicts_from_landmarks = True

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def model_input(self, batch) -> torch.Tensor:
        """What the network reads: the landmarks (the autoencoder reads the targets instead)."""
        return batch[0]

    def criterion(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """The loss ``model.loss`` names (:mod:`src.models.losses`), averaged over the batch."""
        return LOSS_FUNCTIONS[self.hparams.loss](pred, target)

    def training_loss(self, batch) -> tuple[torch.Tensor, torch.Tensor]:
        """The loss to minimise and the prediction of the targets it was computed from."""
        pred = self(self.model_input(batch))
        return self.criterion(pred, batch[1]), pred

    def param_groups(self) -> list:
        """What the optimiser trains: all trainable parameters (D-GEX gives layers their own rates)."""
        return [p for p in self.parameters() if p.requires_grad]

    # ----------------------------------------------------------------- data the checkpoint carries
    def attach_data(self, preprocessing: Preprocessing, data_config: dict | None = None, **names: str) -> None:
        """Remember gene ids, training-split statistics, the data config and the method/data names
        (all saved in checkpoints)."""
        if len(preprocessing.landmark_ids) != self.hparams.n_inputs or len(preprocessing.target_ids) != self.hparams.n_outputs:
            raise ValueError(
                f"model expects {self.hparams.n_inputs} landmarks and {self.hparams.n_outputs} targets, but the "
                f"data has {len(preprocessing.landmark_ids)} and {len(preprocessing.target_ids)}"
            )
        self.preprocessing, self.data_config = preprocessing, data_config
        self.scored_genes.copy_(torch.from_numpy(~preprocessing.constant_targets()))
        self.names = {k: str(v) for k, v in names.items() if v is not None}

    def checkpoint_extras(self) -> dict:
        """What this training plan adds to the checkpoint (plain values): its trust, once calibrated, and
        what subclasses add (they extend this dict); see :meth:`load_extras`."""
        return {"trust": self.trust.to_dict()} if self.trust is not None else {}

    def load_extras(self, extras: dict) -> None:
        """Take back what :meth:`checkpoint_extras` stored."""
        self.trust = Trust.from_dict(extras["trust"]) if extras.get("trust") else None

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        cls = type(self)
        store(checkpoint, OurPart(
            model_class=f"{cls.__module__}.{cls.__qualname__}",
            preprocessing=self.preprocessing.to_dict() if self.preprocessing else None,
            data_config=self.data_config,
            names=self.names,
            extras=self.checkpoint_extras(),
        ))

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        part = our_part(checkpoint)
        self.preprocessing = Preprocessing.from_dict(part.preprocessing) if part.preprocessing else None
        if self.preprocessing is not None:
            self.scored_genes.copy_(torch.from_numpy(~self.preprocessing.constant_targets()))
        self.data_config = part.data_config
        self.names = dict(part.names)
        self.load_extras(part.extras)

    def configure_callbacks(self) -> list:
        """Callbacks every training plan needs: the random state saved with each checkpoint, so that a
        resumed run continues the same stream of dropout masks and noise."""
        return self._new_callbacks([RandomStateCheckpoint()])

    def _new_callbacks(self, callbacks: list) -> list:
        """Those of ``callbacks`` the trainer does not have yet (Lightning asks again at every stage:
        validate after fit, test after validate)."""
        have = {type(c) for c in self.trainer.callbacks} if self._trainer is not None else set()
        return [c for c in callbacks if type(c) not in have]

    # ----------------------------------------------------------------- Lightning steps
    def training_step(self, batch, batch_idx):
        loss, pred = self.training_loss(batch)
        with torch.no_grad():
            self._train_abs_error[0] += (pred.detach() - batch[1]).abs().sum()
            self._train_abs_error[1] += batch[1].numel()
        batch_size = len(batch[1])
        summed = self.hparams.loss == "sse"
        self.log("train/loss", loss, on_step=True, on_epoch=True, prog_bar=not summed, batch_size=batch_size, sync_dist=True)
        if summed:  # the bar shows the squared error per gene, on the scale of val/mae, not the sum over genes
            self.log("train/loss_per_gene", loss / self.hparams.n_outputs, on_step=True, on_epoch=False, prog_bar=True,
                     logger=False, batch_size=batch_size)
        return loss

    def on_train_epoch_end(self) -> None:
        """Log the epoch's training MAE (every rank saw the same number of values, so the mean over ranks is exact)."""
        total, count = self._train_abs_error.tolist()
        if count:
            self.log("train/mae", total / count, on_epoch=True, sync_dist=True)
        self._train_abs_error.zero_()

    def on_train_epoch_start(self):
        optimizers = self.trainer.optimizers
        if optimizers and self.automatic_optimization:
            self.log("train/lr", optimizers[0].param_groups[0]["lr"], on_step=False, on_epoch=True, sync_dist=True)

    def _evaluate(self, batch, metrics: GeneMetrics, deployed: GeneMetrics) -> None:
        self._deployed_seen = len(batch) == 3 and self.predicts_from_landmarks
        metrics.update(self(self.model_input(batch)), batch[1])
        if self._deployed_seen:
            deployed.update(self(batch[2]), batch[1])

    def validation_step(self, batch, batch_idx):
        self._evaluate(batch, self.val_metrics, self.val_deployed)

    def test_step(self, batch, batch_idx):
        self._evaluate(batch, self.test_metrics, self.test_deployed)

    def _log_epoch(self, stage: str, metrics: GeneMetrics, deployed: GeneMetrics) -> dict[str, torch.Tensor]:
        """Log ``stage/mae`` and ``stage/pearson`` (D-GEX's protocol) and ``stage/deployed_*`` (the path of
        src.predict: for data without quantile normalisation the same numbers)."""
        per_gene = metrics.per_gene()
        metrics.reset()
        summaries = {"": GeneMetrics.summarise(per_gene, self.scored_genes)}
        if getattr(self, "_deployed_seen", False):
            summaries["deployed_"] = GeneMetrics.summarise(deployed.per_gene(), self.scored_genes)
            deployed.reset()
        else:
            summaries["deployed_"] = summaries[""]
        for prefix, values in summaries.items():
            for name, value in values.items():
                # Already synchronised by torchmetrics; sync_dist only averages equal values across ranks.
                self.log(f"{stage}/{prefix}{name}", value, prog_bar=name == "mae" and not prefix, sync_dist=True)
        return per_gene

    def on_validation_epoch_end(self):
        self._log_epoch("val", self.val_metrics, self.val_deployed)

    def on_test_epoch_end(self):
        per_gene = self._log_epoch("test", self.test_metrics, self.test_deployed)
        self.test_per_gene = {k: v.cpu() for k, v in per_gene.items()}

    def configure_optimizers(self):
        if self.optimizer_factory is None:
            raise RuntimeError(f"{type(self).__name__} was built without an optimizer; it cannot be trained")
        optimizer = self.optimizer_factory(params=self.param_groups())
        if self.scheduler_factory is None:
            return optimizer
        scheduler = self.scheduler_factory(optimizer=optimizer)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "monitor": "val/mae"}}
