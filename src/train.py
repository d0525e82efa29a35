"""Train a model: ``python -m src.train [model=egex] [data=synthetic] [trainer.devices=2] ...``.

``build(cfg)`` composes the objects of a run (DataModule, training plan, Trainer, loggers) and
``train(cfg)`` builds them, then runs: fit, validate and test the best checkpoint, write the run
folder. Tests and ``bench/`` call both directly; ``main`` is the thin Hydra command-line wrapper.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import hydra
import lightning as L
from omegaconf import DictConfig, OmegaConf

from src.common.errors import cli_errors
from src.models.calibration import calibrate_run
from src.reporting.wandb_log import log_per_gene
from src.utils.config import (plain_config, processes_per_node, resolve_ckpt_path, resume_checkpoint, settle_config,
                              validate_config)
from src.utils.ddp_launch import ranks_run_this_job, wait_for_ranks
from src.utils.instantiate import instantiate_all
from src.utils.loggers import closing
from src.utils.results import record_failure, save_results, save_splits, scalar_metrics, show_results
from src.utils.quiet import quiet_third_party

log = logging.getLogger(__name__)


@dataclass
class Run:
    """Everything one training run is made of, built from its config by :func:`build`."""

    cfg: DictConfig
    datamodule: L.LightningDataModule
    model: L.LightningModule
    trainer: L.Trainer
    loggers: list = field(default_factory=list)
    ckpt_path: str | None = None  # the checkpoint to resume from, if any

    @property
    def output_dir(self) -> Path:
        return Path(self.cfg.paths.output_dir)


def build_datamodule(cfg: DictConfig) -> L.LightningDataModule:
    """Check ``cfg``, then the DataModule of ``cfg.data`` (:func:`prepared_datamodule`)."""
    validate_config(cfg)
    return prepared_datamodule(cfg)


def prepared_datamodule(cfg: DictConfig) -> L.LightningDataModule:
    """Seed everything with ``cfg.seed``, then the DataModule of ``cfg.data``, prepared and set up."""
    L.seed_everything(cfg.seed, workers=True)
    datamodule = hydra.utils.instantiate(cfg.data, _convert_="all")
    if "trainer" in cfg:  # each process of the node will hold the data: what data.storage=auto weighs
        datamodule.node_processes = processes_per_node(cfg.trainer)
    datamodule.prepare_data()
    datamodule.setup("fit")
    return datamodule


def build_model(cfg: DictConfig, datamodule) -> L.LightningModule:
    """The training plan of ``cfg.model``, sized for the data, with the data's preprocessing, its config and
    the method/data names attached (all of which its checkpoints carry)."""
    model = hydra.utils.instantiate(
        cfg.model, n_inputs=datamodule.n_landmarks, n_outputs=datamodule.n_targets, _convert_="all"
    )
    model.attach_data(
        datamodule.preprocessing,
        OmegaConf.to_container(cfg.data, resolve=True),
        method=cfg.get("method"),
        data=cfg.get("data_name"),
    )
    return model


def build_trainer(cfg: DictConfig, loggers: list, callbacks: list = ()) -> L.Trainer:
    """The Trainer of ``cfg.trainer`` with the callbacks of ``cfg.callbacks`` (plus ``callbacks``) and ``loggers``."""
    return hydra.utils.instantiate(
        cfg.trainer, callbacks=[*instantiate_all(cfg.get("callbacks")), *callbacks], logger=loggers or False
    )


def build(cfg: DictConfig, datamodule=None, callbacks: list = ()) -> Run:
    """Everything a training run is made of: the DataModule (prepared and set up; ``datamodule`` reuses
    one already built from ``cfg.data``), the training plan, the loggers and the Trainer (with
    ``callbacks`` added to the configured ones, e.g. a benchmark's timer).

    Settings chosen here rather than by the user (the DDP strategy for plans with unused parameters,
    W&B's group and name in a sweep) are written into ``cfg`` and into the saved
    ``.hydra/config.yaml``, so the saved config is what ran.
    """
    validate_config(cfg)
    ckpt_path = resolve_ckpt_path(cfg)
    datamodule = datamodule or prepared_datamodule(cfg)
    model = build_model(cfg, datamodule)
    settle_config(cfg, model)
    loggers = instantiate_all(cfg.get("logger"))
    return Run(cfg, datamodule, model, build_trainer(cfg, loggers, callbacks), loggers, ckpt_path)


def remove_resume_checkpoints(trainer: L.Trainer, cfg: DictConfig) -> None:
    """After a run that ended normally, remove the full checkpoint kept only for resuming (the one of
    ``callbacks.last_checkpoint``, ``last.ckpt``): ``best.ckpt`` holds the weights, and a finished run stores
    them once."""
    resume = resume_checkpoint(cfg)
    for callback in trainer.checkpoint_callbacks:
        path = Path(callback.best_model_path) if callback.best_model_path else None
        if resume is not None and path is not None and path.resolve() == resume.resolve() and path.is_file():
            log.info("Removed %s (resume state of a finished run; keep it with keep_last_checkpoint=true)", path)
            path.unlink()


def fit_and_test(run: Run) -> dict[str, float]:
    """Fit, then validate and test the best checkpoint (the final weights without checkpointing), then
    calibrate its reliability and intervals on the calibration split (added to the best checkpoint);
    process 0 writes ``metrics.json``, ``per_gene_test.tsv`` and ``splits.tsv``. Returns the metrics."""
    trainer, model, datamodule = run.trainer, run.model, run.datamodule
    for logger in run.loggers:
        logger.log_hyperparams(plain_config(run.cfg))
    with ranks_run_this_job(run.cfg):
        try:
            trainer.fit(model, datamodule=datamodule, ckpt_path=run.ckpt_path)
            best = trainer.checkpoint_callback.best_model_path if trainer.checkpoint_callback else ""
            metrics = {}
            for stage in (trainer.validate, trainer.test):
                for result in stage(model, datamodule=datamodule, ckpt_path=best or None, verbose=False):
                    metrics.update(scalar_metrics(result))
            if trainer.is_global_zero:
                metrics.update(calibrate_run(model, datamodule, run.cfg.get("interval", 0.9), checkpoint=best))
                save_results(run.output_dir, metrics, model, best_checkpoint=best)
                save_splits(run.output_dir, datamodule.sample_ids, datamodule.sample_annotations)
                if best and not run.cfg.get("keep_last_checkpoint", False):
                    remove_resume_checkpoints(trainer, run.cfg)
                for logger in run.loggers:
                    if type(logger).__name__ == "WandbLogger":
                        log_per_gene(logger, run.output_dir)
        finally:
            wait_for_ranks(trainer)
    return metrics


def train(cfg: DictConfig) -> dict[str, float]:
    """Build the run of ``cfg`` and run it; the loggers are closed whatever happens. Returns the metrics."""
    run = build(cfg)
    with closing(run.loggers):
        metrics = fit_and_test(run)
    if run.trainer.is_global_zero:  # last, so that it is what the terminal ends with
        show_results(run.output_dir, metrics, run.model)
    return metrics


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
@cli_errors(on_job_failure=record_failure)
def main(cfg: DictConfig) -> float | None:
    """Command-line entry point; returns the metric a hyperparameter sweeper optimises. A bad input or
    setting prints one message and exits with status 1; a failed job of a sweep is recorded in its folder
    and returns the worst value, and the sweep goes on (src/common/errors.py)."""
    quiet_third_party()
    metrics = train(cfg)
    return metrics.get(cfg.get("optimized_metric"))


if __name__ == "__main__":
    main()
