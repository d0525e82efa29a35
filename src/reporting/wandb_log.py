"""Send a finished run's per-gene results to its W&B run: a table of every target gene and a figure."""

from __future__ import annotations

from pathlib import Path

from src.reporting.figures import per_gene_histograms
from src.reporting.run_folder import RunFolder


def log_per_gene(logger, run: str | Path | RunFolder) -> None:
    """Log the run's per-gene test metrics as a W&B table and their histograms as an image to ``logger``'s run.

    Does nothing when the run has no per-gene metrics.
    """
    import wandb

    folder = run if isinstance(run, RunFolder) else RunFolder(run)
    if not folder.has_per_gene():
        return
    per_gene = folder.read_per_gene(required=("mae", "pearson"))
    names = list(per_gene.columns)
    rows = zip(per_gene.genes, *(per_gene[n].tolist() for n in names))
    table = wandb.Table(columns=["gene", *names], data=[list(row) for row in rows])
    figure = per_gene_histograms(per_gene["mae"], per_gene["pearson"], folder.per_gene_figure_file)
    logger.experiment.log({"test/per_gene": table, "test/per_gene_histograms": wandb.Image(str(figure))})
