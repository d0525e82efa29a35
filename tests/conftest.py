"""Shared fixtures: composed configs with outputs in a temporary folder, and the reference data."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, open_dict

REPO = Path(__file__).resolve().parents[1]
CONF = REPO / "conf"
SHARED = REPO.parent / "shared" / "data"
GPL96 = SHARED / "gpl96" / "bladderbatch_gpl96.gctx"

os.environ.setdefault("WANDB_MODE", "offline")  # tests never reach for the network


def compose_config(name: str, output_dir: Path, overrides: list[str], data_dir: Path | None = None) -> DictConfig:
    """Compose ``conf/<name>.yaml`` as the command line would, with every output under ``output_dir``."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(version_base="1.3", config_dir=str(CONF)):
        cfg = compose(
            name,
            overrides=[f"paths.output_root={output_dir}", f"hydra.run.dir={output_dir}/run", *overrides],
            return_hydra_config=True,
        )
    HydraConfig().set_config(cfg)
    with open_dict(cfg):
        cfg.paths.output_dir = str(output_dir / "run")
        if data_dir is not None:
            cfg.paths.data_dir = str(data_dir)
    GlobalHydra.instance().clear()
    return cfg


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory) -> Path:
    """One folder for generated synthetic data, shared by all tests (generated once per spec)."""
    return tmp_path_factory.mktemp("data")


@pytest.fixture
def train_config(tmp_path, data_dir):
    """``train_config(*overrides)`` -> a composed training config writing into ``tmp_path``."""

    def make(*overrides: str) -> DictConfig:
        return compose_config("train", tmp_path, list(overrides), data_dir)

    return make


@pytest.fixture(scope="session")
def gpl96() -> Path:
    if not GPL96.exists():
        pytest.skip(f"reference data {GPL96} not found (it lies in ../shared/data beside the repo)")
    return GPL96


@pytest.fixture(scope="session")
def quick_dgex(tmp_path_factory, data_dir):
    """``(cfg, metrics)`` of D-GEX trained once per session with ``debug=fast``: the run folder that tests
    which only read a trained model's files share (none may change it)."""
    from src.train import train

    root = tmp_path_factory.mktemp("quick_dgex")
    cfg = compose_config("train", root, ["model=dgex", "debug=fast"], data_dir)
    return cfg, train(cfg)
