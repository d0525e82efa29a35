"""The comparison report: ``report.md`` with one table per test data set, plus PNG figures.

Reads every run folder at or below the given folders (single runs or sweeps); :func:`log_to_wandb`
sends the tables and figures to one W&B run.
"""

from __future__ import annotations

from pathlib import Path

from src.common.wandb_mode import resolve_wandb_mode
from src.reporting.comparison import compare, comparison_table, find_runs
from src.reporting.figures import mae_distributions, mae_with_error_bars, scatter_against_lr
from src.reporting.statistics import statistics_table, summarise_methods


def write_report(paths: list[str | Path], out: str | Path) -> Path:
    """Write ``report.md`` and figures into ``out``; returns the report's path."""
    runs = find_runs(paths)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    lines = [
        "# Gene expression inference: comparison",
        "",
        "MAE is the D-GEX error: mean absolute error on the standardised scale (training-split statistics), "
        "per gene, averaged over genes (± its standard deviation over genes). 'vs LR' and 'vs D-GEX' are "
        "relative reductions of that error; 'genes better than LR' counts genes with a lower per-gene MAE.",
    ]
    for comparison in compare(runs):
        slug = "".join(c if c.isalnum() else "_" for c in comparison.data)
        lines += ["", f"## Test data: {comparison.data}", "", comparison_table(comparison), ""]
        group = [r for r in runs if r.data == comparison.data]
        if len({r.method for r in group}) < len(group):  # some method ran more than once (seeds, folds)
            summaries = summarise_methods(group)
            lines += ["### Over seeds and folds", "",
                      "Methods run more than once (seeds or k-fold cross-validation folds): mean ± sd over their "
                      "runs; improvements paired by seed or fold; a paired Wilcoxon signed-rank test over genes "
                      "(per-gene MAE averaged over runs) of every method against the best.", "",
                      statistics_table(summaries), ""]
            figure = mae_with_error_bars(summaries, comparison.noise_floor, out / f"{slug}_mae_over_runs.png")
            lines.append(f"![mae_over_runs]({figure.name})")
        for name, figure in (
            ("scatter_vs_lr", scatter_against_lr(comparison, runs, out / f"{slug}_scatter_vs_lr.png")),
            ("mae_distributions", mae_distributions(comparison, runs, out / f"{slug}_mae_distributions.png")),
        ):
            if figure is not None:
                lines.append(f"![{name}]({figure.name})")
        lines += ["", "Runs:", *[f"- {r.label}: `{r.path}`" for r in sorted(group, key=_natural_path)]]
    report = out / "report.md"
    report.write_text("\n".join(lines) + "\n")
    return report


def _natural_path(run) -> list:
    """Sort key: the run's folder path with numbers compared as numbers (job 2 before job 10)."""
    return [(0, int(part), "") if part.isdigit() else (1, 0, part) for part in run.path.parts]


def log_to_wandb(report: Path, project: str = "gexinfer") -> None:
    """Log the report's tables and figures to one W&B run (offline without credentials)."""
    import wandb

    resolve_wandb_mode(str(report.parent))
    run = wandb.init(project=project, job_type="report", dir=str(report.parent), name="report")
    try:
        run.log({"report": wandb.Html(f"<pre>{report.read_text()}</pre>")})
        for png in sorted(report.parent.glob("*.png")):
            run.log({png.stem: wandb.Image(str(png))})
    finally:
        run.finish()
