"""Compare finished runs in the paper's terms: ``python -m src.report DIR... [--out DIR] [--wandb]``.

Reads every run folder at or below the given folders (single runs or sweeps), and writes
``report.md`` with one table per test data set plus PNG figures (per-gene scatter against LR,
per-gene MAE distributions). ``--wandb`` also logs the tables and figures to W&B (offline without
an API key).
"""

from __future__ import annotations

import argparse
import sys

from src.reporting.comparison_report import log_to_wandb, write_report
from src.reporting.run_folder import RunFolder

__all__ = ["log_to_wandb", "main", "write_report"]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m src.report", description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="+", help=f"run or sweep folders (searched for {RunFolder.METRICS})")
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
