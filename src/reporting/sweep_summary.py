"""A Hydra callback that summarises a sweep in its folder when the sweep ends.

Every multirun (grid or Optuna) gets ``summary.json`` and ``summary.md``: one row per job with its
overrides and final metrics, best first by ``optimized_metric``; a failed job (``failed.json`` in its
folder, see :func:`src.common.errors.cli_errors`) is listed last, marked as failed, with its error, and
the command then exits with status 1. When the jobs are comparable runs
(``experiment=compare``), ``report.md`` and the figures of :mod:`src.reporting.comparison_report` are written
too, and logged to W&B when W&B is the logger.
"""

from __future__ import annotations

import json
import logging
import math
import sys
from pathlib import Path

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from src.common.atomic import atomic_path
from src.reporting.repeats import repeats_table
from src.reporting.run_folder import RunFolder
from src.reporting.tables import markdown_table

log = logging.getLogger(__name__)


def collect_jobs(sweep_dir: Path) -> list[dict]:
    """Every finished or failed job below ``sweep_dir``: its folder, overrides and metrics, and for a
    failed job its error (``failed``: one line)."""
    jobs = {}
    for run in RunFolder.find([sweep_dir]):
        jobs[run.path] = {"job": str(run.path.relative_to(sweep_dir)), "overrides": run.read_overrides(),
                          "metrics": run.read_metrics()}
    for run in RunFolder.find_failed([sweep_dir]):
        job = jobs.setdefault(run.path, {"job": str(run.path.relative_to(sweep_dir)),
                                         "overrides": run.read_overrides(), "metrics": {}})
        job["failed"] = " ".join(str((run.read_failure() or {}).get("error", "failed")).split())
    return [jobs[path] for path in sorted(jobs)]


def write_summary(sweep_dir: Path, metric: str = "val/mae") -> Path:
    """Write ``summary.json`` and ``summary.md`` for a sweep's jobs, sorted by ``metric`` (lower first);
    failed jobs come last, marked as failed, with their error."""
    jobs = collect_jobs(sweep_dir)
    if not jobs:
        raise FileNotFoundError(f"{sweep_dir}: no finished jobs (no {RunFolder.METRICS})")

    def key(job):
        value = job["metrics"].get(metric)
        return ("failed" in job, math.inf if value is None else value)

    jobs.sort(key=key)
    names = sorted({name for job in jobs for name in job["metrics"]})
    with atomic_path(sweep_dir / "summary.json") as tmp:
        tmp.write_text(json.dumps({"sorted_by": metric, "jobs": jobs}, indent=2) + "\n")
    rows = []
    for job in jobs:
        values = [job["metrics"].get(n) for n in names]
        label = f"{job['job']} (failed)" if "failed" in job else job["job"]
        rows.append([label, " ".join(job["overrides"]), *("" if v is None else f"{v:.4f}" for v in values)])
    failed = [job for job in jobs if "failed" in job]
    counted = f"{len(jobs)} jobs" + (f" ({len(failed)} failed)" if failed else "")
    lines = [f"# Sweep summary: {counted}, best {metric} first", "",
             markdown_table(["job", "overrides", *names], rows)]
    repeated = repeats_table(jobs)
    if repeated:
        lines += ["", "## Over folds and seeds", "", "Jobs whose overrides differ only in `data.fold` or `seed`.", "", repeated]
    if failed:
        lines += ["", "## Failed jobs", ""]
        lines += [f"- job {job['job']} ({' '.join(job['overrides']) or 'no overrides'}): {job['failed']}" for job in failed]
    with atomic_path(sweep_dir / "summary.md") as tmp:
        tmp.write_text("\n".join(lines) + "\n")
    return sweep_dir / "summary.md"


def failed_jobs(sweep_dir: Path) -> int:
    """How many jobs below ``sweep_dir`` failed."""
    return len(RunFolder.find_failed([sweep_dir]))


class SweepReport(Callback):
    """After a multirun, write the sweep summary (and, for comparisons, the report) into the sweep folder."""

    def __init__(self, comparison: bool = False):
        self.comparison = comparison

    def on_multirun_end(self, config: DictConfig, **kwargs) -> None:
        """Summarise; when jobs failed (each recorded in its folder and listed in ``summary.md``), say so
        last and end the command with status 1, after every job has run."""
        sweep_dir = Path(config.hydra.sweep.dir)
        self._summarise(config, sweep_dir)
        failed = failed_jobs(sweep_dir)
        if failed:
            log.error("%d job(s) of the sweep failed: see %s", failed, sweep_dir / "summary.md")
            sys.exit(1)

    def _summarise(self, config: DictConfig, sweep_dir: Path) -> None:
        try:
            log.info("Sweep summary: %s", write_summary(sweep_dir, config.get("optimized_metric") or "val/mae"))
        except FileNotFoundError as err:  # e.g. every job failed
            log.error("No summary for %s: %s", sweep_dir, err)
            return
        if not self.comparison:
            return
        from src.reporting.comparison_report import log_to_wandb, write_report

        try:
            report = write_report([sweep_dir], sweep_dir)
        except (FileNotFoundError, ValueError) as err:
            log.error("No report for %s: %s", sweep_dir, err)
            return
        log.info("Comparison report: %s", report)
        loggers = config.get("logger") or {}
        if "wandb" in loggers:
            log_to_wandb(report, project=loggers.wandb.get("project", "gexinfer"))
