"""What a run leaves behind: ``metrics.json``, per-gene metrics, and a table on the terminal."""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table

from src.common.atomic import atomic_path


def scalar_metrics(metrics: Mapping[str, object], prefixes: Sequence[str] = ("val/", "test/")) -> dict[str, float]:
    """Plain floats of the metrics whose names start with one of ``prefixes``, sorted by name."""
    out = {}
    for key in sorted(metrics):
        if key.startswith(tuple(prefixes)):
            value = metrics[key]
            out[key] = float(value.item() if isinstance(value, torch.Tensor) else value)
    return out


def write_metrics(path: str | Path, metrics: Mapping[str, float], extra: Mapping[str, object] | None = None) -> Path:
    """Write ``{"metrics": ..., **extra}`` as JSON (atomically)."""
    payload = {"metrics": {k: (None if math.isnan(v) else v) for k, v in metrics.items()}, **(extra or {})}
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(payload, indent=2) + "\n")
    return Path(path)


def write_per_gene(path: str | Path, gene_ids: Sequence[str], per_gene: Mapping[str, torch.Tensor]) -> Path:
    """Write one row per target gene with each per-gene metric (tab-separated, atomically)."""
    names = sorted(per_gene)
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
        writer = csv.writer(f, delimiter="\t")
        writer.writerow(["gene", *names])
        columns = [per_gene[n].tolist() for n in names]
        for gene, *values in zip(gene_ids, *columns):
            writer.writerow([gene, *(f"{v:.6g}" for v in values)])
    return Path(path)


def print_metrics(
    metrics: Mapping[str, float], title: str, output_dir: str | Path | None = None, noise_floor: float | None = None
) -> None:
    """Print metrics as a small table: one row per metric name, one column per split."""
    splits = sorted({k.split("/", 1)[0] for k in metrics}, key=lambda s: ("train", "val", "test").index(s) if s in ("train", "val", "test") else 9)
    names = sorted({k.split("/", 1)[1] for k in metrics if "/" in k})
    table = Table(title=title)
    table.add_column("metric")
    for split in splits:
        table.add_column(split, justify="right")
    for name in names:
        table.add_row(name, *(f"{metrics[f'{s}/{name}']:.4f}" if f"{s}/{name}" in metrics else "" for s in splits))
    console = Console()
    console.print(table)
    if output_dir is not None:
        console.print(f"outputs: {output_dir}")
    if noise_floor is not None:
        console.print(f"noise floor (MAE of the true function): {noise_floor:.4f}")
    console.print("mae: mean absolute error on the standardised scale, averaged over genes (D-GEX).")


def save_results(output_dir: Path, metrics: dict[str, float], model, data_space=None, **extra) -> None:
    """Write metrics.json and per-gene test metrics.

    ``data_space`` is the tested data's gene space when it is not the training data (its noise floor counts).
    """
    floor = data_noise_floor(model, data_space)
    write_metrics(
        output_dir / "metrics.json",
        metrics,
        {
            "model": type(model).__name__,
            **model.names,
            "noise_floor_mae": floor,
            **({"selected": model.selected} if getattr(model, "selected", None) else {}),
            **{k: str(v) for k, v in extra.items()},
        },
    )
    if model.test_per_gene is not None and model.gene_space is not None:
        write_per_gene(output_dir / "per_gene_test.tsv", model.gene_space.target_ids, model.test_per_gene)


def show_results(output_dir: Path, metrics: dict[str, float], model, data_space=None) -> None:
    """Print the metrics table (with the tested data's noise floor, when it has one)."""
    title = model.names.get("method") or type(model).__name__
    print_metrics(metrics, title=title, output_dir=output_dir, noise_floor=data_noise_floor(model, data_space))


def data_noise_floor(model, data_space=None) -> float | None:
    """The tested data's noise floor (``data_space``, else the training data's), if it has one."""
    space = data_space or model.gene_space
    return space.info.get("noise_floor_mae") if space else None
