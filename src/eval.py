"""Evaluate a checkpoint: ``python -m src.eval ckpt_path=PATH [data=OTHER]``.

Rebuilds the checkpoint's data set (or the one given with ``data=``), checks that its genes are the
model's, and writes ``metrics.json`` (``val/*`` and ``test/*``: D-GEX's protocol, the deployed path,
interval coverage and width) and ``per_gene_test.tsv``. ``landmark_panel=FILE`` (one landmark id per
line) also measures the model on that panel through the inference engine: the other landmarks imputed,
intervals recalibrated (:mod:`src.inference.evaluation`).
"""

from __future__ import annotations

from pathlib import Path

import hydra
import lightning as L
from omegaconf import DictConfig

from src.common.errors import cli_errors
from src.inference import Predictor
from src.inference.evaluation import trust_metrics
from src.utils.config import validate_eval_config
from src.utils.evaluation import check_same_genes, check_sizes, data_config
from src.utils.instantiate import instantiate_all
from src.utils.loggers import closing
from src.utils.quiet import quiet_third_party
from src.utils.results import record_failure, save_results, scalar_metrics, show_results


def evaluate(cfg: DictConfig) -> dict[str, float]:
    """Validate and test ``cfg.ckpt_path`` on its data (or ``cfg.data``); returns the metrics."""
    validate_eval_config(cfg)
    L.seed_everything(cfg.seed, workers=True)
    predictor = Predictor.load(cfg.ckpt_path, device="cpu")  # Lightning moves it for validation and test
    model = predictor.model
    data_cfg = data_config(cfg, model)
    check_sizes(model, data_cfg, str(cfg.ckpt_path))
    datamodule = hydra.utils.instantiate(data_cfg, _convert_="all")
    datamodule.prepare_data()
    datamodule.setup("test")
    check_same_genes(model.preprocessing, datamodule.preprocessing, str(cfg.ckpt_path))
    loggers = instantiate_all(cfg.get("logger"))
    trainer: L.Trainer = hydra.utils.instantiate(cfg.trainer, logger=loggers or False)
    metrics = {}
    with closing(loggers):
        for run in (trainer.validate, trainer.test):
            for result in run(model, datamodule=datamodule, verbose=False):
                metrics.update(scalar_metrics(result))
    metrics.update(trust_metrics(predictor, datamodule, cfg.get("interval", 0.9), cfg.get("landmark_panel"),
                                 cfg.get("calibrate_with"), cfg.get("adjust", "none")))
    if cfg.get("data_name"):
        model.names["data"] = str(cfg.data_name)
    if trainer.is_global_zero:
        save_results(Path(cfg.paths.output_dir), metrics, model, datamodule.preprocessing, checkpoint=cfg.ckpt_path)
        show_results(Path(cfg.paths.output_dir), metrics, model, datamodule.preprocessing)
    return metrics


@hydra.main(version_base="1.3", config_path="conf", config_name="eval")
@cli_errors(on_job_failure=record_failure)
def main(cfg: DictConfig) -> None:
    quiet_third_party()
    evaluate(cfg)


if __name__ == "__main__":
    main()
