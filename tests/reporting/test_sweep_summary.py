"""The sweep summary: one row per finished job, best first."""

import json

import pytest

from src.reporting.run_folder import RunFolder
from src.reporting.sweep_summary import collect_jobs, write_summary


def test_summary_sorts_jobs_by_the_metric(tmp_path):
    for job, mae in (("0", 0.5), ("1", 0.25), ("2", None)):
        RunFolder(tmp_path / job).write_metrics({"val/mae": float("nan") if mae is None else mae, "test/mae": 0.3})
        (tmp_path / job / ".hydra").mkdir()
        (tmp_path / job / ".hydra" / "overrides.yaml").write_text(f"- model=egex\n- seed={job}\n")
    assert [j["job"] for j in collect_jobs(tmp_path)] == ["0", "1", "2"]
    summary = write_summary(tmp_path)
    assert summary.read_text().splitlines()[:7] == [
        "# Sweep summary: 3 jobs, best val/mae first",
        "",
        "| job | overrides | test/mae | val/mae |",
        "|---|---|---|---|",
        "| 1 | model=egex seed=1 | 0.3000 | 0.2500 |",
        "| 0 | model=egex seed=0 | 0.3000 | 0.5000 |",
        "| 2 | model=egex seed=2 | 0.3000 |  |",
    ]
    # Three seeds of one configuration: one row of mean ± sd over them.
    assert "| model=egex | 3 | 0.3000 ± 0.0000 | 0.3750 ± 0.1768 |" in summary.read_text()
    saved = json.loads((tmp_path / "summary.json").read_text())
    assert saved["sorted_by"] == "val/mae" and saved["jobs"][0] == {
        "job": "1", "overrides": ["model=egex", "seed=1"], "metrics": {"val/mae": 0.25, "test/mae": 0.3}}


def test_no_finished_jobs(tmp_path):
    with pytest.raises(FileNotFoundError, match="no finished jobs"):
        write_summary(tmp_path)
