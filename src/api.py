"""The Python API's training side: compose a config as the command line would, and train it.

``python -m src.train model=ridge_residual data=geuvadis`` and
``gexinfer.train("model=ridge_residual", "data=geuvadis")`` run the same :func:`src.train.train` on the same
composed config, into the same kind of run folder (``outputs/train/<time>/``, its config saved in
``.hydra/``); the result names the run folder, the metrics and the best checkpoint, ready for
:class:`~src.inference.Predictor`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from omegaconf import DictConfig, OmegaConf, open_dict

from src.common.atomic import atomic_path
from src.reporting.run_folder import RunFolder

CONF = Path(__file__).resolve().parent / "conf"  # the configs (in a checkout, a link to its conf/)


@dataclass
class TrainResult:
    """What a training run left: its folder, its metrics and its best checkpoint."""

    output_dir: Path
    metrics: dict[str, float]

    @property
    def checkpoint(self) -> Path | None:
        """The best checkpoint, as the run folder's ``metrics.json`` names it (None for a run without one,
        e.g. ``callbacks=none``)."""
        best = RunFolder(self.output_dir).read_meta().get("best_checkpoint")
        return Path(best) if best else None


def compose(*overrides: str, config_name: str = "train") -> DictConfig:
    """The config of ``python -m src.<config_name> <overrides...>`` (``conf/<config_name>.yaml`` with the
    overrides), its run folder chosen as the command line chooses it. As under ``@hydra.main``, the ``hydra``
    node is set aside (``HydraConfig.get()``) and the task's config is returned without it."""
    from hydra import compose as hydra_compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.hydra_config import HydraConfig

    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(version_base="1.3", config_dir=str(CONF)):
            cfg = hydra_compose(config_name, overrides=list(overrides), return_hydra_config=True)
    finally:
        GlobalHydra.instance().clear()
    HydraConfig().set_config(cfg)  # ${hydra:...} (the run folder's time stamp) resolves
    OmegaConf.set_readonly(cfg.hydra, False)
    with open_dict(cfg):
        cfg.hydra.runtime.output_dir = str(Path(cfg.hydra.run.dir).resolve())
        cfg.hydra.overrides.task = list(overrides)
    HydraConfig().set_config(cfg)
    task = OmegaConf.masked_copy(cfg, [k for k in cfg if k != "hydra"])
    OmegaConf.set_struct(task, True)
    return task


def train(*overrides: str) -> TrainResult:
    """Train as ``python -m src.train <overrides...>`` does (e.g. ``train("model=lr_l2", "debug=fast")``);
    the run folder's ``.hydra/`` holds the config, Hydra's own node and the overrides, as the command line
    writes them."""
    from hydra.core.hydra_config import HydraConfig

    from src.train import train as run

    cfg = compose(*overrides)
    hydra = HydraConfig.get()
    saved = Path(hydra.runtime.output_dir) / hydra.output_subdir
    saved.mkdir(parents=True, exist_ok=True)
    for name, content in (("config.yaml", cfg), ("hydra.yaml", OmegaConf.create({"hydra": hydra})),
                          ("overrides.yaml", list(overrides))):
        with atomic_path(saved / name) as tmp:
            tmp.write_text(OmegaConf.to_yaml(content))
    return TrainResult(Path(cfg.paths.output_dir), run(cfg))
