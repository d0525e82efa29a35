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


def test_a_failed_job_is_listed_last_marked_as_failed_with_its_error_in_one_line(tmp_path):
    RunFolder(tmp_path / "0").write_metrics({"val/mae": 0.5})
    RunFolder(tmp_path / "1").write_failure("data.batch_size=0: expected a positive integer\n(the global batch)")
    for job, batch in (("0", 50), ("1", 0)):
        (tmp_path / job / ".hydra").mkdir(parents=True, exist_ok=True)
        (tmp_path / job / ".hydra" / "overrides.yaml").write_text(f"- data.batch_size={batch}\n")
    jobs = collect_jobs(tmp_path)
    assert [(j["job"], j.get("failed")) for j in jobs] == [
        ("0", None), ("1", "data.batch_size=0: expected a positive integer (the global batch)")]
    text = write_summary(tmp_path).read_text()
    assert text.splitlines()[:6] == [
        "# Sweep summary: 2 jobs (1 failed), best val/mae first",
        "",
        "| job | overrides | val/mae |",
        "|---|---|---|",
        "| 0 | data.batch_size=50 | 0.5000 |",
        "| 1 (failed) | data.batch_size=0 |  |",
    ]
    assert text.rstrip().endswith(
        "## Failed jobs\n\n- job 1 (data.batch_size=0): data.batch_size=0: expected a positive integer (the global batch)")
    assert json.loads((tmp_path / "summary.json").read_text())["jobs"][1]["failed"].startswith("data.batch_size=0")


def test_a_sweep_whose_jobs_all_failed_still_gets_its_summary(tmp_path):
    RunFolder(tmp_path / "0").write_failure("model.dropout=abc: expected a fraction in [0, 1)")
    assert "| 0 (failed) |" in write_summary(tmp_path).read_text()
