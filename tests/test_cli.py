"""The command lines a user types, run as subprocesses (DDP re-launches need a real command line)."""

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.slow


def run(*args: str, env: dict | None = None, timeout: int = 240) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        [sys.executable, *args], cwd=REPO, capture_output=True, text=True, timeout=timeout, env=env or os.environ.copy()
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


def metrics_files(root):
    return sorted(root.rglob("metrics.json"))


def test_two_cpu_processes_with_ddp(tmp_path, data_dir):
    run("-m", "src.train", "experiment=egex_staged", "trainer=ddp_sim", "debug=fast",  # unused parameters per stage
        f"paths.output_root={tmp_path}", f"paths.data_dir={data_dir}")
    runs = list((tmp_path / "egex_staged").iterdir())
    assert len(runs) == 1  # rank 1 joined rank 0's run folder
    files = metrics_files(tmp_path)
    assert len(files) == 1  # only rank 0 writes outputs
    metrics = json.loads(files[0].read_text())["metrics"]
    assert set(metrics) == {"val/mae", "val/pearson", "test/mae", "test/pearson"}
    assert (runs[0] / "train_ddp_process_1.log").exists()


def test_devices_2_on_a_cpu_machine_trains_with_two_processes(tmp_path, data_dir):
    proc = run("-m", "src.train", "model=egex", "trainer.devices=2", "debug=fast",  # the README command
               f"paths.output_root={tmp_path}", f"paths.data_dir={data_dir}")
    assert "Initializing distributed: GLOBAL_RANK: 1, MEMBER: 2/2" in proc.stdout + proc.stderr
    assert len(metrics_files(tmp_path)) == 1


def test_multirun_has_one_sweep_folder_and_a_metrics_file_per_job(tmp_path, data_dir):
    run("-m", "src.train", "-m", "model=dgex,egex", "debug=fast",
        f"paths.output_root={tmp_path}", f"paths.data_dir={data_dir}")
    sweeps = list((tmp_path / "train" / "multirun").iterdir())
    assert len(sweeps) == 1
    models = {json.loads(f.read_text())["model"] for f in metrics_files(sweeps[0])}
    assert models == {"DGEX", "EGEX"}


def test_wandb_runs_offline_without_a_key_and_never_prompts(tmp_path, data_dir):
    env = {k: v for k, v in os.environ.items() if not k.startswith("WANDB_")}
    env["HOME"] = str(tmp_path / "home")  # no ~/.netrc credentials
    proc = run("-m", "src.train", "debug=fast", "logger=wandb",
               f"paths.output_root={tmp_path}", f"paths.data_dir={data_dir}", env=env, timeout=180)
    assert "W&B: no API key found, logging offline" in proc.stdout + proc.stderr
    run_dir = next((tmp_path / "train").iterdir())
    assert list((run_dir / "wandb").glob("offline-run-*"))


def test_eval_command_line(tmp_path, data_dir):
    run("-m", "src.train", "model=lr", "debug=fast", f"paths.output_root={tmp_path}", f"paths.data_dir={data_dir}")
    ckpt = next(tmp_path.rglob("best.ckpt"))
    proc = run("-m", "src.eval", f"ckpt_path={ckpt}", f"paths.output_root={tmp_path}")
    assert "test" in proc.stdout and len(list((tmp_path / "eval").iterdir())) == 1


def test_one_command_runs_the_whole_comparison_and_writes_the_report(tmp_path, data_dir):
    run("-m", "src.train", "experiment=compare", "debug=fast",
        f"paths.output_root={tmp_path}", f"paths.data_dir={data_dir}", timeout=400)
    (sweep,) = list((tmp_path / "compare").iterdir())
    report = (sweep / "report.md").read_text()
    for method in ("lr", "lr_l2", "lr_l1", "knn", "dgex", "egex"):
        assert f"| {method} |" in report
    assert (sweep / "synthetic_scatter_vs_lr.png").exists()
