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

# `make test` runs two pytest-xdist workers: each worker, and every process it starts, takes its share of
# the CPUs instead of all of them (oversubscribed threads made training tests up to 10x slower).
_WORKERS = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
if _WORKERS > 1 and "OMP_NUM_THREADS" not in os.environ:
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1  # macOS: no affinity
    os.environ["OMP_NUM_THREADS"] = str(max(1, cpus // _WORKERS))
    import torch

    torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))


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


def run_main(module: str, *args: str) -> None:
    """``python -m module args`` in this process: the entry point's Hydra ``main`` with ``sys.argv`` set,
    for command lines that need no fresh interpreter (no DDP re-launch, no import-time state under test).
    Fails the test on a non-zero exit; Hydra's global state and the root logger are restored after it."""
    import logging
    import runpy
    import sys
    import warnings

    root = logging.getLogger()
    handlers, level, argv = root.handlers[:], root.level, sys.argv
    sys.argv = [module, *args]
    GlobalHydra.instance().clear()
    try:
        with warnings.catch_warnings():  # runpy notes that the module was imported before: harmless here
            warnings.filterwarnings("ignore", "'src.", RuntimeWarning)
            runpy.run_module(module, run_name="__main__", alter_sys=True)  # as -m runs it: configs found by path
    except SystemExit as exit_:
        assert not exit_.code, f"python -m {module} {' '.join(args)} exited with status {exit_.code}"
    finally:
        sys.argv = argv
        GlobalHydra.instance().clear()
        for handler in root.handlers:
            if handler not in handlers:
                handler.close()
        root.handlers[:] = handlers
        root.setLevel(level)


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
def geo_lr(tmp_path_factory, gpl96):
    """LR trained once per session with debug=fast on the real GPL96 file with D-GEX's GEO preprocessing
    (300 targets); its data cache lies in ``cfg.paths.data_dir``. Tests only read its files."""
    from src.train import train

    root = tmp_path_factory.mktemp("geo_lr")
    maps = [f"data.source.landmark_map={SHARED}/dgex/map_lm.txt", f"data.source.target_map={SHARED}/dgex/map_tg.txt"]
    cfg = compose_config("train", root, ["data=geo", f"data.source.path={gpl96}", *maps, "model=lr", "debug=fast",
                                         "logger=none"], root / "data")
    train(cfg)
    return cfg


@pytest.fixture(scope="session")
def quick_dgex(tmp_path_factory, data_dir):
    """``(cfg, metrics)`` of D-GEX trained once per session with ``debug=fast``: the run folder that tests
    which only read a trained model's files share (none may change it)."""
    from src.train import train

    root = tmp_path_factory.mktemp("quick_dgex")
    cfg = compose_config("train", root, ["model=dgex", "debug=fast"], data_dir)
    return cfg, train(cfg)
