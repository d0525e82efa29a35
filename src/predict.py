"""Predict target genes for new landmark profiles: ``python -m src.predict ckpt_path=... input=... output=...``.

The checkpoint's :class:`~src.inference.Predictor` (the inference engine: gene matching, the training
preprocessing, the network, reliability and intervals) streams the input file in blocks of samples into the
output, so files far larger than memory (the LINCS L1000 release has 1.3 million profiles) work.
Predictions are written standardised and back on the training data's expression scale, with sample and
gene ids, each gene's held-out reliability and the provenance.
"""

from __future__ import annotations

from pathlib import Path

import hydra
from omegaconf import DictConfig

from src.common.errors import cli_errors
from src.inference import Predictor
from src.utils.config import validate_predict_config
from src.utils.quiet import quiet_third_party
from src.utils.results import record_failure


def predict(cfg: DictConfig) -> list[Path]:
    """Write the predictions of ``cfg.ckpt_path`` for ``cfg.input`` to ``cfg.output``; returns the files written."""
    validate_predict_config(cfg)
    return Predictor.load(cfg.ckpt_path, cfg.device).predict_file(
        cfg.input, cfg.output, overwrite=cfg.overwrite, block_size=cfg.block_size, input_format=cfg.input_format,
        reader_options=dict(cfg.get("reader_options") or {}), id_field=cfg.get("id_field"),
        sample_annotations=cfg.get("sample_annotations"), interval=cfg.interval, interval_kind=cfg.interval_kind,
        genes=cfg.genes, missing_landmarks=cfg.missing_landmarks, log2=cfg.log2,
        quantile_normalize=cfg.quantile_normalize, id_type=cfg.id_type, calibrate_with=cfg.get("calibrate_with"),
        adjust=cfg.get("adjust", "none"), interval_shift=cfg.get("interval_shift", "none"),
    )


@hydra.main(version_base="1.3", config_path="conf", config_name="predict")
@cli_errors(on_job_failure=record_failure)
def main(cfg: DictConfig) -> None:
    quiet_third_party()
    predict(cfg)


if __name__ == "__main__":
    main()
