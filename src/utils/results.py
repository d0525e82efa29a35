"""A run's results from a trained model: plain values for :class:`src.reporting.run_folder.RunFolder`.

Turns what Lightning and the model hold (metric tensors, per-gene metrics, gene space, names) into
plain values, then writes the run folder and prints the terminal table through :mod:`src.reporting`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import torch

from src.reporting.run_folder import RunFolder
from src.reporting.tables import print_metrics


def scalar_metrics(metrics: Mapping[str, object], prefixes: Sequence[str] = ("val/", "test/")) -> dict[str, float]:
    """Plain floats of the metrics whose names start with one of ``prefixes``, sorted by name."""
    out = {}
    for key in sorted(metrics):
        if key.startswith(tuple(prefixes)):
            value = metrics[key]
            out[key] = float(value.item() if isinstance(value, torch.Tensor) else value)
    return out


def results_meta(model, data_space=None, **extra) -> dict:
    """What is written next to the metrics: model class, names (method, data), noise floor, selection, extras."""
    space = data_space or model.preprocessing
    constant = [g for g, c in zip(space.target_ids, space.constant_targets()) if c] if space else []
    return {
        "model": type(model).__name__,
        **model.names,
        "noise_floor_mae": data_noise_floor(model, data_space),
        **({"selected": model.selected} if model.selected else {}),
        # Left out of every averaged metric (training sd below src.data.preprocessing.CONSTANT_SD).
        "constant_genes": {"count": len(constant), "ids": constant},
        # Map genes absent from the training file, left out of the model (src.data.sources.mapped).
        **({"genes_dropped": space.genes_dropped} if space and space.genes_dropped else {}),
        **{k: str(v) for k, v in extra.items()},
    }


def save_results(output_dir: Path, metrics: dict[str, float], model, data_space=None, **extra) -> None:
    """Write the run folder's metrics and per-gene test metrics.

    ``data_space`` is the tested data's gene space when it is not the training data (its noise floor counts).
    """
    run = RunFolder(output_dir)
    run.write_metrics(metrics, results_meta(model, data_space, **extra))
    if model.test_per_gene is not None and model.preprocessing is not None:
        per_gene = dict(model.test_per_gene)
        per_gene["scored"] = model.scored_genes.cpu().float()  # 0: constant in training, left out of averages
        if model.trust is not None:  # the calibration split's verdict, as src.predict writes it
            per_gene["reliable"] = model.trust.reliability.reliable.astype(float)
        run.write_per_gene(model.preprocessing.target_ids, per_gene)


def save_splits(output_dir: Path, sample_ids: dict[str, list[str]], annotations: dict | None = None) -> None:
    """Write the run folder's ``splits.tsv`` (which sample went to which split, with its annotations)."""
    RunFolder(output_dir).write_splits(sample_ids, annotations)


def show_results(output_dir: Path, metrics: dict[str, float], model, data_space=None) -> None:
    """Print the metrics table (with the tested data's noise floor, when it has one)."""
    title = model.names.get("method") or type(model).__name__
    print_metrics(metrics, title=title, output_dir=output_dir, noise_floor=data_noise_floor(model, data_space))


def data_noise_floor(model, data_space=None) -> float | None:
    """The tested data's noise floor (``data_space``, else the training data's), if it has one."""
    space = data_space or model.preprocessing
    return space.noise_floor_mae if space else None


def record_failure(cfg, error: BaseException, message: str) -> None:
    """Record a failed job of a sweep in its run folder (``failed.json``), for the sweep summary."""
    RunFolder(Path(cfg.paths.output_dir)).write_failure(message, type(error).__name__)
