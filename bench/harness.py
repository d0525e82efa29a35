"""What the benchmarks build as ``src.train`` builds it: the models they time (``MODELS``), the composed
config, the DataModule, the training plan and a Trainer without logger, checkpoints or validation, a
per-step timer, and the device helpers. Shared by ``train_throughput.py`` and ``memory_scaling.py``."""

from __future__ import annotations

import atexit
import copy
import functools
import logging
import shutil
import sys
import tempfile
import time
import warnings
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT  # noqa: E402

#: name -> (label, Hydra overrides). All predict the 9,520 targets with one network.
MODELS = {
    "dgex3000": ("D-GEX 3,000 x 3 (one network)", ["model=dgex", "model.widths=[3000,3000,3000]", "model.n_splits=1"]),
    "dgex9000": ("D-GEX 9,000 x 3 (one network)", ["model=dgex", "model.widths=[9000,9000,9000]", "model.n_splits=1"]),
    "egex": ("E-GEX (default)", ["model=egex"]),
    "autoencoder": ("Target autoencoder (default)", ["model=autoencoder"]),
    "taaf3000": ("TAAF D-GEX 3,000 x 3 (one network)", ["model=taaf", "model.widths=[3000,3000,3000]", "model.n_splits=1"]),
    "resmlp": ("ResMLP (default)", ["model=resmlp"]),
    # GGAN trains two networks per step: the plain loop takes the same discriminator and generator steps.
    "ggan": ("GGAN (default, generator and discriminator)", ["model=ggan"]),
    # Without its plateau scheduler: the benchmark does not validate, so there is no val/mae to step it on
    # (once an epoch, negligible), and the plain loop has none either.
    "ncnn": ("NCNN (default, the data's graph)", ["model=ncnn", "model.scheduler=null"]),
    # Its step is so short that what ours adds per step (Lightning's loop, logging) shows.
    "tiny": ("Tiny E-GEX (943 -> 64 -> 64 -> 300)", ["model=egex", "model.mlp_widths=[64]", "model.latent=64", "model.ae_widths=[]"]),
}
DATA_DIR = ROOT / "outputs" / "data"  # where src.train keeps the generated synthetic data


def device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def quiet() -> None:
    """Silence Lightning's start-up messages and warnings about the benchmark's own settings."""
    import lightning  # noqa: F401  (it sets its loggers' levels when imported)

    for name in ("lightning", "lightning.pytorch", "lightning.fabric", "src"):
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", module="lightning")
    warnings.filterwarnings("ignore", message=".*does not have many workers.*")


# ------------------------------------------------------------------------- building what src.train builds
@functools.cache
def _workdir() -> str:
    """One temporary output folder per process (nothing is written there with logger and callbacks off)."""
    path = tempfile.mkdtemp(prefix="gexinfer-bench-")
    atexit.register(shutil.rmtree, path, ignore_errors=True)
    return path


def compose(overrides: list[str], workdir: str | Path | None = None):
    """The training config as ``python -m src.train <overrides>`` composes it (:func:`src.api.compose`),
    logger and callbacks off, outputs in a temporary folder and the synthetic data in the usual ``outputs/data``."""
    from src.api import compose as compose_training

    workdir = Path(workdir or _workdir())
    return compose_training(
        "data=synthetic", "data.batch_size=200", "logger=none", "callbacks=none", f"paths.output_root={workdir}",
        f"paths.data_dir={DATA_DIR}", f"hydra.run.dir={workdir}/run", *overrides,
    )


def build_data(cfg):
    """``src.train``'s DataModule (``build_datamodule``: checked, seeded, prepared, set up); then, as
    ``src.train``'s ``keep_freed_memory`` callback does when fitting starts, glibc is told to keep freed
    memory unless ``keep_freed_memory=false`` (this lasts for the rest of the process)."""
    from src.train import build_datamodule

    datamodule = build_datamodule(cfg)
    if cfg.get("keep_freed_memory", True):
        from src.utils.allocator import keep_freed_memory

        keep_freed_memory()
    return datamodule


def build_model(cfg, datamodule):
    """``src.train``'s training plan (``build_model``), seeded first so that every build has the same weights."""
    import lightning as L

    from src.train import build_model as build

    L.seed_everything(cfg.seed, workers=True, verbose=False)
    return build(cfg, datamodule)


def n_parameters(model) -> int:
    """The trained parameters: the network's, and GGAN's discriminator's (the EMA copy of ResMLP is not trained)."""
    networks = [model.net, getattr(model, "discriminator", None)]
    return sum(p.numel() for net in networks if net is not None for p in net.parameters())


class StepTimer:
    """Lightning callback: the wall time of every training step, from the end of the previous step
    (or the start of the epoch) to the end of this one, so fetching the batch, the step, logging and
    metric updates are all in it, and the process's CPU time over the same spans (``cpu_times``). The
    time between epochs (epoch-end hooks, e.g. D-GEX's learning rate decision) is kept apart in ``epoch_gaps``."""

    def __new__(cls, *args, **kwargs):  # a real Callback subclass, built lazily so importing stays light
        from lightning.pytorch.callbacks import Callback

        class _StepTimer(Callback):
            def __init__(self):
                self.step_times: list[float] = []
                self.cpu_times: list[float] = []
                self.epoch_gaps: list[float] = []
                self.epoch_times: list[float] = []
                self._last = self._epoch_end = self._epoch_start = self._last_cpu = None

            def on_train_epoch_start(self, trainer, pl_module):
                sync()
                now = time.perf_counter()
                if self._epoch_end is not None:
                    self.epoch_gaps.append(now - self._epoch_end)
                self._last = self._epoch_start = now
                self._last_cpu = time.process_time()

            def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
                now, cpu = time.perf_counter(), time.process_time()
                self.step_times.append(now - self._last)
                self.cpu_times.append(cpu - self._last_cpu)
                self._last, self._last_cpu = now, cpu

            def on_train_epoch_end(self, trainer, pl_module):
                sync()
                self._epoch_end = time.perf_counter()
                self.epoch_times.append(self._epoch_end - self._epoch_start)

        return _StepTimer()


def make_trainer(cfg, model, callbacks: list, max_steps: int = -1, **extra):
    """``src.train``'s Trainer (``build_trainer``, after its strategy choice) without logger, checkpoints,
    progress bar or validation."""
    from omegaconf import open_dict

    from src.train import build_trainer
    from src.utils.config import ddp_strategy

    # max_steps ends the run, never the number of epochs (an epoch has at least one step); E-GEX lays out
    # its stages over max_epochs, so it must be finite.
    max_epochs = extra.pop("max_epochs", max(cfg.trainer.max_epochs or 1, max_steps + 1))
    cfg = copy.deepcopy(cfg)
    strategy = ddp_strategy(cfg, model)
    with open_dict(cfg):
        if strategy:
            cfg.trainer.strategy = strategy
        cfg.trainer.update(
            enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False, limit_val_batches=0,
            num_sanity_val_steps=0, max_steps=max_steps, max_epochs=max_epochs, **extra,
        )
    return build_trainer(cfg, [], callbacks)
