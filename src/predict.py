"""Predict target genes for new landmark profiles: ``python -m src.predict ckpt_path=... input=... output=...``.

The input is streamed in blocks of samples, so files far larger than memory (the LINCS L1000 release
has 1.3 million profiles) work. Each block goes through the preprocessing the model was trained with,
all of it stored in the checkpoint: landmark genes are located (averaging probes for probe-level
input), optionally ``log2(x + 1)``, rank-mapped onto the training landmark quantiles when the training
data were quantile-normalised, and standardised with the training statistics. Predictions are written
standardised and back on the training data's expression scale, with sample and gene ids.
"""

from __future__ import annotations

import logging
from pathlib import Path

import hydra
import numpy as np
import torch
from omegaconf import DictConfig

from src.data.genes import GeneMap, match_genes
from src.data.io.matrix import open_matrix
from src.data.io.writers import MatrixWriter
from src.data.preprocess import find_unusable, log2p1, rank_map
from src.models.checkpoint import load_model
from src.common.progress import progress_bar

log = logging.getLogger(__name__)


def landmark_map(model, ckpt_path: str) -> GeneMap:
    """The model's landmark genes as a gene map: its gene ids, and its probes if it was trained on probes."""
    space = model.gene_space
    probes = space.info.get("landmark_probes") or [[g] for g in space.landmark_ids]
    return GeneMap(Path(ckpt_path), list(space.landmark_ids), list(space.landmark_ids), [list(p) for p in probes])


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def predict(cfg: DictConfig) -> list[Path]:
    """Write the predictions of ``cfg.ckpt_path`` for ``cfg.input`` to ``cfg.output``; returns the files written."""
    model = load_model(cfg.ckpt_path)
    space = model.gene_space
    if space is None:
        raise ValueError(f"{cfg.ckpt_path}: the checkpoint holds no gene space (ids and statistics); retrain with src.train")
    if not model.predicts_from_landmarks:
        raise ValueError(f"{cfg.ckpt_path}: a {type(model).__name__} reconstructs target profiles; it cannot predict from landmarks")
    device = resolve_device(cfg.device)
    model.to(device)
    reader = open_matrix(cfg.input, cfg.input_format, **(cfg.get("reader_options") or {}))
    id_type = cfg.id_type
    if id_type == "auto" and not space.info.get("landmark_probes"):
        id_type = "ensembl"  # the model knows its landmarks by gene id only
    genes = match_genes(reader.feature_ids, [landmark_map(model, cfg.ckpt_path)], id_type, str(cfg.input))
    needed, remap = genes.compact()
    reference = space.landmark_reference
    qn = cfg.quantile_normalize
    if qn == "auto":
        qn = reference is not None
    elif qn and reference is None:
        raise ValueError(f"{cfg.ckpt_path}: quantile_normalize=true, but the model's data were not quantile-normalised")
    n = len(reader.sample_ids)
    layers = ["expression", "standardised"]
    with MatrixWriter(cfg.output, reader.sample_ids, space.target_ids, layers) as writer, \
            progress_bar(f"Predicting {n:,} profiles", n) as advance, torch.inference_mode():
        for rows, block in reader.blocks(needed, cfg.block_size):
            landmarks = _checked(block, cfg, reader, rows.start, needed)
            landmarks = remap.apply(landmarks)
            if qn:
                rank_map(landmarks, reference, out=landmarks)
            x = torch.from_numpy(space.landmark_scaler.transform(landmarks)).to(device)
            standardised = model(x).float().cpu().numpy()
            writer.write({"standardised": standardised, "expression": space.target_scaler.inverse(standardised)})
            advance(len(block))
    log.info("Predicted %d targets for %d samples: %s", len(space.target_ids), n, ", ".join(map(str, writer.paths)))
    return writer.paths


def _checked(block: np.ndarray, cfg: DictConfig, reader, first: int, columns: np.ndarray) -> np.ndarray:
    """Refuse non-finite (or, with log2, negative) input values, naming the sample and feature; apply log2."""
    found = find_unusable(block, nonnegative=cfg.log2)
    if found is not None:
        _, count, r, c = found
        raise ValueError(
            f"{cfg.input}: {count} unusable landmark values (NaN, infinite{', negative with log2' if cfg.log2 else ''}), "
            f"first in sample {reader.sample_ids[first + r]} feature {reader.feature_ids[columns[c]]} ({block[r, c]}); "
            "expected finite values (nothing is imputed)"
        )
    return log2p1(block) if cfg.log2 else block


@hydra.main(version_base="1.3", config_path="../conf", config_name="predict")
def main(cfg: DictConfig) -> None:
    predict(cfg)


if __name__ == "__main__":
    main()
