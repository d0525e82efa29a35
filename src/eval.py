"""Evaluate a checkpoint: ``python -m src.eval ckpt_path=PATH [data=OTHER]``.

Rebuilds the checkpoint's data set (or the one given with ``data=``), checks that its genes are the
model's, and writes ``metrics.json`` (``val/*`` and ``test/*``: D-GEX's protocol, the deployed path,
interval coverage and width) and ``per_gene_test.tsv``. ``landmark_panel=FILE`` (one landmark id per
line) also measures the model on that panel: the other landmarks imputed, intervals recalibrated.
"""

from __future__ import annotations

from pathlib import Path

import hydra
import lightning as L
import numpy as np
from omegaconf import DictConfig, OmegaConf

from src.common.errors import InputError, cli_errors
from src.data.genes import read_panel
from src.models.calibration import interval_metrics, predict_standardised
from src.models.checkpoint import load_model
from src.models.trust import per_gene_pearson
from src.utils.instantiate import instantiate_all
from src.utils.loggers import closing
from src.utils.config import validate_eval_config
from src.utils.results import record_failure, save_results, scalar_metrics, show_results
from src.utils.quiet import quiet_third_party


def check_same_genes(model_space, data_space, what: str) -> None:
    """Fail clearly when a data set's landmark or target genes differ from those a model was trained on."""
    for kind in ("landmark_ids", "target_ids"):
        ours, theirs = list(getattr(model_space, kind)), list(getattr(data_space, kind))
        if ours != theirs:
            missing = [g for g in ours if g not in set(theirs)]
            raise InputError(
                f"{what}: the data's {kind.split('_')[0]} genes differ from the model's "
                f"({len(theirs)} vs {len(ours)} genes, {len(missing)} of the model's missing, e.g. {missing[:3]})"
            )


def data_config(cfg: DictConfig, model) -> DictConfig:
    """The data to evaluate on: ``data=...`` if given, else the checkpoint's own data config, with any
    ``data.*`` overrides (e.g. those of ``debug=fast``) applied over it."""
    given = cfg.get("data")
    if given is not None and "_target_" in given:
        return given
    if not model.data_config:
        raise InputError(f"{cfg.ckpt_path}: the checkpoint holds no data config; choose the data, e.g. data=synthetic "
                         "or data=matrix data.source.path=FILE data.source.landmark_map=... data.source.target_map=...")
    return OmegaConf.merge(OmegaConf.create(model.data_config), given or {})


def check_sizes(model, data_cfg: DictConfig, what: str) -> None:
    """Before any data work: a checkpoint trained on the first N target genes (``data.max_targets``, e.g.
    ``debug=fast``) is evaluated on data cut the same way, or the error says what to set."""
    trained = (model.data_config or {}).get("max_targets")
    asked = data_cfg.get("max_targets")
    if trained and asked != trained:
        raise InputError(
            f"{what}: the model was trained on the first {trained} target genes (data.max_targets={trained}, "
            f"e.g. by debug=fast), but the data to evaluate keep {asked or 'all of them'}; "
            f"pass data.max_targets={trained} (or debug=fast), or evaluate a model trained on all targets"
        )


def panel_mask(model, path: str) -> np.ndarray:
    """Which of the model's landmarks a panel file lists (by gene id, or by probe for probe-trained models)."""
    listed = set(read_panel(path))
    space = model.preprocessing
    probes = space.landmark_probes or [[] for _ in space.landmark_ids]
    present = np.array([g in listed or any(p in listed for p in ps) for g, ps in zip(space.landmark_ids, probes)])
    if not present.any():
        raise InputError(f"landmark_panel={path}: none of its {len(listed)} ids is one of the model's {len(present)} landmarks "
                         f"(e.g. {', '.join(space.landmark_ids[:3])})")
    return present


def trust_metrics(model, datamodule, level: float, panel: str | None = None) -> dict[str, float]:
    """The test split's interval coverage and width at ``level`` (from the checkpoint's calibration) and,
    with a landmark ``panel`` file, the deployed MAE, Pearson, intervals and reliable genes on that panel."""
    test = datamodule.splits.get("test")
    if model.trust is None or test is None or len(test) == 0:
        return {}
    scored = model.scored_genes.cpu().numpy()
    intervals = model.trust.intervals(model, model.preprocessing, 1 - level)
    out = interval_metrics(model, intervals, test.deployed_landmarks, test.targets, scored)
    if panel:
        present = panel_mask(model, panel)
        x = datamodule.preprocessing.transform_landmarks(datamodule.raw("test"), log2=False, present=present)
        pred = predict_standardised(model, x)
        truth = test.targets.numpy()
        pearson = per_gene_pearson(pred[:, scored], truth[:, scored])
        out.update({"test/panel_deployed_mae": float(np.abs(pred - truth)[:, scored].mean()),
                    "test/panel_deployed_pearson": float(np.nanmean(pearson)),
                    "test/panel_landmarks_present": float(present.sum()),
                    "calibration/panel_reliable_genes": float(model.trust.reliability_for(model, model.preprocessing, present).reliable.sum())})
        panel_intervals = model.trust.intervals(model, model.preprocessing, 1 - level, present)
        out.update(interval_metrics(model, panel_intervals, x, test.targets, scored, prefix="test/panel_", pred=pred))
    return out


def evaluate(cfg: DictConfig) -> dict[str, float]:
    """Validate and test ``cfg.ckpt_path`` on its data (or ``cfg.data``); returns the metrics."""
    validate_eval_config(cfg)
    L.seed_everything(cfg.seed, workers=True)
    model = load_model(cfg.ckpt_path)
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
    metrics.update(trust_metrics(model, datamodule, cfg.get("interval", 0.9), cfg.get("landmark_panel")))
    if cfg.get("data_name"):
        model.names["data"] = str(cfg.data_name)
    if trainer.is_global_zero:
        save_results(Path(cfg.paths.output_dir), metrics, model, datamodule.preprocessing, checkpoint=cfg.ckpt_path)
        show_results(Path(cfg.paths.output_dir), metrics, model, datamodule.preprocessing)
    return metrics


@hydra.main(version_base="1.3", config_path="../conf", config_name="eval")
@cli_errors(on_job_failure=record_failure)
def main(cfg: DictConfig) -> None:
    quiet_third_party()
    evaluate(cfg)


if __name__ == "__main__":
    main()
