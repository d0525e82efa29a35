"""End-to-end training of every model with debug=fast, in process through ``train(cfg)``."""

import json

import numpy as np
import pytest
import torch
from lightning.pytorch.callbacks import Callback

from src.models.loading import load_model
from src.train import build, build_datamodule, fit_and_test, train

MODELS = ["lr", "lr_l1", "lr_l2", "knn", "dgex", "taaf", "autoencoder", "egex", "resmlp", "ggan", "ncnn", "ridge_residual"]


def _mean_predictor_mae(cfg) -> float:
    """MAE of predicting the training mean: 0 on the standardised scale."""
    dm = build_datamodule(cfg)
    return float(dm.splits["test"].targets.abs().mean())


@pytest.mark.parametrize("model", MODELS)
def test_each_model_trains_and_beats_the_mean_predictor(train_config, model):
    cfg = train_config(f"model={model}", "debug=fast", "logger=csv")
    metrics = train(cfg)
    out = cfg.paths.output_dir
    protocol = {"val/mae", "val/pearson", "test/mae", "test/pearson"}
    deployed = {k.replace("/", "/deployed_") for k in protocol}
    assert protocol | deployed <= set(metrics)
    for key in protocol:  # no quantile normalisation: the deployed path is the protocol's
        assert metrics[key.replace("/", "/deployed_")] == metrics[key]
    if model != "autoencoder":  # it reconstructs targets: no prediction, no intervals
        assert abs(metrics["test/interval_coverage"] - 0.9) < 0.05 and metrics["calibration/reliable_genes"] > 0
    assert len(open(f"{out}/splits.tsv").read().splitlines()) == 1 + 3000
    assert metrics["test/mae"] < 0.9 * _mean_predictor_mae(cfg)
    saved = json.load(open(f"{out}/metrics.json"))
    assert saved["metrics"]["test/mae"] == pytest.approx(metrics["test/mae"])
    assert saved["noise_floor_mae"] > 0
    assert load_model(f"{out}/checkpoints/best.ckpt").preprocessing.target_ids[0] == "TG00001"
    lines = open(f"{out}/per_gene_test.tsv").read().splitlines()
    assert lines[0] == ("gene\tmae\tpearson\tscored" if model == "autoencoder" else "gene\tmae\tpearson\treliable\tscored")
    assert len(lines) == 1 + 300
    per_gene_mean = sum(float(line.split("\t")[1]) for line in lines[1:]) / 300
    assert per_gene_mean == pytest.approx(metrics["test/mae"], rel=1e-3)


def test_checkpoint_carries_genes_statistics_and_data_config(quick_dgex):
    cfg, _ = quick_dgex
    model = load_model(f"{cfg.paths.output_dir}/checkpoints/best.ckpt")
    dm = build_datamodule(cfg)
    assert model.preprocessing.target_ids == dm.preprocessing.target_ids
    assert torch.equal(torch.from_numpy(model.preprocessing.landmark_scaler.mean), torch.from_numpy(dm.preprocessing.landmark_scaler.mean))
    assert model.data_config["source"]["_target_"] == "src.data.sources.SyntheticSource"


def test_same_seed_same_metrics_and_another_seed_another_network(train_config, quick_dgex):
    first = quick_dgex[1]
    second = train(train_config("model=dgex", "debug=fast"))
    assert first == second
    # The seed sets the initial weights and the batch order: a network of another seed ends elsewhere
    # (the spreads over seeds that the reports give are not zero by construction).
    other = train(train_config("model=dgex", "debug=fast", "seed=7"))
    assert other["test/mae"] != first["test/mae"] and abs(other["test/mae"] / first["test/mae"] - 1) < 0.1


class ValCurve(Callback):
    """The validation MAE after every epoch."""

    def __init__(self):
        self.curve = []

    def on_train_epoch_end(self, trainer, pl_module):  # after the epoch's validation
        self.curve.append(float(trainer.callback_metrics["val/mae"]))


