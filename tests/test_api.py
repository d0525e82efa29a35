"""The Python API (``import gexinfer``): training composes and runs what ``python -m src.train`` runs, and the
checkpoint it names predicts in memory."""

import json

import anndata
import numpy as np
import pandas as pd
import pytest
import yaml

import gexinfer
from src.train import build_datamodule, train
from tests.conftest import compose_config


def test_train_from_python_is_the_command_line_s_run_and_its_checkpoint_predicts(tmp_path, data_dir):
    overrides = ["model=lr_l2", "debug=fast", "logger=none", f"paths.output_root={tmp_path / 'api'}",
                 f"paths.data_dir={data_dir}"]
    run = gexinfer.train(*overrides)
    assert run.output_dir.parent == tmp_path / "api" / "train" and run.checkpoint.is_file()
    saved = run.output_dir / ".hydra"
    assert yaml.safe_load((saved / "hydra.yaml").read_text())["hydra"]["runtime"]["choices"]["model"] == "lr_l2"
    assert yaml.safe_load((saved / "config.yaml").read_text())["model"]["_target_"] == "src.models.linear.LinearRegression"
    assert yaml.safe_load((saved / "overrides.yaml").read_text()) == overrides
    assert json.loads((run.output_dir / "metrics.json").read_text())["metrics"]["test/mae"] == run.metrics["test/mae"]
    cli = compose_config("train", tmp_path / "cli", overrides[:3], data_dir)
    assert train(cli) == run.metrics  # the same numbers as the command line's run
    # The checkpoint predicts an AnnData of raw profiles in memory: the test split's predictions.
    dm = build_datamodule(cli)
    space = dm.preprocessing
    raw = space.landmark_scaler.inverse(dm.splits["test"].landmarks.numpy())
    adata = anndata.AnnData(raw, obs=pd.DataFrame(index=list(dm.sample_ids["test"])),
                            var=pd.DataFrame(index=list(space.landmark_ids)))
    predicted = gexinfer.Predictor.load(run.checkpoint).predict(adata, interval=0.9)
    mae = np.abs(predicted.layers["standardised"] - dm.splits["test"].targets.numpy()).mean()
    assert mae == pytest.approx(run.metrics["test/mae"], rel=1e-5)
    assert list(predicted.var_names) == list(space.target_ids) and predicted.var["reliable"].dtype == bool
