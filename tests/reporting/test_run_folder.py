"""The run-folder contract: what is written is read back unchanged; broken folders fail naming the file."""

import json
import math

import numpy as np
import pytest
import torch

from src.reporting.run_folder import RunFolder


def _write(folder, genes=("g0", "g1", "g2")):
    run = RunFolder(folder)
    run.write_metrics(
        {"test/mae": 0.25, "val/mae": 0.3, "val/pearson": math.nan},
        {"model": "EGEX", "method": "egex", "data": "synthetic", "noise_floor_mae": 0.2, "checkpoint": "x.ckpt"},
    )
    per_gene = {"pearson": torch.tensor([0.5, float("nan"), 0.75]), "mae": np.array([0.125, 0.25, 0.375])}
    run.write_per_gene(list(genes), per_gene)
    return run


def test_written_results_read_back_equal(tmp_path):
    run = _write(tmp_path / "run")
    record = RunFolder(tmp_path / "run").read()
    assert record.method == "egex" and record.data == "synthetic" and record.noise_floor == 0.2
    assert record.metrics == {"test/mae": 0.25, "val/mae": 0.3, "val/pearson": None}  # NaN is null in JSON
    assert record.meta["model"] == "EGEX" and record.meta["checkpoint"] == "x.ckpt"
    assert record.per_gene.genes == ["g0", "g1", "g2"]
    assert list(record.per_gene.columns) == ["mae", "pearson"]  # sorted by name
    np.testing.assert_array_equal(record.per_gene["mae"], [0.125, 0.25, 0.375])
    np.testing.assert_array_equal(record.per_gene["pearson"], [0.5, np.nan, 0.75])
    assert run.read_metrics() == record.metrics and run.read_overrides() == []


def test_the_files_keep_their_names_and_formats(tmp_path):
    _write(tmp_path)
    payload = json.loads((tmp_path / "metrics.json").read_text())
    assert list(payload) == ["metrics", "model", "method", "data", "noise_floor_mae", "checkpoint"]
    assert (tmp_path / "metrics.json").read_text().endswith("}\n")
    lines = (tmp_path / "per_gene_test.tsv").read_text().splitlines()
    assert lines == ["gene\tmae\tpearson", "g0\t0.125\t0.5", "g1\t0.25\tnan", "g2\t0.375\t0.75"]
    assert not list(tmp_path.glob(".*.tmp"))  # atomic writes leave no temporary files
    assert RunFolder(tmp_path).per_gene_figure_file == tmp_path / "per_gene_test.png"


def test_overrides_come_from_hydra(tmp_path):
    run = _write(tmp_path)
    (tmp_path / ".hydra").mkdir()
    (tmp_path / ".hydra" / "overrides.yaml").write_text("- model=egex\n- seed=1\n")
    assert run.read_overrides() == ["model=egex", "seed=1"]


def test_missing_files_are_named(tmp_path):
    run = RunFolder(tmp_path)
    with pytest.raises(FileNotFoundError, match="metrics.json: missing"):
        run.read()
    run.write_metrics({"test/mae": 0.1})
    with pytest.raises(FileNotFoundError, match="per_gene_test.tsv: missing"):
        run.read()
    assert not run.has_per_gene() and run.has_metrics()


def test_a_malformed_per_gene_file_is_named(tmp_path):
    run = RunFolder(tmp_path)
    run.write_metrics({"test/mae": 0.1})
    (tmp_path / "per_gene_test.tsv").write_text("gene\tmae\ng0\t0.1\n")
    with pytest.raises(ValueError, match=r"per_gene_test.tsv: expected a header 'gene, mae, pearson'"):
        run.read()


def test_find_every_run_below_the_given_folders_once(tmp_path):
    for name in ("sweep/0", "sweep/1", "single"):
        RunFolder(tmp_path / name).write_metrics({"val/mae": 0.1})
    (tmp_path / "sweep" / "not_a_run").mkdir()
    found = RunFolder.find([tmp_path / "sweep", tmp_path, tmp_path / "sweep" / "0"])
    assert [f.path for f in found] == [tmp_path / "sweep/0", tmp_path / "sweep/1", tmp_path / "single"]
    assert RunFolder.find([tmp_path / "sweep" / "not_a_run"]) == []
    with pytest.raises(FileNotFoundError, match="no such run or sweep folder"):
        RunFolder.find([tmp_path / "nowhere"])


def test_a_failure_is_recorded_read_back_and_cleared_by_later_metrics(tmp_path):
    run = RunFolder(tmp_path / "job")
    assert run.read_failure() is None
    run.write_failure("in.gctx: no such file", "FileNotFoundError")
    assert run.read_failure() == {"error": "in.gctx: no such file", "type": "FileNotFoundError"}
    assert RunFolder.find_failed([tmp_path]) == [run] and RunFolder.find([tmp_path]) == []
    run.write_metrics({"val/mae": 0.5})  # the job resumed in its folder and finished
    assert run.read_failure() is None and RunFolder.find_failed([tmp_path]) == []
