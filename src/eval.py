"""Evaluate a checkpoint: ``python -m src.eval ckpt_path=PATH [data=OTHER]``.

Rebuilds the checkpoint's data set (or the one given with ``data=``), checks that its genes are the
model's, and writes ``metrics.json`` (``val/*`` and ``test/*``) and ``per_gene_test.tsv``.
"""

from __future__ import annotations

from pathlib import Path

import hydra
import lightning as L
from omegaconf import DictConfig, OmegaConf

from src.models.checkpoint import load_model
from src.utils.instantiate import instantiate_all
from src.utils.loggers import closing
from src.utils.results import save_results, scalar_metrics, show_results


def check_same_genes(model_space, data_space, what: str) -> None:
    """Fail clearly when a data set's landmark or target genes differ from those a model was trained on."""
    for kind in ("landmark_ids", "target_ids"):
        ours, theirs = list(getattr(model_space, kind)), list(getattr(data_space, kind))
        if ours != theirs:
            missing = [g for g in ours if g not in set(theirs)]
            raise ValueError(
                f"{what}: the data's {kind.split('_')[0]} genes differ from the model's "
                f"({len(theirs)} vs {len(ours)} genes, {len(missing)} of the model's missing, e.g. {missing[:3]})"
            )


def evaluate(cfg: DictConfig) -> dict[str, float]:
    """Validate and test ``cfg.ckpt_path`` on its data (or ``cfg.data``); returns the metrics."""
    L.seed_everything(cfg.seed, workers=True)
    model = load_model(cfg.ckpt_path)
    data_cfg = cfg.get("data") or (OmegaConf.create(model.data_config) if model.data_config else None)
    if data_cfg is None:
        raise ValueError(f"{cfg.ckpt_path}: the checkpoint holds no data config; pass data=... to choose the data")
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
    if cfg.get("data_name"):
        model.names["data"] = str(cfg.data_name)
    if trainer.is_global_zero:
        save_results(Path(cfg.paths.output_dir), metrics, model, datamodule.preprocessing, checkpoint=cfg.ckpt_path)
        show_results(Path(cfg.paths.output_dir), metrics, model, datamodule.preprocessing)
    return metrics


@hydra.main(version_base="1.3", config_path="../conf", config_name="eval")
def main(cfg: DictConfig) -> None:
    evaluate(cfg)


if __name__ == "__main__":
    main()
