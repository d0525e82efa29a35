"""What every training plan shares: loss, metrics, logging, optimiser, and the data a checkpoint carries."""

from __future__ import annotations

from collections.abc import Callable

import lightning as L
import torch
from torch import nn

from src.common.config_checks import WIDTHS, check_table, fraction, number, positive_int
from src.common.errors import InputError
from src.common.checkpoint_format import OurPart, add_extras, our_part, store
from src.data.preprocessing import Preprocessing
from src.models.metrics import GeneMetrics
from src.models.trust import Trust
from src.models.training_callbacks import RandomStateCheckpoint

from src.models.losses import LOSS_FUNCTIONS, LOSSES  # l1, huber, mse, sse


class ExpressionModel(L.LightningModule):
    """Base training plan: predicts standardised targets from standardised landmarks.

    Subclasses build ``self.net`` (a plain ``nn.Module``) and may override :meth:`model_input` (what the
    network reads from a batch) or :meth:`training_loss` (staged or closed-form training).

    Logged: ``train/loss_step`` (every ``trainer.log_every_n_steps`` steps), ``train/loss`` and
    ``train/mae`` (per epoch) and, for validation and test, ``mae`` (D-GEX's MAE on the standardised scale,
    averaged over genes) and ``pearson`` (mean per-gene correlation). After a test run,
    ``self.test_per_gene`` holds the per-gene values. A training step reads nothing back from the device
    except on a logging step (see :meth:`accumulate_train` and :meth:`log_train_step`), so on a GPU the
    host never waits for the device between two logging steps.

    Args:
        n_inputs: number of landmark genes.
        n_outputs: number of target genes.
        optimizer: a partial optimiser constructor (``_partial_: true`` in the config); not needed for eval.
        scheduler: optional partial LR scheduler constructor, stepped per epoch on ``val/mae``.
        loss: ``l1``, ``huber``, ``mse`` (mean over genes) or ``sse`` (sum over genes, D-GEX's loss), see
            :mod:`src.models.losses`; all are averaged over the batch.
    """

    #: Values checked before any work (``model.<key>``, those a subclass takes; :mod:`src.common.config_checks`).
    config_checks = check_table(
        ("dropout", fraction, "a fraction in [0, 1)", "0.1"),
        ("input_noise", lambda v: number(v) and v >= 0, "a non-negative noise level", "0.0"),
        ("optimizer.lr", lambda v: number(v) and v > 0, "a positive learning rate", "1e-3"),
        ("widths", *WIDTHS, "[1024,1024]"),
        ("latent", positive_int, "a positive latent size", "128"),
        ("min_lr", lambda v: number(v) and v >= 0, "a non-negative learning rate", "1e-5"),
    )

    #: True when some parameters get no gradient in some steps (staged training): DDP must then look
    #: for unused parameters (see :func:`src.utils.config.ddp_strategy`).
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
        # The epoch's training sums, kept on the device and logged at its end (on_train_epoch_end): "abs_error"
        # (for train/mae) and each loss term times its batch size; the counts are known on the host.
        self._train_sums: dict[str, torch.Tensor] = {}
        self._train_counts = {"values": 0, "samples": 0}
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
        self.trust: Trust | None = None  # reliability and calibration samples (src.models.trust)
        # Hyperparameters chosen while fitting (e.g. ridge's alpha on validation): logged as selected/<name>
        # (log_selected), written to metrics.json and kept in checkpoints.
        self.selected: dict[str, float] = {}
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
        """What this training plan adds to the checkpoint (plain values): its trust, once calibrated, the
        hyperparameters it chose (``selected``), and what subclasses add (they extend this dict); see
        :meth:`load_extras`."""
        extras = {"trust": self.trust.to_dict()} if self.trust is not None else {}
        if self.selected:
            extras["selected"] = dict(self.selected)
        return extras

    def log_selected(self) -> None:
        """Log the hyperparameters chosen while fitting as ``selected/<name>`` (once per epoch)."""
        for name, value in self.selected.items():
            self.log(f"selected/{name}", float(value), on_step=False, on_epoch=True)

    def update_checkpoint(self, path: str) -> None:
        """Bring the checkpoint file ``path`` (saved by this plan during fitting) up to date with
        :meth:`checkpoint_extras`, e.g. its trust once calibrated, through the checkpoint format's writer
        (:func:`~src.common.checkpoint_format.add_extras`: rewritten atomically, weights untouched)."""
        add_extras(path, **self.checkpoint_extras())

    def load_extras(self, extras: dict) -> None:
        """Take back what :meth:`checkpoint_extras` stored."""
        self.trust = Trust.from_dict(extras["trust"]) if extras.get("trust") else None
        self.selected = dict(extras.get("selected") or {})

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
        self.accumulate_train(pred, batch[1], loss=loss)
        if self.hparams.loss == "sse":  # summed over genes: the bar also shows it per gene, on val/mae's scale
            self.log_train_step(loss=loss, loss_per_gene=loss / self.hparams.n_outputs)
        else:
            self.log_train_step(loss=loss)
        return loss

    #: ``train/mae`` is measured on this share of each batch's rows (the first ones; batches are shuffled):
    #: an unbiased estimate of the epoch's training MAE from millions of values, at an eighth of the cost of
    #: the whole batch (about 1 ms a step for 200 x 9,520 predictions on 2 CPU cores; docs/BENCHMARKS.md).
    train_mae_rows = 1 / 8

    def accumulate_train(self, pred: torch.Tensor, target: torch.Tensor, **losses: torch.Tensor) -> None:
        """Add one step to the epoch's sums, on the device: the absolute error of ``pred`` on the first
        :attr:`train_mae_rows` of the batch (``train/mae``) and each of ``losses`` (a scalar tensor, the
        batch mean) times the batch size (``train/<name>``). Nothing is read back to the host, so the step
        never waits for the device."""
        n = len(target)
        rows = max(1, round(n * self.train_mae_rows))
        with torch.no_grad():
            error = torch.linalg.vector_norm(pred.detach()[:rows] - target[:rows], ord=1, dtype=torch.float32)
            terms = {"abs_error": error, **{name: value.detach().float() * n for name, value in losses.items()}}
            for name, value in terms.items():
                total = self._train_sums.get(name)
                self._train_sums[name] = value.double() if total is None else total.add_(value)
        self._train_counts["values"] += target[:rows].numel()
        self._train_counts["samples"] += n

    def is_logging_step(self) -> bool:
        """Whether Lightning hands this step's logged values to the loggers: every
        ``trainer.log_every_n_steps`` steps (the same steps on every process)."""
        trainer = self._trainer
        return trainer is not None and trainer._logger_connector.should_update_logs

    def log_train_step(self, **values: torch.Tensor) -> None:
        """On a logging step only, log this process's ``values`` (scalar tensors) as ``train/<name>_step``,
        shown in the progress bar: read back to the host here, once, as CPU values, so that the bar, which
        shows them until the next logging step, never reads the device either. No collective: every process
        logs its own values (the epoch values are averaged over all processes)."""
        if not self.is_logging_step():
            return
        host = torch.stack([v.detach().float() for v in values.values()]).cpu()
        for name, value in zip(values, host):
            self.log(f"train/{name}_step", value, on_step=True, on_epoch=False, prog_bar=True, batch_size=1)

    def on_train_epoch_end(self) -> None:
        """Log the epoch's training values: ``train/mae`` and ``train/<loss name>`` (from
        :meth:`accumulate_train`), each this process's mean over its samples, averaged over the processes
        by Lightning (every process sees the same number of samples, ``src.data.batches``, so that is the
        mean over all samples). Logged as device tensors: nothing is read back here, and Lightning's lazy
        synchronisation keeps the processes' collectives in one order (an eager collective here would not:
        rank 0's progress bar synchronises some epoch values earlier than the other ranks do)."""
        values, samples = self._train_counts["values"], self._train_counts["samples"]
        if not samples:
            return
        for name, total in sorted(self._train_sums.items()):
            mean = total / values if name == "abs_error" else total / samples
            self.log("train/mae" if name == "abs_error" else f"train/{name}", mean.float(), on_epoch=True, sync_dist=True)
        self._train_sums = {}
        self._train_counts = {"values": 0, "samples": 0}

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
        # In full precision whatever the training precision (bf16-mixed autocasts every step): the test
        # numbers are those src.predict and the inference engine give, which never autocast.
        with torch.autocast(self.device.type, enabled=False):
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
