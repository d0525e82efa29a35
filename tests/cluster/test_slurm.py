"""`hydra/launcher=slurm` on a real one-node SLURM cluster (scripts/slurm_local.sh): CPU tasks only.

A job cancelled mid-training (its sweep stops) and resumed, a sweep with failing jobs, a
two-task DDP job and a job requeued before its time limit. Each submits through submitit exactly as
on a cluster; the cluster has no accounting (no slurmdbd), like many small ones, so these also check
that a sweep's terminal stays free of submitit's sacct errors. The tests at the end need no cluster:
the callback of hydra/launcher=slurm (src/utils/slurm.py) on its own.

The time-limit job must run about a minute before SLURM signals it, mostly waiting (its first run
sleeps after each step), so it is started with the first test and checked by the last one; the other
jobs run meanwhile on the node's other CPU.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from hydra.core.utils import JobReturn, JobStatus
from omegaconf import OmegaConf

from src.utils import slurm as slurm_utils
from tests.cluster.conftest import REFERENCE, SLOW, train, val_mae
from tests.conftest import REPO

# One CPU task per job (GPUs: none), small memory: what the one-node cluster has.
ON_SLURM = ["hydra/launcher=slurm", "hydra.launcher.partition=debug", "hydra.launcher.gpus_per_node=0",
            "hydra.launcher.cpus_per_task=1", "hydra.launcher.mem_gb=2"]


def sweep(*args: str, env: dict, root: Path, data_dir: Path, check: bool = True, timeout: float = 300):
    """Run ``python -m src.train -m ON_SLURM ARGS`` into ``root``; returns (process, sweep folder)."""
    proc = train("-m", *ON_SLURM, *args, f"paths.output_root={root}", f"paths.data_dir={data_dir}",
                 env=env, check=check, timeout=timeout)
    (folder,) = list((root / "train" / "multirun").iterdir())
    return proc, folder


def quiet(output: str) -> bool:
    """No sacct noise: neither submitit's 'Bypassing sacct error' nor sacct's own complaint."""
    return "Bypassing sacct error" not in output and "accounting storage is disabled" not in output


def squeue(env: dict, job: str) -> str:
    """``STATE REASON`` of a job, '' once SLURM no longer lists it."""
    return subprocess.run(["squeue", "-h", "-j", job, "-o", "%T %r"], env=env, capture_output=True, text=True).stdout.strip()


def job_ids(sweep_dir: Path) -> list[str]:
    """SLURM ids of a sweep's jobs (``<id>``, or ``<array>_<task>``), from submitit's folders."""
    return sorted(p.parent.name for p in (sweep_dir / ".submitit").glob("*/*_submitted.pkl"))


def cancel(env: dict, root: Path) -> None:
    """Cancel whatever SLURM still runs of the sweeps below ``root`` (a failed test leaves no job behind)."""
    for sweep_dir in root.glob("train/multirun/*"):
        for job in job_ids(sweep_dir):
            if squeue(env, job):
                subprocess.run(["scancel", job], env=env)


def wait_until(condition, timeout: float, what: str, poll: float = 0.5):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(poll)
    pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}")


@pytest.fixture(scope="module")
def time_limit_sweep(slurm, tmp_path_factory, data_dir):
    """A one-job sweep with ``timeout_min=1`` whose first run would take minutes (1 s per step until it
    resumes), started in the background. SLURM holds a requeued job for two minutes (BeginTime): a
    thread lets it start at once (``scontrol update StartTime=now``) and records that it was requeued."""
    root = tmp_path_factory.mktemp("time_limit")
    args = ["model=dgex", "debug=fast", "logger=none", SLOW, "+callbacks.slow.seconds=1",
            "hydra.launcher.timeout_min=1", "hydra.launcher.signal_delay_s=1"]
    log = open(root / "sweep.log", "w")
    driver = subprocess.Popen([sys.executable, "-m", "src.train", "-m", *ON_SLURM, *args, f"paths.output_root={root}",
                               f"paths.data_dir={data_dir}"], cwd=REPO, env=slurm, stdout=log, stderr=subprocess.STDOUT)
    run = SimpleNamespace(driver=driver, root=root, log=root / "sweep.log", requeued=[])

    def release_requeued_job():
        while driver.poll() is None:
            jobs = job_ids(next(root.glob("train/multirun/*"), root))
            if jobs and squeue(slurm, jobs[0]) == "PENDING BeginTime":
                run.requeued.append(jobs[0])
                subprocess.run(["scontrol", "update", f"JobId={jobs[0]}", "StartTime=now"], env=slurm)
            time.sleep(0.5)

    threading.Thread(target=release_requeued_job, daemon=True).start()
    yield run
    if driver.poll() is None:
        driver.kill()
        driver.wait()
    cancel(slurm, root)
    log.close()


@pytest.mark.cluster
@pytest.mark.slow
def test_a_job_cancelled_mid_training_ends_the_sweep_and_resumes_from_last_in_its_folder(
        slurm, tmp_path, data_dir, time_limit_sweep):
    time_limit_sweep  # started now: it runs while this test and the next ones do
    args = ["model=dgex", "debug=fast", "trainer.max_epochs=2", "logger=none", "keep_last_checkpoint=true", SLOW,
            "+callbacks.slow.seconds=0.1", f"paths.output_root={tmp_path}", f"paths.data_dir={data_dir}"]
    log = tmp_path / "sweep.log"
    with open(log, "w") as out:
        driver = subprocess.Popen([sys.executable, "-m", "src.train", "-m", *ON_SLURM, *args], cwd=REPO, env=slurm,
                                  stdout=out, stderr=subprocess.STDOUT)
    try:
        last = wait_until(lambda: next(tmp_path.glob("train/multirun/*/0/checkpoints/last.ckpt"), None), 180,
                          "the first epoch's last.ckpt")
        folder = last.parent.parent
        (job,) = job_ids(folder.parent)
        subprocess.run(["scancel", job], env=slurm, check=True)
        wait_until(lambda: not squeue(slurm, job), 60, f"job {job} to end")
        assert not (folder / "metrics.json").exists()  # cancelled mid-training
        # Resume on the cluster, in the job's folder, with its overrides (srun: a SLURM job of one step),
        # while the sweep learns from squeue that its job ended without a result and stops.
        resume = subprocess.Popen(
            ["srun", "--partition=debug", "--cpus-per-task=1", "--mem=2G", sys.executable, "-m", "src.train", *args,
             f"hydra.run.dir={folder}", "ckpt_path=last"],
            cwd=REPO, env=slurm, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        output = resume.communicate(timeout=240)[0]
        assert driver.wait(timeout=120) == 1
        assert "has not produced any output (state: CANCELLED)" in log.read_text(), log.read_text()[-3000:]
    finally:
        if driver.poll() is None:
            driver.kill()
            driver.wait()
        cancel(slurm, tmp_path)
    assert resume.returncode == 0, output[-3000:]
    assert f"Restoring states from the checkpoint path at {folder}/checkpoints/last.ckpt" in output
    assert (folder / "metrics.json").exists() and (folder / "checkpoints" / "last.ckpt").exists()


@pytest.mark.cluster
@pytest.mark.slow
def test_a_sweep_runs_each_job_as_a_slurm_job_and_a_failing_job_reaches_the_summary(slurm, tmp_path, data_dir):
    """Three jobs (one SLURM array): two train, one fails on a bad value; the sweep goes on, then exits 1."""
    proc, folder = sweep("model=lr_l2", "data.calibration=0.1,0.2,-1", "debug=fast", "logger=none",
                         env=slurm, root=tmp_path, data_dir=data_dir, check=False)
    assert proc.returncode == 1, proc.stdout[-2000:] + proc.stderr[-2000:]
    metrics = sorted(folder.glob("*/metrics.json"))
    assert [(m.parent.name, json.loads(m.read_text())["method"]) for m in metrics] == [("0", "lr_l2"), ("1", "lr_l2")]
    summary = (folder / "summary.md").read_text()
    assert "3 jobs (1 failed)" in summary and "data.calibration=0.2" in summary and "2 (failed)" in summary
    assert "data.calibration=-1: expected a fraction in [0, 1)" in summary  # the job's error, from its folder
    assert len(job_ids(folder)) == 3  # three SLURM jobs, logs in <sweep>/.submitit/
    assert quiet(proc.stdout + proc.stderr), proc.stdout[-2000:] + proc.stderr[-2000:]


@pytest.mark.cluster
@pytest.mark.slow
def test_two_slurm_tasks_train_with_ddp_and_match_one_process(slurm, tmp_path, data_dir, single_process_val_mae):
    single_process_val_mae  # the one-process run starts now, in the background
    proc, folder = sweep("trainer=ddp_sim", "trainer.devices=2", *REFERENCE, env=slurm, root=tmp_path, data_dir=data_dir)
    (metrics,) = folder.rglob("metrics.json")  # rank 1 joined rank 0's job folder and wrote nothing
    (job,) = job_ids(folder)
    logs = (folder / ".submitit" / job / f"{job}_1_log.err").read_text()  # SLURM's task 1
    assert "Initializing distributed: GLOBAL_RANK: 1, MEMBER: 2/2" in logs
    assert val_mae(metrics) == pytest.approx(single_process_val_mae(), rel=1e-4)


@pytest.mark.cluster
@pytest.mark.slow
def test_a_job_reaching_its_time_limit_saves_requeues_and_resumes(slurm, time_limit_sweep):
    """SLURM signals USR1 up to a minute before the limit (here 29-59 s into the job), Lightning saves
    hpc_ckpt_1.ckpt and requeues the job, which resumes from it in its folder and finishes."""
    run = time_limit_sweep
    try:
        run.driver.wait(timeout=300)
    except subprocess.TimeoutExpired:
        pytest.fail(f"the sweep did not finish:\n{run.log.read_text()[-3000:]}")
    output = run.log.read_text()
    assert run.driver.returncode == 0, output[-3000:]
    (folder,) = list((run.root / "train" / "multirun").iterdir())
    (job,) = job_ids(folder)
    logs = "".join(p.read_text() for p in (folder / ".submitit" / job).glob("*_log.*"))
    assert run.requeued and "Handling auto-requeue signal: 10" in logs and f"Requeued SLURM job: {job}" in logs
    assert f"Restored all states from the checkpoint at {folder}/0/hpc_ckpt_1.ckpt" in logs
    assert (folder / "0" / "metrics.json").exists() and "1 jobs" in (folder / "summary.md").read_text()
    assert not list((folder / "0").glob("hpc_ckpt_*.ckpt"))  # removed once the job ended normally
    assert quiet(output), output[-2000:]


# -- without a cluster: the callback of hydra/launcher=slurm (src/utils/slurm.py) ----------------------

def test_without_accounting_the_sweep_asks_squeue_and_sees_jobs_that_ended(monkeypatch):
    from submitit.slurm.slurm import SlurmJob

    monkeypatch.setattr(SlurmJob, "watcher", SlurmJob.watcher)  # restored after the test
    monkeypatch.setattr(slurm_utils, "accounting_storage", lambda: "accounting_storage/none")
    assert slurm_utils.quiet_sacct() == "no accounting"
    watcher = SlurmJob.watcher
    for job in ("7_0", "7_1", "7_2", "8"):
        watcher.register_job(job)
    assert watcher._make_command()[0] == "squeue"  # never sacct
    watcher._info_dict.update(watcher.read_info(b"7_0|RUNNING|vm\n7_1|CANCELLED|vm\n7_2|PENDING|\n"))
    states = {job: watcher.get_state(job, mode="cache") for job in ("7_0", "7_1", "7_2", "8")}
    assert states == {"7_0": "RUNNING", "7_1": "CANCELLED", "7_2": "PENDING", "8": "ENDED"}  # 8: no longer listed
    assert [watcher.is_done(job, mode="cache") for job in states] == [False, True, False, True]


def test_with_accounting_a_failing_sacct_is_reported_once(monkeypatch, caplog):
    import logging

    logger = logging.getLogger("submitit")
    monkeypatch.setattr(logger, "filters", [])  # a fresh filter for this test, none left after it
    monkeypatch.setattr(slurm_utils, "accounting_storage", lambda: "accounting_storage/slurmdbd")
    assert slurm_utils.quiet_sacct() == "filtered"
    with caplog.at_level(logging.WARNING, logger="submitit"):
        for call in (1, 2, 3):
            logger.warning(f"Call #{call} - Bypassing sacct error Command 'sacct' returned 1., status may be inaccurate.")
        logger.warning("Bypassing signal SIGTERM")  # other warnings pass
    messages = [r.getMessage() for r in caplog.records]
    assert len([m for m in messages if "Bypassing sacct error" in m]) == 1 and "Bypassing signal SIGTERM" in messages
    assert "repeats not shown" in messages[0]


def test_a_job_that_ended_normally_loses_its_requeue_checkpoints(tmp_path):
    (tmp_path / "hpc_ckpt_1.ckpt").write_text("state")
    config = OmegaConf.create({"paths": {"output_dir": str(tmp_path)}, "keep_last_checkpoint": False})
    callback = slurm_utils.SlurmSweep()
    callback.on_job_end(config, JobReturn(status=JobStatus.COMPLETED))
    assert (tmp_path / "hpc_ckpt_1.ckpt").exists()  # no metrics.json: not finished, keep the resume state
    (tmp_path / "metrics.json").write_text("{}")
    callback.on_job_end(OmegaConf.merge(config, {"keep_last_checkpoint": True}), JobReturn(status=JobStatus.COMPLETED))
    assert (tmp_path / "hpc_ckpt_1.ckpt").exists()  # kept on request
    callback.on_job_end(config, JobReturn(status=JobStatus.COMPLETED))
    assert not (tmp_path / "hpc_ckpt_1.ckpt").exists()
