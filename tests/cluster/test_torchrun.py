"""torchrun, as on a cluster without SLURM: two CPU processes started by torchrun, one run folder, and the
validation MAE of one process (the README's command, on one node, without hydra.run.dir)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.cluster.conftest import REFERENCE, val_mae
from tests.conftest import REPO

pytestmark = pytest.mark.slow


def torchrun() -> list[str]:
    here = Path(sys.executable).with_name("torchrun")
    return [str(here)] if here.exists() else [sys.executable, "-m", "torch.distributed.run"]


def test_torchrun_with_two_cpu_processes_writes_one_run_and_matches_one_process(tmp_path, data_dir, single_process_val_mae):
    """The two processes train from one preprocessed store on disk (``data.storage=disk``), written by the first
    and opened by the other, and still get the validation MAE of one process holding the data in memory."""
    single_process_val_mae  # the one-process run starts now, in the background
    proc = subprocess.run(
        [*torchrun(), "--standalone", "--nproc-per-node=2", "-m", "src.train", "trainer=ddp", "trainer.devices=2",
         *REFERENCE, "data.storage=disk", f"paths.output_root={tmp_path}", f"paths.data_dir={data_dir}"],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "Initializing distributed: GLOBAL_RANK: 1, MEMBER: 2/2" in proc.stdout + proc.stderr
    (run_dir,) = (tmp_path / "train").iterdir()  # one run folder for both processes, named by torchrun's id
    assert run_dir.name.startswith("torchrun_")
    (metrics,) = tmp_path.rglob("metrics.json")  # written by rank 0 only
    assert val_mae(metrics) == pytest.approx(single_process_val_mae(), rel=1e-4)
    log = (run_dir / "train.log").read_text()
    assert "held on disk, read by rows (data.storage=disk)" in log
    assert "Wrote the preprocessed splits" in log or "Using the preprocessed splits" in log


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_torchrun_nodes_share_one_run_folder_and_match_one_process(tmp_path, data_dir, single_process_val_mae):
    """Two nodes, as on a cluster without SLURM: two torchrun agents (``--nnodes=2``, one CPU process each) meet
    at a c10d rendezvous on 127.0.0.1; the processes are global ranks 0 and 1 of one job, write one run folder
    (named by the rendezvous id, on the file system the two "nodes" share here) and get the validation MAE of
    one process."""
    single_process_val_mae  # the one-process run starts now, in the background
    port, rdzv = free_port(), "two_nodes_test"
    agents = [
        subprocess.Popen(
            [*torchrun(), "--nnodes=2", "--nproc-per-node=1", f"--node-rank={node}", "--rdzv-backend=c10d",
             f"--rdzv-endpoint=127.0.0.1:{port}", f"--rdzv-id={rdzv}", "-m", "src.train", "trainer=ddp",
             "trainer.devices=1", "trainer.num_nodes=2", *REFERENCE, f"paths.output_root={tmp_path}",
             f"paths.data_dir={data_dir}"],
            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for node in (0, 1)
    ]
    outputs = [agent.communicate(timeout=300)[0] for agent in agents]
    assert [a.returncode for a in agents] == [0, 0], "\n".join(o[-3000:] for o in outputs)
    assert "GLOBAL_RANK: 0, MEMBER: 1/2" in outputs[0] and "GLOBAL_RANK: 1, MEMBER: 2/2" in outputs[1]
    (run_dir,) = (tmp_path / "train").iterdir()
    assert run_dir.name == f"torchrun_{rdzv}"
    (metrics,) = tmp_path.rglob("metrics.json")  # global rank 0 only
    assert val_mae(metrics) == pytest.approx(single_process_val_mae(), rel=1e-4)
