from datetime import datetime

from omegaconf import OmegaConf

from src.common.resolvers import run_stamp


def test_a_run_folder_is_named_by_its_start_time_outside_torchrun(monkeypatch):
    monkeypatch.delenv("TORCHELASTIC_RUN_ID", raising=False)
    assert datetime.strptime(run_stamp("%Y-%m-%d_%H-%M-%S"), "%Y-%m-%d_%H-%M-%S")
    monkeypatch.setenv("TORCHELASTIC_RUN_ID", "none")  # torchrun on several nodes without --rdzv-id
    assert not run_stamp("%Y").startswith("torchrun")


def test_processes_of_one_torchrun_job_share_their_run_folder(monkeypatch):
    monkeypatch.setenv("TORCHELASTIC_RUN_ID", "3f2a/job 7")
    assert run_stamp("%Y") == "torchrun_3f2a_job_7"  # no path separators or spaces
    cfg = OmegaConf.create({"dir": "outputs/train/${run_stamp:%Y-%m-%d}"})
    assert cfg.dir == "outputs/train/torchrun_3f2a_job_7"
