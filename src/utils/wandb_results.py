"""Send a finished run's per-gene results to its W&B run: a table of every target gene and a figure."""

from __future__ import annotations

import csv
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def per_gene_figure(per_gene_tsv: Path, out: Path) -> Path:
    """Histograms of the per-gene test MAE and Pearson correlation, saved as a PNG."""
    with open(per_gene_tsv) as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    mae = [float(r["mae"]) for r in rows]
    pearson = [float(r["pearson"]) for r in rows if r["pearson"] not in ("", "nan")]
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.2))
    axes[0].hist(mae, bins=50, color="tab:blue")
    axes[0].set(xlabel="test MAE per gene (standardised)", ylabel="genes")
    axes[1].hist(pearson, bins=50, color="tab:green")
    axes[1].set(xlabel="test Pearson r per gene")
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def log_per_gene(logger, output_dir: Path) -> None:
    """Log ``per_gene_test.tsv`` as a W&B table and its histograms as an image to ``logger``'s run."""
    import wandb

    tsv = output_dir / "per_gene_test.tsv"
    if not tsv.exists():
        return
    with open(tsv) as f:
        reader = csv.reader(f, delimiter="\t")
        header = next(reader)
        table = wandb.Table(columns=header, data=[[row[0], *map(float, row[1:])] for row in reader])
    figure = per_gene_figure(tsv, output_dir / "per_gene_test.png")
    logger.experiment.log({"test/per_gene": table, "test/per_gene_histograms": wandb.Image(str(figure))})
