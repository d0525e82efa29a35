"""Train a model: ``python -m src.train [model=egex] [data=synthetic] [trainer.devices=2] ...``.

``train(cfg)`` does the work and returns the final metrics (tests call it directly); ``main`` is the
thin Hydra command-line wrapper.
"""

from __future__ import annotations

import logging
from pathlib import Path

import hydra
import lightning as L
from omegaconf import DictConfig, OmegaConf, open_dict

from src.utils.allocator import keep_freed_memory
from src.utils.config import plain_config, resolve_ckpt_path, trainer_overrides, validate_config
from src.utils.ddp_launch import ranks_run_this_job, wait_for_ranks
from src.utils.instantiate import instantiate_all
from src.utils.results import save_results, scalar_metrics, show_results
from src.utils.wandb_mode import resolve_wandb_mode, sweep_identity
from src.utils.wandb_results import log_per_gene

log = logging.getLogger(__name__)


def train(cfg: DictConfig) -> dict[str, float]:
    """Train ``cfg.model`` on ``cfg.data``, then validate and test the best checkpoint.

    Writes ``metrics.json`` (final ``val/*`` and ``test/*``) and ``per_gene_test.tsv`` into
    ``cfg.paths.output_dir`` (process 0 only) and returns the metrics.
    """
    validate_config(cfg)
    ckpt_path = resolve_ckpt_path(cfg)
    L.seed_everything(cfg.seed, workers=True)
    output_dir = Path(cfg.paths.output_dir)
    if cfg.get("logger") and "wandb" in cfg.logger:
        resolve_wandb_mode(str(output_dir))
        identity = sweep_identity()
        if identity and not cfg.logger.wandb.get("group"):
            with open_dict(cfg):
                cfg.logger.wandb.update(identity)

    datamodule = hydra.utils.instantiate(cfg.data, _convert_="all")
    datamodule.prepare_data()
    datamodule.setup("fit")
    if cfg.get("keep_freed_memory", True):
        keep_freed_memory()  # after the data are loaded: steps stop refaulting their memory (src/utils/allocator.py)
    model = hydra.utils.instantiate(
        cfg.model, n_inputs=datamodule.n_landmarks, n_outputs=datamodule.n_targets, _convert_="all"
    )
    model.attach_data(
        datamodule.gene_space,
        OmegaConf.to_container(cfg.data, resolve=True),
        method=cfg.get("method"),
        data=cfg.get("data_name"),
    )

    loggers = instantiate_all(cfg.get("logger"))
    trainer: L.Trainer = hydra.utils.instantiate(
        cfg.trainer,
        callbacks=instantiate_all(cfg.get("callbacks")),
        logger=loggers or False,
        **trainer_overrides(cfg, model),
    )
    for logger in loggers:
        logger.log_hyperparams(plain_config(cfg))
    with ranks_run_this_job(cfg):
        try:
            trainer.fit(model, datamodule=datamodule, ckpt_path=ckpt_path)
            best = trainer.checkpoint_callback.best_model_path if trainer.checkpoint_callback else ""
            ckpt = "best" if best else None
            metrics = {}
            for run in (trainer.validate, trainer.test):
                for result in run(model, datamodule=datamodule, ckpt_path=ckpt, verbose=False):
                    metrics.update(scalar_metrics(result))
            if trainer.is_global_zero:
                save_results(output_dir, metrics, model, best_checkpoint=best)
                for logger in loggers:
                    if type(logger).__name__ == "WandbLogger":
                        log_per_gene(logger, output_dir)
        finally:
            if any(type(lg).__name__ == "WandbLogger" for lg in loggers):
                import wandb

                wandb.finish()
            wait_for_ranks(trainer)
    if trainer.is_global_zero:  # last, so that it is what the terminal ends with
        show_results(output_dir, metrics, model)
    return metrics


@hydra.main(version_base="1.3", config_path="../conf", config_name="train")
def main(cfg: DictConfig) -> float | None:
    """Command-line entry point; returns the metric a hyperparameter sweeper optimises."""
    metrics = train(cfg)
    return metrics.get(cfg.get("optimized_metric"))


if __name__ == "__main__":
    main()
