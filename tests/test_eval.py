import json

import pytest
import torch

from src.eval import evaluate
from src.common.checkpoint_format import read_checkpoint
from src.train import train
from tests.conftest import compose_config


def test_eval_reproduces_the_test_metrics_of_training(quick_dgex, tmp_path, data_dir):
    cfg, trained = quick_dgex
    ckpt = f"{cfg.paths.output_dir}/checkpoints/best.ckpt"
    ecfg = compose_config("eval", tmp_path / "eval", [f"ckpt_path={ckpt}"], data_dir)
    metrics = evaluate(ecfg)
    tested = {k: v for k, v in trained.items() if not k.startswith("calibration/")}  # measured when training
    assert metrics == pytest.approx(tested, rel=1e-6)  # incl. the intervals, recalibrated from the checkpoint
    saved = json.load(open(f"{ecfg.paths.output_dir}/metrics.json"))
    assert set(saved["metrics"]) == set(tested)


def test_eval_refuses_data_with_other_genes(quick_dgex, tmp_path, data_dir):
    cfg, _ = quick_dgex
    ckpt = f"{cfg.paths.output_dir}/checkpoints/best.ckpt"
    ecfg = compose_config("eval", tmp_path / "eval", [f"ckpt_path={ckpt}", "data=synthetic",
                                                      "data.max_samples=3000", "data.max_targets=200"], data_dir)
    # Checked before any data work, with what to set.
    with pytest.raises(ValueError, match=r"trained on the first 300 target genes .*keep 200; pass data.max_targets=300"):
        evaluate(ecfg)


def test_truncated_checkpoint_fails_clearly(quick_dgex, tmp_path):
    cfg, _ = quick_dgex
    data = open(f"{cfg.paths.output_dir}/checkpoints/best.ckpt", "rb").read()
    path = tmp_path / "truncated.ckpt"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="truncated.ckpt: not a readable checkpoint"):
        read_checkpoint(path)


def test_cross_data_evaluation_on_another_cohort_lands_in_one_report(quick_dgex, tmp_path, data_dir):
    from src.report import write_report

    cfg, trained = quick_dgex
    ckpt = f"{cfg.paths.output_dir}/checkpoints/best.ckpt"
    overrides = [f"ckpt_path={ckpt}", "data=synthetic", "data.max_samples=3000", "data.max_targets=300",
                 "data.source.sample_seed=1", "data_name=cohort_b"]
    ecfg = compose_config("eval", tmp_path / "eval", overrides, data_dir)
    metrics = evaluate(ecfg)
    assert metrics["test/mae"] < 0.9  # the model transfers to new samples of the same genes
    saved = json.load(open(f"{ecfg.paths.output_dir}/metrics.json"))
    assert saved["data"] == "cohort_b" and saved["method"] == "dgex"
    text = write_report([cfg.paths.output_dir, ecfg.paths.output_dir], tmp_path / "report").read_text()
    assert "## Test data: synthetic" in text and "## Test data: cohort_b" in text


def test_a_geo_model_is_tested_on_1000g_and_gtex_files_as_published(train_config, tmp_path):
    """GEO -> 1000G and GEO -> GTEx: the RNA-seq samples are rank-mapped onto the checkpoint's GEO quantiles."""
    from src.data.fixtures import write_geo_like, write_geuvadis_like, write_gtex_like
    from tests.conftest import SHARED

    maps = SHARED / "dgex" / "map_lm.txt", SHARED / "dgex" / "map_tg.txt"
    if not maps[0].exists():
        pytest.skip("D-GEX maps not found")
    geo = write_geo_like(tmp_path / "bgedv2_QNORM.gctx", *maps, 600)
    args = [f"data.source.landmark_map={maps[0]}", f"data.source.target_map={maps[1]}"]
    cfg = train_config("data=geo", f"data.source.path={geo}", *args, "model=lr", "debug=fast", "data.split=[0.8,0.1,0.1]")
    train(cfg)
    ckpt = f"{cfg.paths.output_dir}/checkpoints/best.ckpt"
    files = {
        "geo_to_1000g": f"data.source.path={write_geuvadis_like(tmp_path / 'GD462.GeneQuantRPKM.50FN.samplename.resk10.txt', *maps, 200)}",
        "geo_to_gtex": f"data.source.path={write_gtex_like(tmp_path / 'GTEx_RNASeq_RPKM_n2921x55993.gctx', *maps, 200)}",
    }
    for experiment, path in files.items():
        ecfg = compose_config("eval", tmp_path / experiment, [f"experiment={experiment}", f"ckpt_path={ckpt}", path,
                                                              *args, "data.max_targets=300"], tmp_path / "data")
        metrics = evaluate(ecfg)
        assert 0 < metrics["test/mae"] < 0.6, experiment  # the mean predictor scores about 0.85 here
        saved = json.load(open(f"{ecfg.paths.output_dir}/metrics.json"))
        assert saved["data"] == experiment.split("_")[-1]


