"""The engine's tests share one trained model."""

import anndata
import pandas as pd
import pytest

from src.train import build_datamodule, train
from tests.conftest import compose_config


@pytest.fixture(scope="package")
def trained(tmp_path_factory):
    """A ridge model on noisy debug synthetic data, its DataModule, and the raw test profiles as an AnnData."""
    root = tmp_path_factory.mktemp("engine")
    # Target noise up to 20 times the default, so that some genes are not reliable.
    cfg = compose_config("train", root, ["model=lr_l2", "debug=fast", "logger=none", "data.source.target_noise=[0.1,10.0]"],
                         root / "data")
    train(cfg)
    dm = build_datamodule(cfg)
    space = dm.preprocessing
    raw = space.landmark_scaler.inverse(dm.splits["test"].landmarks.numpy())
    obs = pd.DataFrame({"batch": [f"b{i % 3}" for i in range(len(raw))]}, index=list(dm.sample_ids["test"]))
    adata = anndata.AnnData(raw, obs=obs, var=pd.DataFrame(index=list(space.landmark_ids)))
    return f"{cfg.paths.output_dir}/checkpoints/best.ckpt", dm, adata
