"""Runs that repeat one configuration (k-fold cross-validation folds, seeds): mean ± sd over them.

Two runs repeat each other when their overrides are equal apart from ``data.fold`` and ``seed``
(for a sweep), or when they share their method and data (for the comparison report). With K folds,
every sample is tested once, and the sd over folds is how much the test MAE moves with the data.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence

from src.reporting.tables import markdown_table

REPEAT_KEYS = ("data.fold=", "seed=")
METRICS = ("test/mae", "test/deployed_mae", "test/pearson", "val/mae")


def repeat_group(overrides: Sequence[str]) -> str:
    """The configuration a job repeats: its overrides without the fold and the seed."""
    return " ".join(o for o in overrides if not o.startswith(REPEAT_KEYS)) or "(defaults)"


def mean_sd(values: Sequence[float]) -> str:
    """``mean ± sd`` (sample standard deviation; just the mean for one value)."""
    values = [v for v in values if v is not None]
    if not values:
        return ""
    if len(values) == 1:
        return f"{values[0]:.4f}"
    return f"{statistics.mean(values):.4f} ± {statistics.stdev(values):.4f}"


def repeats_table(jobs: list[dict], metrics: Sequence[str] = METRICS) -> str | None:
    """A Markdown table, one row per repeated configuration, of mean ± sd over its finished jobs; None
    when no configuration was run more than once."""
    groups: dict[str, list[dict]] = {}
    for job in jobs:
        if "failed" not in job:
            groups.setdefault(repeat_group(job["overrides"]), []).append(job)
    if not any(len(g) > 1 for g in groups.values()):
        return None
    shown = [m for m in metrics if any(m in job["metrics"] for g in groups.values() for job in g)]
    rows = [[name, str(len(group)), *(mean_sd([job["metrics"].get(m) for job in group]) for m in shown)]
            for name, group in sorted(groups.items(), key=lambda kv: statistics.mean(
                [j["metrics"].get(shown[0], float("inf")) or float("inf") for j in kv[1]]))]
    return markdown_table(["configuration", "runs", *(f"{m} (mean ± sd)" for m in shown)], rows)


def method_repeats_table(runs: list, metrics: Sequence[str] = METRICS) -> str | None:
    """For the comparison report: per method with several runs of one data set (folds, seeds), mean ± sd
    of each metric over its runs; None when every method ran once."""
    jobs = [{"overrides": [run.method], "metrics": run.metrics} for run in runs]
    return repeats_table(jobs, metrics)
