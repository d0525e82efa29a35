"""The one-node SLURM cluster of scripts/slurm_local.sh, started once for the tests marked ``cluster``,
and what the cluster and torchrun tests share.

The cluster tests run where the cluster can be started (root with apt-get, or slurm-wlm and munge
installed); elsewhere they are skipped with the reason in one line of pytest's summary.
``GEXINFER_CLUSTER_TESTS=0`` skips them too (no install, no daemons), as does ``-m "not cluster"``.
Several test sessions may share the cluster: the last one to end stops it, if a test session started it.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from lightning.pytorch.callbacks import Callback

from tests.conftest import REPO

SCRIPT = REPO / "scripts" / "slurm_local.sh"
CLUSTER_DIR = Path(os.environ.get("GEXINFER_SLURM_DIR", "/tmp/gexinfer-slurm"))


class SlowUntilResumed(Callback):
    """Sleep ``seconds`` after each training step of a run that did not resume from a checkpoint: a job
    that would run past its time limit, which trains at full speed once requeued and resumed."""

    def __init__(self, seconds: float = 1.0):
        self.seconds = seconds

    def on_train_batch_end(self, trainer, *args, **kwargs) -> None:
        if trainer.ckpt_path is None:
            time.sleep(self.seconds)


SLOW = "+callbacks.slow._target_=tests.cluster.conftest.SlowUntilResumed"


def train(*args: str, env: dict | None = None, timeout: float = 300, check: bool = True) -> subprocess.CompletedProcess:
    """``python -m src.train ARGS`` from the repository (the jobs' working directory too)."""
    proc = subprocess.run([sys.executable, "-m", "src.train", *args], cwd=REPO, env=env or os.environ.copy(),
                          capture_output=True, text=True, timeout=timeout)
    if check:
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


def val_mae(metrics_file: Path) -> float:
    return json.loads(metrics_file.read_text())["metrics"]["val/mae"]


# -- the cluster ----------------------------------------------------------------------------------------

@contextlib.contextmanager
def _locked():
    CLUSTER_DIR.mkdir(parents=True, exist_ok=True)
    with open(CLUSTER_DIR / "sessions.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _sessions() -> Path:
    path = CLUSTER_DIR / "sessions"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _live_sessions() -> list[Path]:
    live = []
    for marker in _sessions().iterdir():
        try:
            os.kill(int(marker.name), 0)
            live.append(marker)
        except (ValueError, ProcessLookupError):
            marker.unlink(missing_ok=True)
        except PermissionError:
            live.append(marker)
    return live


SKIPPED = "cluster tests skipped"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Report every cluster test skipped for the same reason at one place (this fixture), so that pytest's
    summary says it in one line: ``SKIPPED [5] tests/cluster/conftest.py:NN: cluster tests skipped: <why>``."""
    outcome = yield
    report = outcome.get_result()
    if report.skipped and isinstance(report.longrepr, tuple) and SKIPPED in str(report.longrepr[2]):
        report.longrepr = (str(Path(__file__).relative_to(REPO)), cluster.__code__.co_firstlineno, report.longrepr[2])


def _script(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(SCRIPT), *args], capture_output=True, text=True, timeout=timeout)


def cluster():
    """The environment (``SLURM_CONF``) of a running one-node cluster, or a skip that says why not."""
    if os.environ.get("GEXINFER_CLUSTER_TESTS", "1") == "0":
        pytest.skip(f"{SKIPPED}: GEXINFER_CLUSTER_TESTS=0")
    if not sys.platform.startswith("linux"):
        pytest.skip(f"{SKIPPED}: scripts/slurm_local.sh needs Linux, not {sys.platform}")
    with _locked():
        started = _script("status").returncode == 3  # not running: this session starts it
        proc = _script("start", timeout=900)  # installs slurm-wlm and munge first where missing (about a minute)
        if proc.returncode == 2:
            reason = (proc.stderr.strip().splitlines() or ["cannot start"])[-1].removeprefix("slurm_local: ")
            pytest.skip(f"{SKIPPED}: {reason}")
        assert proc.returncode == 0, f"scripts/slurm_local.sh start failed:\n{proc.stderr[-4000:]}"
        if started:
            (CLUSTER_DIR / "started_by_tests").touch()
        (_sessions() / str(os.getpid())).touch()
    env = {**os.environ, "SLURM_CONF": str(CLUSTER_DIR / "slurm.conf")}
    yield env
    with _locked():
        (_sessions() / str(os.getpid())).unlink(missing_ok=True)
        if not _live_sessions() and (CLUSTER_DIR / "started_by_tests").exists():
            _script("stop")
            (CLUSTER_DIR / "started_by_tests").unlink(missing_ok=True)


slurm = pytest.fixture(cluster, scope="session", name="slurm")


# -- the single-process run the DDP runs are compared with ----------------------------------------------

REFERENCE = ["model=egex", "debug=fast", "logger=none"]  # no dropout: 1 and 2 processes give the same MAE


@pytest.fixture(scope="session")
def single_process_val_mae(tmp_path_factory, data_dir):
    """``wait() -> val/mae`` of ``python -m src.train model=egex debug=fast`` on one process, started in the
    background when first asked for, so it runs while a test's DDP run does."""
    out = tmp_path_factory.mktemp("single_process")
    proc = subprocess.Popen([sys.executable, "-m", "src.train", *REFERENCE, f"paths.output_root={out}",
                             f"paths.data_dir={data_dir}"], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    result = {}

    def wait() -> float:
        if "mae" not in result:
            output, _ = proc.communicate(timeout=300)
            assert proc.returncode == 0, output[-3000:]
            (metrics,) = out.rglob("metrics.json")
            result["mae"] = val_mae(metrics)
        return result["mae"]

    yield wait
    if proc.poll() is None:
        proc.kill()
        proc.wait()
