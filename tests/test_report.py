"""The comparison report, from run folders written by the real entry points and by hand."""

import json

import numpy as np
import pytest

from src.comparison import compare, find_runs
from src.report import main, write_report


def _fake_run(folder, method, maes, data="synthetic", floor=0.2):
    folder.mkdir(parents=True)
    (folder / "metrics.json").write_text(json.dumps(
        {"metrics": {"test/mae": float(np.mean(maes))}, "method": method, "data": data, "noise_floor_mae": floor}))
    rows = ["gene\tmae\tpearson"] + [f"g{i}\t{m}\t0.5" for i, m in enumerate(maes)]
    (folder / "per_gene_test.tsv").write_text("\n".join(rows) + "\n")


def test_table_numbers_match_a_direct_computation(tmp_path):
    lr, dgex, egex = np.array([0.5, 0.6, 0.7, 0.8]), np.array([0.4, 0.65, 0.6, 0.7]), np.array([0.3, 0.5, 0.5, 0.9])
    for name, maes in (("lr", lr), ("dgex", dgex), ("egex", egex)):
        _fake_run(tmp_path / "sweep" / name, name, maes)
    (table,) = compare(find_runs([tmp_path / "sweep"]))
    rows = {r["method"]: r for r in table.rows}
    assert [r["method"] for r in table.rows] == ["egex", "dgex", "lr"]  # best first
    assert rows["egex"]["mae"] == pytest.approx(egex.mean()) and rows["egex"]["mae_sd"] == pytest.approx(egex.std())
    assert rows["egex"]["vs_lr"] == pytest.approx(100 * (lr.mean() - egex.mean()) / lr.mean())
    assert rows["egex"]["vs_dgex"] == pytest.approx(100 * (dgex.mean() - egex.mean()) / dgex.mean())
    assert rows["dgex"]["beats_lr"] == pytest.approx(75.0) and rows["egex"]["beats_lr"] == pytest.approx(75.0)
    assert rows["lr"]["vs_lr"] is None
    assert rows["egex"]["vs_floor"] == pytest.approx(egex.mean() / 0.2)


def test_report_writes_markdown_and_figures(tmp_path):
    for name, maes in (("lr", [0.5, 0.6]), ("egex", [0.4, 0.5])):
        _fake_run(tmp_path / name, name, maes)
    _fake_run(tmp_path / "egex_on_1000g", "egex", [0.7, 0.8], data="1000g", floor=None)
    report = write_report([tmp_path], tmp_path / "out")
    text = report.read_text()
    assert "## Test data: synthetic" in text and "## Test data: 1000g" in text
    assert "Noise floor (MAE of the true function): 0.2000" in text
    assert (tmp_path / "out" / "synthetic_scatter_vs_lr.png").stat().st_size > 1000
    assert (tmp_path / "out" / "synthetic_mae_distributions.png").stat().st_size > 1000


def test_report_from_real_runs(tmp_path, data_dir):
    from src.train import train
    from tests.conftest import compose_config

    for model in ("lr", "dgex"):
        train(compose_config("train", tmp_path / "runs" / model, [f"model={model}", "debug=fast"], data_dir))
    report = write_report([tmp_path / "runs"], tmp_path / "report")
    assert "| dgex |" in report.read_text() and "| lr |" in report.read_text()


def test_missing_folders_fail_with_a_clear_message(tmp_path, capsys):
    with pytest.raises(SystemExit, match="no run folders"):
        main([str(tmp_path)])


def test_report_goes_to_wandb_offline_without_a_key(tmp_path, monkeypatch):
    for name, maes in (("lr", [0.5, 0.6]), ("egex", [0.4, 0.5])):
        _fake_run(tmp_path / name, name, maes)
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    main([str(tmp_path), "--out", str(tmp_path / "out"), "--wandb"])
    assert list((tmp_path / "out" / "wandb").glob("offline-run-*"))
