"""Every figure the project draws (matplotlib, written as PNG files; no display needed).

A run's per-gene histograms (logged to W&B) and a comparison's figures (in the report).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from matplotlib.figure import Figure  # figures drawn without pyplot: no backend chosen, none changed

if TYPE_CHECKING:
    from src.reporting.comparison import Comparison, Run


def per_gene_histograms(mae: Sequence[float], pearson: Sequence[float], path: Path) -> Path:
    """Histograms of the per-gene test MAE and Pearson correlation (NaN correlations left out)."""
    pearson = np.asarray(pearson, dtype=float)
    fig = Figure(figsize=(9, 3.2))
    axes = fig.subplots(1, 2)
    axes[0].hist(list(mae), bins=50, color="tab:blue")
    axes[0].set(xlabel="test MAE per gene (standardised)", ylabel="genes")
    axes[1].hist(pearson[~np.isnan(pearson)].tolist(), bins=50, color="tab:green")
    axes[1].set(xlabel="test Pearson r per gene")
    return _save(fig, path, dpi=110)


def scatter_against_lr(comparison: Comparison, runs: list[Run], path: Path) -> Path | None:
    """Per-gene MAE of each method (y) against LR's (x); points below the diagonal beat LR."""
    lr = comparison.reference
    others = [r for r in runs if r.data == comparison.data and r is not lr]
    if lr is None or not others:
        return None
    cols = min(3, len(others))
    rows = int(np.ceil(len(others) / cols))
    fig = Figure(figsize=(4 * cols, 4 * rows))
    axes = fig.subplots(rows, cols, squeeze=False)
    for ax, run in zip(axes.flat, others):
        x, y = lr.mae_on(run.genes), run.per_gene_mae
        ax.scatter(x, y, s=3, alpha=0.4, linewidths=0)
        lim = [0, max(x.max(), y.max()) * 1.05]
        ax.plot(lim, lim, color="grey", linewidth=1)
        ax.set(xlim=lim, ylim=lim, xlabel="LR per-gene MAE", ylabel=f"{run.label} per-gene MAE")
        ax.set_title(f"{run.label}: better on {100 * np.mean(y < x):.1f}% of genes", fontsize=10)
    for ax in list(axes.flat)[len(others) :]:
        ax.axis("off")
    fig.suptitle(f"Per-gene test MAE against LR ({comparison.data})")
    return _save(fig, path)


def mae_distributions(comparison: Comparison, runs: list[Run], path: Path) -> Path:
    """Per-gene MAE distribution of every method (violins), best method first."""
    order = [row["method"] for row in comparison.rows]
    by_label = {r.label: r for r in runs if r.data == comparison.data}
    fig = Figure(figsize=(max(6, 1.2 * len(order)), 4.5))
    ax = fig.subplots()
    ax.violinplot([by_label[m].per_gene_mae for m in order], showmedians=True)
    ax.set_xticks(range(1, len(order) + 1), order, rotation=30, ha="right")
    if comparison.noise_floor:
        # The floor is a mean over genes (each gene has its own noise), so single genes may lie below it.
        ax.axhline(comparison.noise_floor, color="tab:red", linestyle="--", linewidth=1, label="noise floor (mean over genes)")
        ax.legend()
    ax.set(ylabel="per-gene test MAE (standardised scale)", title=f"Per-gene MAE distributions ({comparison.data})")
    return _save(fig, path)


def _save(fig, path: Path, dpi: int = 120) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=dpi)
    return path


def mae_with_error_bars(summaries, noise_floor: float | None, path: Path) -> Path:
    """Test MAE of every method, mean over its runs (seeds, folds) with the sd as error bars, best first."""
    names = [m.method for m in summaries]
    means = [float(np.mean(m.mae)) for m in summaries]
    sds = [float(np.std(m.mae, ddof=1)) if len(m.mae) > 1 else 0.0 for m in summaries]
    fig = Figure(figsize=(max(5, 0.9 * len(names)), 4))
    ax = fig.subplots()
    ax.bar(range(len(names)), means, yerr=sds, capsize=4, color="tab:blue", alpha=0.8)
    ax.set_xticks(range(len(names)), names, rotation=30, ha="right")
    low = min(m - s for m, s in zip(means, sds))
    ax.set_ylim(max(0.0, low - 0.1 * (max(means) - low + 1e-9) - 0.01), max(m + s for m, s in zip(means, sds)) * 1.01)
    if noise_floor:
        ax.axhline(noise_floor, color="tab:red", linestyle="--", linewidth=1, label="noise floor")
        ax.legend()
    ax.set(ylabel="test MAE (mean ± sd over runs)", title="Test MAE over seeds / folds")
    return _save(fig, path)
