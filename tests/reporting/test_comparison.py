"""Comparing runs in the paper's terms: the table's numbers, labels and the Markdown rendering."""

import numpy as np
import pytest

from src.reporting.comparison import compare, comparison_table, find_runs
from src.reporting.run_folder import RunFolder


def _run(folder, method, maes, data="synthetic", floor=0.2):
    run = RunFolder(folder)
    run.write_metrics({"test/mae": float(np.mean(maes))}, {"method": method, "data": data, "noise_floor_mae": floor})
    run.write_per_gene([f"g{i}" for i in range(len(maes))], {"mae": np.array(maes), "pearson": np.full(len(maes), 0.5)})


def test_table_numbers_match_a_direct_computation(tmp_path):
    lr, dgex, egex = np.array([0.5, 0.6, 0.7, 0.8]), np.array([0.4, 0.65, 0.6, 0.7]), np.array([0.3, 0.5, 0.5, 0.9])
    for name, maes in (("lr", lr), ("dgex", dgex), ("egex", egex)):
        _run(tmp_path / "sweep" / name, name, maes)
    (table,) = compare(find_runs([tmp_path / "sweep"]))
    rows = {r["method"]: r for r in table.rows}
    assert [r["method"] for r in table.rows] == ["egex", "dgex", "lr"]  # best first
    assert rows["egex"]["mae"] == pytest.approx(egex.mean()) and rows["egex"]["mae_sd"] == pytest.approx(egex.std())
    assert rows["egex"]["vs_lr"] == pytest.approx(100 * (lr.mean() - egex.mean()) / lr.mean())
    assert rows["egex"]["vs_dgex"] == pytest.approx(100 * (dgex.mean() - egex.mean()) / dgex.mean())
    assert rows["dgex"]["beats_lr"] == pytest.approx(75.0) and rows["egex"]["beats_lr"] == pytest.approx(75.0)
    assert rows["lr"]["vs_lr"] is None
    assert rows["egex"]["vs_floor"] == pytest.approx(egex.mean() / 0.2)


def test_runs_are_grouped_by_data_and_labelled_uniquely(tmp_path):
    _run(tmp_path / "a", "egex", [0.4, 0.5])
    _run(tmp_path / "b", "egex", [0.3, 0.5])
    _run(tmp_path / "c", "egex", [0.7, 0.8], data="1000g", floor=None)
    synthetic, other = compare(find_runs([tmp_path]))
    assert (synthetic.data, other.data) == ("synthetic", "1000g")
    assert [r["method"] for r in synthetic.rows] == ["egex (b)", "egex (a)"]
    assert [r["method"] for r in other.rows] == ["egex"] and other.noise_floor is None


def test_markdown_table(tmp_path):
    _run(tmp_path / "lr", "lr", [0.5, 0.7])
    _run(tmp_path / "egex", "egex", [0.4, 0.5])
    (comparison,) = compare(find_runs([tmp_path]))
    assert comparison_table(comparison).splitlines() == [
        "| method | MAE (mean ± sd over genes) | deployed MAE | Pearson | vs LR | vs D-GEX | genes better than LR | MAE / noise floor |",
        "|---|---|---|---|---|---|---|---|",
        "| egex | 0.4500 ± 0.0500 |  | 0.5000 | +25.00% |  | 100.00% | 2.250 |",
        "| lr | 0.6000 ± 0.1000 |  | 0.5000 |  |  |  | 3.000 |",
        "",
        "Noise floor (MAE of the true function): 0.2000",
    ]


def test_no_runs_fail_clearly(tmp_path):
    with pytest.raises(FileNotFoundError, match="no run folders"):
        find_runs([tmp_path])
