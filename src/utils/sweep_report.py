"""A Hydra callback that writes the comparison report into a sweep's folder when the sweep ends."""

from __future__ import annotations

import logging
from pathlib import Path

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

log = logging.getLogger(__name__)


class SweepReport(Callback):
    """After a multirun, write ``report.md`` and figures for all its jobs into the sweep folder, and
    log them to W&B too when W&B is the logger."""

    def on_multirun_end(self, config: DictConfig, **kwargs) -> None:
        from src.report import write_report

        sweep_dir = Path(config.hydra.sweep.dir)
        try:
            report = write_report([sweep_dir], sweep_dir)
        except (FileNotFoundError, ValueError) as err:  # e.g. every job failed
            log.error("No report for %s: %s", sweep_dir, err)
            return
        log.info("Comparison report: %s", report)
        loggers = config.get("logger") or {}
        if "wandb" in loggers:
            from src.report import log_to_wandb

            log_to_wandb(report, project=loggers.wandb.get("project", "gexinfer"))