def test_early_stopping_ends_a_run_that_stopped_improving_and_best_ckpt_is_its_best_epoch(train_config):
    """E-GEX (smaller) at 30 times its learning rate overfits about 850 training samples within a few epochs: with patience 2
    the run ends 2 epochs after its best validation MAE, long before max_epochs, and best.ckpt is that epoch."""
    cfg = train_config("model=egex", "debug=fast", "trainer.max_epochs=40", "callbacks.early_stopping.patience=2",
                       "model.optimizer.lr=0.03", "data.max_samples=1200", "model.mlp_widths=[256]",
                       "model.ae_widths=[256]")
    probe = ValCurve()
    run = build(cfg, callbacks=[probe])
    metrics = fit_and_test(run)
    curve, best = probe.curve, int(np.argmin(probe.curve))
    assert len(curve) < 40 and run.trainer.early_stopping_callback.stopped_epoch == len(curve) - 1
    assert len(curve) == best + 1 + 2 and min(curve[best + 1 :]) >= curve[best]  # two epochs without a better one
    saved = torch.load(f"{cfg.paths.output_dir}/checkpoints/best.ckpt", weights_only=True)
    assert saved["epoch"] == best and metrics["val/mae"] == pytest.approx(curve[best], rel=1e-5)


def test_resume_from_last_checkpoint_continues_training(train_config):
    cfg = train_config("model=dgex", "debug=fast", "trainer.max_epochs=2", "keep_last_checkpoint=true")
    train(cfg)
    last = f"{cfg.paths.output_dir}/checkpoints/last.ckpt"
    assert torch.load(last, weights_only=True)["epoch"] == 1
    resumed = train_config("model=dgex", "debug=fast", "trainer.max_epochs=3", f"ckpt_path={last}", "keep_last_checkpoint=true")
    train(resumed)
    assert torch.load(f"{resumed.paths.output_dir}/checkpoints/last.ckpt", weights_only=True)["epoch"] == 2


def test_a_finished_run_keeps_its_weights_once_best_without_optimizer_state(train_config, caplog):
    cfg = train_config("model=dgex", "debug=fast")
    with caplog.at_level("WARNING"):
        train(cfg)
    folder = f"{cfg.paths.output_dir}/checkpoints"
    import os

    assert sorted(os.listdir(folder)) == ["best.ckpt"]  # last.ckpt (resume state) removed after a normal end
    best = torch.load(f"{folder}/best.ckpt", weights_only=True)
    assert "optimizer_states" not in best and "gexinfer" in best and best["gexinfer"]["extras"]["trust"]
    # debug=fast trains 3 epochs: the validation MAE still falls in the last one, and the run says so.
    assert "still improving" in caplog.text and "raise trainer.max_epochs" in caplog.text


def test_missing_checkpoint_is_named(train_config):
    with pytest.raises(FileNotFoundError, match="nope.ckpt"):
        train(train_config("debug=fast", "ckpt_path=/nope.ckpt"))


def test_a_model_trains_on_the_geo_pipeline_of_real_gpl96_data(train_config, gpl96):
    from tests.conftest import SHARED

    maps = [f"data.source.landmark_map={SHARED}/dgex/map_lm.txt", f"data.source.target_map={SHARED}/dgex/map_tg.txt"]
    cfg = train_config("data=geo", f"data.source.path={gpl96}", *maps, "model=egex", "debug=fast", "logger=csv",
                       "data.batch_size=15", "trainer.max_epochs=5")
    metrics = train(cfg)
    assert metrics["test/mae"] < _mean_predictor_mae(cfg)
    model = load_model(f"{cfg.paths.output_dir}/checkpoints/best.ckpt")
    space = model.preprocessing
    assert len(space.landmark_ids) == 943 and len(space.target_ids) == 300 and space.landmark_ids[0] == "ENSG00000175063"
    assert space.reference is not None and len(space.reference) == 943 + 300  # for mapping RNA-seq onto GEO


def test_build_composes_the_run_and_writes_what_it_chose_into_the_config(train_config):
    from src.train import build
    from src.utils.allocator import KeepFreedMemory

    cfg = train_config("model=egex", "experiment=egex_staged", "debug=fast", "trainer=ddp_sim")
    run = build(cfg)
    assert run.model.preprocessing is run.datamodule.preprocessing and run.loggers == []
    assert run.model.hparams.n_outputs == 300 and len(run.datamodule.split_data("train")) == 2100  # 80% less the 10% calibration split
    # Staged E-GEX has parameters without gradients in some stages: DDP must look for them, and the
    # config that is saved says so.
    assert cfg.trainer.strategy == "ddp_find_unused_parameters_true"
    assert any(isinstance(c, KeepFreedMemory) for c in run.trainer.callbacks)


