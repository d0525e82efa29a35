"""Compare finished runs in the paper's terms: ``python -m src.report DIR... [--out DIR] [--wandb]``.

Reads every run folder at or below the given folders (single runs or sweeps), and writes
``report.md`` with one table per test data set plus PNG figures (per-gene scatter against LR,
per-gene MAE distributions). ``--wandb`` also logs the tables and figures to W&B (offline without
an API key).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from src.comparison import compare, find_runs, markdown_table
from src.plots import mae_distributions, scatter_against_lr


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
        lines += ["", f"## Test data: {comparison.data}", "", markdown_table(comparison), ""]
        for name, figure in (
            ("scatter_vs_lr", scatter_against_lr(comparison, runs, out / f"{slug}_scatter_vs_lr.png")),
            ("mae_distributions", mae_distributions(comparison, runs, out / f"{slug}_mae_distributions.png")),
        ):
            if figure is not None:
                lines.append(f"![{name}]({figure.name})")
        lines += ["", "Runs:", *[f"- {r.label}: `{r.path}`" for r in runs if r.data == comparison.data]]
    report = out / "report.md"
    report.write_text("\n".join(lines) + "\n")
    return report


def log_to_wandb(report: Path, project: str = "gexinfer") -> None:
    """Log the report's tables and figures to one W&B run (offline without credentials)."""
    import wandb

    from src.utils.wandb_mode import resolve_wandb_mode

    resolve_wandb_mode(str(report.parent))
    run = wandb.init(project=project, job_type="report", dir=str(report.parent), name="report")
    try:
        run.log({"report": wandb.Html(f"<pre>{report.read_text()}</pre>")})
        for png in sorted(report.parent.glob("*.png")):
            run.log({png.stem: wandb.Image(str(png))})
    finally:
        run.finish()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m src.report", description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="+", help="run or sweep folders (searched for metrics.json)")
    parser.add_argument("--out", default=None, help="output folder (default: the first path)")
    parser.add_argument("--wandb", action="store_true", help="also log tables and figures to W&B")
    args = parser.parse_args(argv)
    try:
        report = write_report(args.paths, args.out or args.paths[0])
    except (FileNotFoundError, ValueError) as err:
        sys.exit(f"error: {err}")
    print(report.read_text())
    print(f"report: {report}")
    if args.wandb:
        log_to_wandb(report)


if __name__ == "__main__":
    main()
