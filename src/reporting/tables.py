"""Tables: the one Markdown table writer (comparison report, sweep summary) and the terminal table."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from rich.console import Console
from rich.table import Table

_SPLITS = ("train", "val", "test")


def markdown_table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    """A Markdown table: the header, a separator, then one line per row of already formatted cells."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cells) + " |" for cells in rows]
    return "\n".join(lines)


def print_metrics(
    metrics: Mapping[str, float], title: str, output_dir: str | Path | None = None, noise_floor: float | None = None
) -> None:
    """Print metrics as a small table: one row per metric name, one column per split."""
    splits = sorted({k.split("/", 1)[0] for k in metrics}, key=lambda s: _SPLITS.index(s) if s in _SPLITS else 9)
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
