"""The report's command line, on run folders written by the real entry points and by hand."""

import pytest

from src.report import main, write_report
from tests.reporting import fake_run


def test_report_from_real_runs(tmp_path, data_dir):
    from src.train import train
    from tests.conftest import compose_config

    for model in ("lr", "dgex"):
        train(compose_config("train", tmp_path / "runs" / model, [f"model={model}", "debug=fast"], data_dir))
    report = write_report([tmp_path / "runs"], tmp_path / "report")
    assert "| dgex |" in report.read_text() and "| lr |" in report.read_text()


def test_the_command_line_prints_the_report(tmp_path, capsys):
    for name, maes in (("lr", [0.5, 0.6]), ("egex", [0.4, 0.5])):
        fake_run(tmp_path / name, name, maes)
    main([str(tmp_path), "--out", str(tmp_path / "out")])
    out = capsys.readouterr().out
    assert "| egex |" in out and f"report: {tmp_path / 'out' / 'report.md'}" in out


def test_missing_folders_fail_with_a_clear_message(tmp_path, capsys):
    with pytest.raises(SystemExit, match="no run folders"):
        main([str(tmp_path)])


def test_report_goes_to_wandb_offline_without_a_key(tmp_path, monkeypatch):
    for name, maes in (("lr", [0.5, 0.6]), ("egex", [0.4, 0.5])):
        fake_run(tmp_path / name, name, maes)
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    main([str(tmp_path), "--out", str(tmp_path / "out"), "--wandb"])
    assert list((tmp_path / "out" / "wandb").glob("offline-run-*"))
