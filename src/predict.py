"""Predict target genes for new landmark profiles: ``python -m src.predict ckpt_path=... input=... output=...``.

The input is streamed in blocks of samples, so files far larger than memory (the LINCS L1000 release
has 1.3 million profiles) work. Each block goes through the preprocessing the model was trained with,
all of it stored in the checkpoint and applied by its one owner,
:class:`~src.data.preprocessing.Preprocessing`: landmark genes are located (averaging probes for
probe-level input), optionally ``log2(x + 1)`` (as the training data), rank-mapped onto the training
landmark quantiles when the training data were quantile-normalised, and standardised with the
training statistics. Predictions are written standardised and back on the training data's
expression scale, with sample and gene ids.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import hydra
import numpy as np
import torch
from omegaconf import DictConfig

from src.common.errors import InputError, cli_errors
from src.common.progress import progress_bar
from src.data.genes import match_genes
from src.data.io.base import output_format
from src.data.io.annotations import read_sample_annotations
from src.data.io.matrix import open_matrix
from src.data.io.writers import MatrixWriter, check_outputs
from src.data.transforms import check_values
from src.models.checkpoint import load_model
from src.utils.config import validate_predict_config
from src.utils.results import record_failure
from src.utils.quiet import quiet_third_party

log = logging.getLogger(__name__)


def provenance_of(cfg: DictConfig, model, genes) -> dict[str, str]:
    """What made these predictions: the checkpoint (path and SHA-256), the model, the framework's version,
    the landmarks measured and the intervals (written into the output's metadata)."""
    from importlib.metadata import PackageNotFoundError, version

    digest = hashlib.sha256()
    with open(cfg.ckpt_path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 24), b""):
            digest.update(chunk)
    try:
        framework = f"gexinfer {version('gexinfer')}"
    except PackageNotFoundError:
        framework = "gexinfer (not installed)"
    return {
        "checkpoint": str(Path(cfg.ckpt_path).resolve()), "checkpoint_sha256": digest.hexdigest(),
        "model": type(model).__name__, "method": model.names.get("method", ""), "framework": framework,
        "landmarks_present": f"{genes.n_present} of {len(model.preprocessing.landmark_ids)}",
        "interval": f"{cfg.interval} ({cfg.interval_kind}, split conformal)" if cfg.interval else "none",
    }


