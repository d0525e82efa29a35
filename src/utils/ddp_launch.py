"""DDP inside Hydra, including multiruns: every extra rank runs exactly its parent's job, once.

Lightning's ``ddp`` strategy starts ranks 1..N-1 by re-running the command line. Inside a Hydra
multirun that command is the whole sweep (``-m model=dgex,egex``), so rank 1 would run every job,
create a second sweep folder and, with Optuna, sample other trials. Instead, the job's configuration
is written fully resolved to ``<run>/.hydra/job_resolved.yaml`` and the extra ranks run that single
configuration in the same folder. After the job, the DDP environment Lightning leaves in this
process is removed so the next job of a sweep starts its own ranks.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch.distributed as dist
from lightning.fabric.strategies.launchers import subprocess_script as fabric_launcher
from lightning.pytorch.strategies.launchers import subprocess_script as trainer_launcher
from omegaconf import DictConfig, OmegaConf

from src.common.atomic import atomic_path
from src.utils.config import plain_config

_LAUNCHERS = (fabric_launcher, trainer_launcher)  # the Trainer's module imports the name from Fabric's
if not all(hasattr(launcher, "_hydra_subprocess_cmd") for launcher in _LAUNCHERS):
    import lightning

    raise ImportError(
        f"lightning {lightning.__version__} has no _hydra_subprocess_cmd in its subprocess launcher, which "
        "src/utils/ddp_launch.py replaces to run DDP inside Hydra multiruns; install the version pinned in "
        "pyproject.toml (pip install -e .)"
    )

JOB_CONFIG = "job_resolved"  # <run>/.hydra/job_resolved.yaml: this job, every interpolation resolved
_DDP_ENV = ("MASTER_ADDR", "MASTER_PORT", "NODE_RANK", "LOCAL_RANK", "WORLD_SIZE")


def rank_command(job_config: Path, run_dir: Path, local_rank: int) -> list[str]:
    """The command line of an extra rank: this job's resolved configuration, in this job's folder."""
    return [
        sys.executable, "-m", "src.train",
        f"--config-path={job_config.parent.resolve()}", f"--config-name={job_config.stem}",
        f"hydra.run.dir={run_dir}", "hydra.output_subdir=null", f"hydra.job.name=train_ddp_process_{local_rank}",
    ]


@contextmanager
def ranks_run_this_job(cfg: DictConfig) -> Iterator[None]:
    """Within this block, Lightning's DDP launcher starts extra ranks on this job's resolved config."""
    if os.environ.get("LOCAL_RANK", "0") != "0":  # an extra rank itself (or one started by torchrun/SLURM)
        try:
            yield
        finally:  # a process exiting with its process group alive aborts ("terminate called ...")
            if dist.is_available() and dist.is_initialized():
                dist.destroy_process_group()
        return
    run_dir = Path(cfg.paths.output_dir).resolve()
    job_config = run_dir / ".hydra" / f"{JOB_CONFIG}.yaml"
    with atomic_path(job_config) as tmp:
        tmp.write_text(OmegaConf.to_yaml(OmegaConf.create(plain_config(cfg))))
    env_before = {key: os.environ.get(key) for key in _DDP_ENV}
    launchers = _LAUNCHERS
    originals = [launcher._hydra_subprocess_cmd for launcher in launchers]
    for launcher in launchers:
        launcher._hydra_subprocess_cmd = lambda local_rank: (rank_command(job_config, run_dir, local_rank), os.getcwd())
    try:
        yield
    finally:
        for launcher, original in zip(launchers, originals):
            launcher._hydra_subprocess_cmd = original
        for key, value in env_before.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        if dist.is_available() and dist.is_initialized():
            dist.destroy_process_group()


def wait_for_ranks(trainer, timeout: float = 600.0, grace: float = 3.0) -> None:
    """Wait until the extra ranks Lightning started for this job have exited (they finish with rank 0).

    Called in a ``finally`` while an error is on its way out of this process (a bad input, a failed job
    of a sweep), the extra ranks get ``grace`` seconds to stop on their own (they usually meet the same
    error and print it), then are killed: a rank waiting in a collective for this one would never end.
    """
    failing = sys.exc_info()[1] is not None
    for proc in getattr(getattr(trainer.strategy, "launcher", None), "procs", []):
        try:
            proc.wait(timeout=grace if failing else timeout)
        except subprocess.TimeoutExpired:
            if not failing:
                raise
            proc.kill()
            proc.wait()
