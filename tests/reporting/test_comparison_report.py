"""The report: Markdown tables and figures, from run folders written by hand in the published format."""

from src.reporting.comparison_report import write_report
from tests.reporting import fake_run


def test_report_writes_markdown_and_figures(tmp_path):
    for name, maes in (("lr", [0.5, 0.6]), ("egex", [0.4, 0.5])):
        fake_run(tmp_path / name, name, maes)
    fake_run(tmp_path / "egex_on_1000g", "egex", [0.7, 0.8], data="1000g", floor=None)
    report = write_report([tmp_path], tmp_path / "out")
    text = report.read_text()
    assert "## Test data: synthetic" in text and "## Test data: 1000g" in text
    assert "Noise floor (MAE of the true function): 0.2000" in text
    assert "![scatter_vs_lr](synthetic_scatter_vs_lr.png)" in text
    assert (tmp_path / "out" / "synthetic_scatter_vs_lr.png").stat().st_size > 1000
    assert (tmp_path / "out" / "synthetic_mae_distributions.png").stat().st_size > 1000


def test_the_runs_are_listed_in_job_order(tmp_path):
    for job in (2, 10, 1):
        fake_run(tmp_path / "sweep" / str(job), "lr", [0.5, 0.6])
    text = write_report([tmp_path / "sweep"], tmp_path / "out").read_text()
    listed = [line.split("`")[1].rsplit("/", 1)[1] for line in text.splitlines() if line.startswith("- lr")]
    assert listed == ["1", "2", "10"]