def check_orientation(reader, landmark_map, cfg: DictConfig) -> None:
    """A transposed file (genes as rows of an h5ad, samples as columns where rows were expected) has the
    model's landmark ids (``landmark_map``'s) among its *sample* ids: say so, with the fix, instead of
    'landmarks missing'."""
    landmarks = {*landmark_map.ensembl_ids, *landmark_map.all_probes, *(s.upper() for s in landmark_map.symbols)}
    as_features = sum(str(f) in landmarks or str(f).upper() in landmarks for f in reader.feature_ids)
    as_samples = sum(str(s) in landmarks or str(s).upper() in landmarks for s in reader.sample_ids)
    if as_samples > max(10, 2 * as_features):
        fix = {"table": "pass +reader_options.orientation=features_in_rows (or samples_in_rows)",
               "h5ad": "transpose it first (anndata: adata.T.write_h5ad(...)): samples must be the rows (obs)"}
        kind = type(reader).__name__.replace("Reader", "").lower()
        raise InputError(
            f"{cfg.input}: {as_samples} of the model's landmarks are among the file's sample ids and {as_features} "
            f"among its feature ids: the file looks transposed (genes as samples); "
            f"{fix.get(kind, 'write it with samples as rows and genes as features')}"
        )


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def predict(cfg: DictConfig) -> list[Path]:
    """Write the predictions of ``cfg.ckpt_path`` for ``cfg.input`` to ``cfg.output``; returns the files written."""
    validate_predict_config(cfg)
    model = load_model(cfg.ckpt_path)
    space = model.preprocessing
    if space is None:
        raise InputError(f"{cfg.ckpt_path}: the checkpoint holds no preprocessing (ids and statistics); retrain with src.train")
    if not model.predicts_from_landmarks:
        raise InputError(f"{cfg.ckpt_path}: a {type(model).__name__} reconstructs target profiles; it cannot predict from landmarks")
    if cfg.missing_landmarks not in ("error", "impute"):
        raise InputError(f"missing_landmarks={cfg.missing_landmarks}: expected error or impute")
    if cfg.genes not in ("all", "reliable"):
        raise InputError(f"genes={cfg.genes}: expected all or reliable")
    if model.trust is None and (cfg.interval or cfg.genes == "reliable"):
        raise InputError(
            f"{cfg.ckpt_path}: the checkpoint holds no calibration, so no intervals or reliability calls; "
            "retrain with data.calibration=0.1 (the default), or predict with interval=null genes=all"
        )
    layers = ["expression", "standardised"] + (["lower", "upper", "standardised_lower", "standardised_upper"] if cfg.interval else [])
    # Before any work: no file written may be the input, none replaces an existing file unless overwrite=true.
    annotated = model.trust is not None or bool(space.info.get("target_symbols"))
    check_outputs(MatrixWriter.planned_paths(cfg.output, layers, feature_annotations=annotated, uns=True),
                  inputs=[cfg.input], overwrite=cfg.overwrite)
    device = resolve_device(cfg.device)
    model.to(device)
    options = dict(cfg.get("reader_options") or {})
    if cfg.get("id_field"):  # CMap/LINCS GCTX: feature ids from a row-metadata field
        options["id_field"] = cfg.id_field
    landmark_map = space.landmark_map(cfg.ckpt_path)
    # The model's own gene ids and symbols tell a table's orientation (e.g. a samples x symbols CSV).
    reader = open_matrix(cfg.input, cfg.input_format, options_key="reader_options",
                         known_features=landmark_map.known_ids, **options)
    if len(reader.sample_ids) == 0:
        raise InputError(f"{cfg.input}: the file holds no samples; expected at least one landmark profile to predict from")
    check_orientation(reader, landmark_map, cfg)
    genes = match_genes(
        reader.feature_ids, [landmark_map], cfg.id_type, str(cfg.input),
        allow_missing=cfg.missing_landmarks == "impute",
        hint="to predict from the landmarks present (the others imputed, intervals recalibrated), pass missing_landmarks=impute",
        candidates=("probe", "ensembl", "symbol") if space.landmark_probes else ("ensembl", "symbol"),
    )
    needed, remap = genes.compact()
    present = None if genes.complete else genes.present
    if present is not None:
        log.warning("%d of %d landmarks are missing from %s: imputed from the %d present; reliability and intervals "
                    "recalibrated for this panel", (~present).sum(), len(present), cfg.input, present.sum())
    log2 = space.log2 if cfg.log2 == "auto" else bool(cfg.log2)
    qn = space.quantile_normalized if cfg.quantile_normalize == "auto" else bool(cfg.quantile_normalize)
    if qn and not space.quantile_normalized:
        raise InputError(f"quantile_normalize=true: the training data of {cfg.ckpt_path} were not quantile-normalised; use quantile_normalize=auto")
    reliability = model.trust.reliability_for(model, space, present) if model.trust is not None else None
    intervals = model.trust.intervals(model, space, 1 - float(cfg.interval), present) if cfg.interval else None
    keep = reliability.reliable if cfg.genes == "reliable" else np.ones(len(space.target_ids), dtype=bool)
    if not keep.any():
        raise InputError(f"genes=reliable: none of the {len(keep)} target genes of {cfg.ckpt_path} is reliable for this panel")
    annotations = {}
    if space.info.get("target_symbols"):
        annotations["symbol"] = [sym for sym, k in zip(space.info["target_symbols"], keep) if k]
    if reliability is not None:
        annotations.update({"reliable": reliability.reliable[keep], "heldout_mae": reliability.heldout_mae[keep],
                            "heldout_pearson": reliability.heldout_pearson[keep]})
    provenance = provenance_of(cfg, model, genes)
    n = len(reader.sample_ids)
    target_ids = [g for g, k in zip(space.target_ids, keep) if k]
    # The input's sample annotations (obs of an h5ad, column metadata of a GCTX) travel with the predictions
    # into formats that hold them (h5ad obs, GCTX column metadata; CSV outputs carry none).
    holds = output_format(cfg.output) in ("h5ad", "gctx")
    samples = dict(reader.sample_annotations()) if holds and hasattr(reader, "sample_annotations") else {}
    if holds and cfg.get("sample_annotations"):  # a design file, joined by run or sample id
        design = read_sample_annotations(cfg.sample_annotations, [str(s) for s in reader.sample_ids], key="sample_annotations")
        samples.update({str(c): design[c].to_numpy(dtype=object) for c in design.columns})
    with MatrixWriter(cfg.output, reader.sample_ids, target_ids, layers, feature_annotations=annotations,
                      sample_annotations=samples or None, uns=provenance) as writer, \
            progress_bar(f"Predicting {n:,} profiles", n) as advance, torch.inference_mode():
        for rows, block in reader.blocks(needed, cfg.block_size):
            check_values(block, str(cfg.input), reader.sample_ids, reader.feature_ids[needed], rows.start, log2, "landmark")
            x = space.transform_landmarks(block, remap, log2=log2, quantile_normalize=qn)
            standardised = model(torch.from_numpy(x).to(device)).float().cpu().numpy()
            out = {"standardised": standardised, "expression": space.inverse_targets(standardised)}
            if intervals is not None:
                half = intervals.half_width(x, adaptive=cfg.interval_kind == "adaptive")
                out["standardised_lower"], out["standardised_upper"] = standardised - half, standardised + half
                out["lower"], out["upper"] = space.inverse_targets(out["standardised_lower"]), space.inverse_targets(out["standardised_upper"])
            writer.write({name: values[:, keep] for name, values in out.items()})
            advance(len(block))
    log.info("Predicted %d targets for %d samples: %s", len(target_ids), n, ", ".join(map(str, writer.paths)))
    return writer.paths


@hydra.main(version_base="1.3", config_path="../conf", config_name="predict")
@cli_errors(on_job_failure=record_failure)
def main(cfg: DictConfig) -> None:
    quiet_third_party()
    predict(cfg)


if __name__ == "__main__":
    main()
