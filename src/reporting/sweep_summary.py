"""A Hydra callback that summarises a sweep in its folder when the sweep ends.

Every multirun (grid or Optuna) gets ``summary.json`` and ``summary.md``: one row per job with its
overrides and final metrics, best first by ``optimized_metric``. When the jobs are comparable runs
(``experiment=compare``), ``report.md`` and the figures of :mod:`src.reporting.report` are written
too, and logged to W&B when W&B is the logger.
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from src.common.atomic import atomic_path
from src.reporting.run_folder import RunFolder
from src.reporting.tables import markdown_table

log = logging.getLogger(__name__)


def collect_jobs(sweep_dir: Path) -> list[dict]:
    """Every finished job below ``sweep_dir``: its folder, overrides and metrics."""
    return [
        {"job": str(run.path.relative_to(sweep_dir)), "overrides": run.read_overrides(), "metrics": run.read_metrics()}
        for run in RunFolder.find([sweep_dir])
    ]


def write_summary(sweep_dir: Path, metric: str = "val/mae") -> Path:
    """Write ``summary.json`` and ``summary.md`` for a sweep's jobs, sorted by ``metric`` (lower first)."""
    jobs = collect_jobs(sweep_dir)
    if not jobs:
        raise FileNotFoundError(f"{sweep_dir}: no finished jobs (no {RunFolder.METRICS})")

    def key(job):
        value = job["metrics"].get(metric)
        return math.inf if value is None else value

    jobs.sort(key=key)
    names = sorted({name for job in jobs for name in job["metrics"]})
    with atomic_path(sweep_dir / "summary.json") as tmp:
        tmp.write_text(json.dumps({"sorted_by": metric, "jobs": jobs}, indent=2) + "\n")
    rows = []
    for job in jobs:
        values = [job["metrics"].get(n) for n in names]
        rows.append([job["job"], " ".join(job["overrides"]), *("" if v is None else f"{v:.4f}" for v in values)])
    lines = [f"# Sweep summary: {len(jobs)} jobs, best {metric} first", "",
             markdown_table(["job", "overrides", *names], rows)]
    with atomic_path(sweep_dir / "summary.md") as tmp:
        tmp.write_text("\n".join(lines) + "\n")
    return sweep_dir / "summary.md"


class SweepReport(Callback):
    """After a multirun, write the sweep summary (and, for comparisons, the report) into the sweep folder."""

    def __init__(self, comparison: bool = False):
        self.comparison = comparison

    def on_multirun_end(self, config: DictConfig, **kwargs) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        try:
            log.info("Sweep summary: %s", write_summary(sweep_dir, config.get("optimized_metric") or "val/mae"))
        except FileNotFoundError as err:  # e.g. every job failed
            log.error("No summary for %s: %s", sweep_dir, err)
            return
        if not self.comparison:
            return
        from src.reporting.report import log_to_wandb, write_report

        try:
            report = write_report([sweep_dir], sweep_dir)
        except (FileNotFoundError, ValueError) as err:
            log.error("No report for %s: %s", sweep_dir, err)
            return
        log.info("Comparison report: %s", report)
        loggers = config.get("logger") or {}
        if "wandb" in loggers:
            log_to_wandb(report, project=loggers.wandb.get("project", "gexinfer"))
