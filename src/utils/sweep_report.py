"""A Hydra callback that summarises a sweep in its folder when the sweep ends.

Every multirun (grid or Optuna) gets ``summary.json`` and ``summary.md``: one row per job with its
overrides and final metrics, best first by ``optimized_metric``. When the jobs are comparable runs
(``experiment=compare``), ``report.md`` and the figures of :mod:`src.report` are written too, and
logged to W&B when W&B is the logger.
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path

import yaml
from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from src.common.atomic import atomic_path

log = logging.getLogger(__name__)


def collect_jobs(sweep_dir: Path) -> list[dict]:
    """Every finished job below ``sweep_dir``: its folder, overrides and metrics (from metrics.json)."""
    jobs = []
    for metrics_file in sorted(sweep_dir.rglob("metrics.json")):
        folder = metrics_file.parent
        overrides_file = folder / ".hydra" / "overrides.yaml"
        overrides = yaml.safe_load(overrides_file.read_text()) if overrides_file.exists() else []
        payload = json.loads(metrics_file.read_text())
        jobs.append({"job": str(folder.relative_to(sweep_dir)), "overrides": overrides, "metrics": payload["metrics"]})
    return jobs


def write_summary(sweep_dir: Path, metric: str = "val/mae") -> Path:
    """Write ``summary.json`` and ``summary.md`` for a sweep's jobs, sorted by ``metric`` (lower first)."""
    jobs = collect_jobs(sweep_dir)
    if not jobs:
        raise FileNotFoundError(f"{sweep_dir}: no finished jobs (no metrics.json)")

    def key(job):
        value = job["metrics"].get(metric)
        return math.inf if value is None else value

    jobs.sort(key=key)
    names = sorted({name for job in jobs for name in job["metrics"]})
    with atomic_path(sweep_dir / "summary.json") as tmp:
        tmp.write_text(json.dumps({"sorted_by": metric, "jobs": jobs}, indent=2) + "\n")
    lines = [f"# Sweep summary: {len(jobs)} jobs, best {metric} first", "",
             "| job | overrides | " + " | ".join(names) + " |", "|---|---|" + "---|" * len(names)]
    for job in jobs:
        values = [job["metrics"].get(n) for n in names]
        cells = ["" if v is None else f"{v:.4f}" for v in values]
        lines.append(f"| {job['job']} | {' '.join(job['overrides'])} | " + " | ".join(cells) + " |")
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
        from src.report import write_report

        try:
            report = write_report([sweep_dir], sweep_dir)
        except (FileNotFoundError, ValueError) as err:
            log.error("No report for %s: %s", sweep_dir, err)
            return
        log.info("Comparison report: %s", report)
        loggers = config.get("logger") or {}
        if "wandb" in loggers:
            from src.report import log_to_wandb

            log_to_wandb(report, project=loggers.wandb.get("project", "gexinfer"))