def test_eval_measures_a_model_on_a_landmark_panel(quick_dgex, tmp_path, data_dir):
    from src.models.loading import load_model

    cfg, trained = quick_dgex
    ckpt = f"{cfg.paths.output_dir}/checkpoints/best.ckpt"
    ids = load_model(ckpt).preprocessing.landmark_ids
    panel = tmp_path / "panel.txt"
    panel.write_text("# half of the landmarks\n" + "\n".join(ids[::2]) + "\n")
    ecfg = compose_config("eval", tmp_path / "eval", [f"ckpt_path={ckpt}", f"landmark_panel={panel}"], data_dir)
    metrics = evaluate(ecfg)
    assert metrics["test/panel_landmarks_present"] == len(ids[::2])
    assert metrics["test/deployed_mae"] == pytest.approx(trained["test/deployed_mae"], abs=1e-6)
    assert abs(metrics["test/panel_interval_coverage"] - 0.9) < 0.05  # recalibrated for the panel
    assert metrics["test/panel_deployed_mae"] > 0 and metrics["calibration/panel_reliable_genes"] > 0
    (tmp_path / "none.txt").write_text("nope\n")
    with pytest.raises(ValueError, match="landmark_panel=.*none.txt: none of its 1 ids is one of the model's"):
        evaluate(compose_config("eval", tmp_path / "eval2", [f"ckpt_path={ckpt}", f"landmark_panel={tmp_path / 'none.txt'}"], data_dir))


def test_a_checkpoint_whose_data_paths_are_relative_evaluates_from_another_folder(tmp_path, monkeypatch):
    """Trained with data files named relative to the folder training ran in, evaluated from elsewhere: the
    paths resolve against that folder (the run's .hydra/hydra.yaml says which); where even that fails, the
    error says so and names the override that works (``+data.source.path=...``, pasted: it runs)."""
    import numpy as np

    from src.data.io.gctx import write_gctx
    from tests.conftest import run_main

    work = tmp_path / "project"
    work.mkdir()
    (work / "lm.txt").write_text("A\tENSG01\tp1_at\nB\tENSG02\tp2_at\n")
    (work / "tg.txt").write_text("C\tENSG03\tp3_at\nD\tENSG04\tp4_at\n")
    values = np.random.default_rng(0).normal(8, 2, size=(60, 4)).astype(np.float32)
    write_gctx(work / "data.gctx", values, [f"S{i}" for i in range(60)], ["p1_at", "p2_at", "p3_at", "p4_at"])
    monkeypatch.chdir(work)
    run_main("src.train", "data=matrix", "data.source.path=data.gctx", "data.source.landmark_map=lm.txt",
             "data.source.target_map=tg.txt", "model=lr", "logger=none", f"hydra.run.dir={work / 'run'}")
    ckpt = work / "run" / "checkpoints" / "best.ckpt"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    metrics = evaluate(compose_config("eval", elsewhere, [f"ckpt_path={ckpt}"]))
    assert metrics["test/mae"] > 0
    (work / "data.gctx").rename(work / "moved.gctx")
    with pytest.raises(ValueError, match=r"data.source.path=data.gctx is relative to the folder training ran in .* "
                                         r"pass the file, e.g. \+data.source.path="):
        evaluate(compose_config("eval", elsewhere, [f"ckpt_path={ckpt}"]))
    fixed = evaluate(compose_config("eval", elsewhere, [f"ckpt_path={ckpt}", f"+data.source.path={work / 'moved.gctx'}"]))
    assert fixed["test/mae"] == pytest.approx(metrics["test/mae"])