def test_constant_target_genes_are_left_out_of_every_average_and_named(train_config, tmp_path):
    import numpy as np

    from src.data.io.gctx import write_gctx

    rng = np.random.default_rng(0)
    landmarks = rng.normal(size=(400, 6)).astype(np.float32)
    targets = landmarks[:, :4] @ rng.normal(size=(4, 4)).astype(np.float32) + 0.1 * rng.normal(size=(400, 4)).astype(np.float32)
    targets[:, 2] = 7.0  # a gene nobody expresses differently: MAE 0, Pearson undefined
    ids = [f"L{i}" for i in range(6)] + [f"T{i}" for i in range(4)]
    path = write_gctx(tmp_path / "const.gctx", np.hstack([landmarks, targets]), [f"s{i}" for i in range(400)], ids)
    cfg = train_config("data=gctx", f"data.source.path={path}", f"data.source.landmark_ids=[{','.join(ids[:6])}]",
                       f"data.source.target_ids=[{','.join(ids[6:])}]", "model=lr", "logger=none")
    metrics = train(cfg)
    saved = json.load(open(f"{cfg.paths.output_dir}/metrics.json"))
    assert saved["constant_genes"] == {"count": 1, "ids": ["T2"]}
    rows = [line.split("\t") for line in open(f"{cfg.paths.output_dir}/per_gene_test.tsv").read().splitlines()[1:]]
    others = [float(r[1]) for r in rows if r[0] != "T2"]
    assert metrics["test/mae"] == pytest.approx(sum(others) / 3, rel=1e-4)
    assert all(v is not None and v == v for v in saved["metrics"].values())  # nothing averages a NaN


def test_k_fold_cross_validation_tests_every_sample_once_and_reports_mean_and_sd(tmp_path, data_dir):
    from src.reporting.comparison_report import write_report
    from src.reporting.run_folder import RunFolder
    from tests.conftest import compose_config

    tested = []
    for fold in range(3):
        cfg = compose_config("train", tmp_path / f"fold{fold}", ["model=lr", "debug=fast", "logger=none",
                                                                  "data.folds=3", f"data.fold={fold}"], data_dir)
        train(cfg)
        splits = RunFolder(cfg.paths.output_dir).read_splits()
        assert set(splits["test"]).isdisjoint(splits["train"] + splits["val"] + splits["calibration"])
        tested += splits["test"]
    assert len(tested) == len(set(tested)) == 3000  # every sample tested exactly once
    report = write_report([tmp_path], tmp_path / "report").read_text()
    assert "mean ± sd over their runs" in report and "| lr | 3 |" in report


def test_calibration_uses_no_test_data(train_config):
    """The trust a checkpoint carries comes from the calibration split (never trained on, never choosing the
    checkpoint) and the difficulty model from the validation split: recomputed here from those splits alone,
    with the sample ids of splits.tsv disjoint."""
    from src.models.trust import MAX_STORED, DifficultyModel, Reliability, predict_standardised

    cfg = train_config("model=lr_l2", "debug=fast", "logger=none")
    train(cfg)
    out = cfg.paths.output_dir
    rows = [line.split("\t")[:2] for line in open(f"{out}/splits.tsv").read().splitlines()[1:]]
    split_of = {}
    for sample, split in rows:
        assert sample not in split_of  # every sample in exactly one split
        split_of[sample] = split
    dm = build_datamodule(cfg)
    assert [s for s, split in rows if split == "calibration"] == list(dm.sample_ids["calibration"])
    assert not set(dm.sample_ids["calibration"]) & set(dm.sample_ids["test"])
    model = load_model(f"{out}/checkpoints/best.ckpt")
    cal, val = dm.splits["calibration"], dm.splits["val"]
    np.testing.assert_array_equal(model.trust.raw, dm.raw("calibration")[:MAX_STORED])  # the calibration samples
    np.testing.assert_array_equal(model.trust.truth, cal.targets.numpy()[:MAX_STORED].astype(np.float16))
    reliable = Reliability.measure(predict_standardised(model, cal.deployed_landmarks), cal.targets.numpy()).reliable
    np.testing.assert_array_equal(model.trust.reliability.reliable, reliable)
    val_error = np.abs(predict_standardised(model, val.deployed_landmarks) - val.targets.numpy()).mean(1)
    difficulty = DifficultyModel.fit(val.deployed_landmarks.numpy(), val_error)
    np.testing.assert_allclose(model.trust.difficulty.weight, difficulty.weight, rtol=1e-5, atol=1e-7)
