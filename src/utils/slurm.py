"""SLURM details of ``hydra/launcher=slurm`` (conf/hydra/launcher/slurm.yaml): a Hydra callback.

- **Clusters without accounting** (``AccountingStorageType=accounting_storage/none``): submitit asks
  ``sacct`` for the jobs' states every few seconds while a sweep waits (``SlurmJob.watcher``, in
  ``submitit/slurm/slurm.py``), and there every call fails, printing ``Slurm accounting storage is
  disabled`` and submitit's ``Bypassing sacct error ..., status may be inaccurate`` (three times: two
  submitit handlers and Hydra's). The sweep then never learns that a job ended without writing its
  result (cancelled, killed, a task that crashed) and waits for it forever. Here the sweep asks
  ``squeue`` instead, which works without accounting: quiet, and a job that slurmctld no longer lists
  has ended, so such a job ends the wait with submitit's error and the job's stderr, as with
  accounting. Where accounting is configured but ``sacct`` fails (``slurmdbd`` down), submitit's first
  warning is shown, its repeats are not.
- **Requeue before the time limit**: the launcher asks SLURM for ``SIGUSR1`` ``signal_delay_s``
  before the time limit (``--signal=USR1@...``, conf/hydra/launcher/slurm.yaml), Lightning's own
  signal (its ``SLURMEnvironment``, auto-requeue on by default), on which Lightning saves ``hpc_ckpt_<n>.ckpt`` in the job's folder and runs ``scontrol
  requeue``; the requeued job runs the same sweep job in the same folder and Lightning resumes from
  that checkpoint. When the job then ends normally, this callback removes ``hpc_ckpt_*.ckpt`` (like
  ``last.ckpt``; both are kept with ``keep_last_checkpoint=true``).
"""

from __future__ import annotations

import logging
import os
import subprocess
from pathlib import Path
from typing import Any

from hydra.core.utils import JobReturn, JobStatus
from hydra.experimental.callback import Callback
from omegaconf import DictConfig
from submitit.slurm.slurm import SlurmInfoWatcher, SlurmJob

from src.reporting.run_folder import RunFolder

log = logging.getLogger(__name__)

NO_ACCOUNTING = "accounting_storage/none"
_SACCT_ERROR = "Bypassing sacct error"


def accounting_storage() -> str | None:
    """The cluster's ``AccountingStorageType`` (``scontrol show config``), None if SLURM cannot say."""
    try:
        out = subprocess.run(["scontrol", "show", "config"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    for line in out.splitlines():
        key, _, value = line.partition("=")
        if key.strip() == "AccountingStorageType":
            return value.strip()
    return None


class _RepeatedSacctErrors(logging.Filter):
    """Let submitit's first "Bypassing sacct error" warning through, drop its repeats."""

    def __init__(self) -> None:
        super().__init__()
        self.seen = 0

    def filter(self, record: logging.LogRecord) -> bool:
        if _SACCT_ERROR not in str(record.msg):
            return True
        self.seen += 1
        if self.seen == 1:
            record.msg = f"{record.msg} (repeats not shown)"
        return self.seen == 1


def quiet_sacct() -> str:
    """Keep submitit's state polling off the terminal (see the module docstring); idempotent, for this
    process. Returns what was done: ``"no accounting"`` (squeue polled) or ``"filtered"``."""
    logger = logging.getLogger("submitit")
    if not any(isinstance(f, _RepeatedSacctErrors) for f in logger.filters):
        logger.addFilter(_RepeatedSacctErrors())
    if accounting_storage() != NO_ACCOUNTING:
        return "filtered"
    if not isinstance(SlurmJob.watcher, _SqueueWatcher):
        SlurmJob.watcher = _SqueueWatcher(delay_s=SlurmJob.watcher._delay_s)
    return "no accounting"


class _SqueueWatcher(SlurmInfoWatcher):
    """submitit's job-state watcher, with ``squeue`` instead of ``sacct`` (a cluster without accounting).
    slurmctld lists a job while it is pending, running or requeued, and with its final state for
    ``MinJobAge`` seconds after it ended; a registered job it no longer lists has ended (``ENDED``)."""

    ENDED = "ENDED"

    def _make_command(self) -> list[str] | None:
        if not self._registered - self._finished:
            return None
        return ["squeue", "--noheader", "--array", "--states=all", "--format=%i|%T|%N", f"--user={os.getuid()}"]

    def read_info(self, string: bytes | str) -> dict[str, dict[str, str]]:
        text = string.decode() if isinstance(string, bytes) else string
        info = {}
        for line in text.splitlines():
            job_id, _, rest = line.strip().partition("|")
            state, _, nodes = rest.partition("|")
            if job_id:
                info[job_id] = {"JobID": job_id, "State": state.split()[0] if state else "UNKNOWN", "NodeList": nodes}
        for job_id in self._registered - self._finished:
            info.setdefault(job_id, {"JobID": job_id, "State": self.ENDED, "NodeList": ""})
        return info


def remove_hpc_checkpoints(run_dir: Path) -> list[Path]:
    """Remove Lightning's requeue checkpoints (``hpc_ckpt_<n>.ckpt``) from a finished run's folder."""
    removed = []
    for path in sorted(run_dir.glob("hpc_ckpt_*.ckpt")):
        path.unlink(missing_ok=True)
        removed.append(path)
    return removed


class SlurmSweep(Callback):
    """Hydra callback of ``hydra/launcher=slurm``: quiet ``sacct`` polling in the sweep's process; in each
    job that ended normally, remove the requeue checkpoints it resumed from."""

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        if quiet_sacct() == "no accounting":
            log.info("SLURM accounting is off (%s): job states come from squeue, not sacct", NO_ACCOUNTING)

    def on_job_end(self, config: DictConfig, job_return: JobReturn, **kwargs: Any) -> None:
        if job_return.status != JobStatus.COMPLETED or config.get("keep_last_checkpoint", False):
            return
        run = RunFolder(Path(config.paths.output_dir))
        if run.has_metrics() and run.read_failure() is None:
            for path in remove_hpc_checkpoints(run.path):
                log.info("Removed %s (requeue state of a finished run; keep it with keep_last_checkpoint=true)", path)
