"""Every model composes with every data config, and each composed object instantiates."""

import hydra
import pytest
from omegaconf import OmegaConf

from tests.conftest import CONF, GPL96, SHARED, compose_config

MAP_ARGS = [f"data.source.landmark_map={SHARED}/dgex/map_lm.txt", f"data.source.target_map={SHARED}/dgex/map_tg.txt"]

MODELS = sorted(p.stem for p in (CONF / "model").glob("*.yaml"))
DATA = sorted(p.stem for p in (CONF / "data").glob("*.yaml") if not p.stem.startswith("_"))  # _datamodule: shared keys
DATA_ARGS = {
    "gctx": [f"data.source.path={GPL96}", "data.source.landmark_ids=[202954_at,219222_at]",
             "data.source.target_ids=[1007_s_at]"],
    "geo": [f"data.source.path={GPL96}", *MAP_ARGS],
    "gtex": ["data.source.path=GTEx_RNASeq_RPKM_n2921x55993.gctx", *MAP_ARGS],
    "1000g": ["data.source.path=GD462.GeneQuantRPKM.50FN.samplename.resk10.txt", *MAP_ARGS],
    "matrix": ["data.source.path=expression.h5ad", *MAP_ARGS],
    "archs4": ["data.source.path=human_gene_v2.latest.h5"],
}


@pytest.mark.parametrize("data", DATA)
@pytest.mark.parametrize("model", MODELS)
def test_every_model_composes_with_every_data(train_config, model, data):
    cfg = train_config(f"model={model}", f"data={data}", *DATA_ARGS.get(data, []))
    OmegaConf.to_container(cfg.data, resolve=True)  # every interpolation resolves
    assert cfg.model._target_.startswith("src.models.")
    datamodule = hydra.utils.instantiate(cfg.data, _convert_="all")
    net = hydra.utils.instantiate(cfg.model, n_inputs=4, n_outputs=3, _convert_="all")
    assert datamodule.batch_size == cfg.data.batch_size and net.hparams.n_outputs == 3


@pytest.mark.parametrize("trainer", ["default", "cpu", "gpu", "ddp", "ddp_sim"])
def test_trainer_configs_compose(train_config, trainer):
    cfg = train_config(f"trainer={trainer}")
    assert cfg.trainer.use_distributed_sampler is False


def test_debug_fast_shrinks_without_swapping_data_or_model(train_config):
    base, fast = train_config("model=dgex"), train_config("model=dgex", "debug=fast")
    assert fast.data._target_ == base.data._target_ and fast.model._target_ == base.model._target_
    assert fast.data.max_samples < 5000 and max(fast.model.widths) < max(base.model.widths)
    assert fast.trainer.max_epochs <= 3


def test_unknown_config_keys_are_rejected(train_config):
    from hydra.errors import ConfigCompositionException

    with pytest.raises(ConfigCompositionException):
        train_config("model.no_such_key=1")


def test_defaults_are_ridge_residual_on_synthetic_with_wandb(train_config):
    cfg = train_config()
    assert cfg.model._target_ == "src.models.ridge_residual.RidgeResidual"
    assert train_config("hparams_search=egex_optuna").model._target_ == "src.models.egex.EGEX"
    assert cfg.data.source._target_ == "src.data.sources.SyntheticSource"
    assert "wandb" in cfg.logger


def test_dgex_experiment_is_the_papers_best(train_config):
    cfg = train_config("experiment=dgex")
    assert list(cfg.model.widths) == [9000, 9000, 9000] and cfg.model.dropout == 0.1 and cfg.model.n_splits == 2
    assert cfg.trainer.max_epochs == 200 and cfg.data.batch_size == 200 and cfg.model.optimizer.momentum == 0.5


def test_dgex_grid_sweeps_the_papers_27_configurations(train_config):
    from hydra.core.override_parser.overrides_parser import OverridesParser

    cfg = train_config("experiment=dgex_grid")
    params = cfg.hydra.sweeper.params
    parser = OverridesParser.create()
    sizes = [len(list(parser.parse_override(f"{k}={v}").sweep_iterator())) for k, v in params.items()]
    assert sizes == [9, 3]
    assert cfg.hydra.mode.name == "MULTIRUN"
    assert cfg.method == "dgex_3x9000_d0.1"


@pytest.mark.parametrize("experiment, data", [("geo_to_1000g", "1000g"), ("geo_to_gtex", "gtex")])
def test_cross_platform_evaluation_recipes_take_the_reference_from_the_checkpoint(tmp_path, experiment, data):
    from tests.conftest import compose_config

    cfg = compose_config("eval", tmp_path, [f"experiment={experiment}", "ckpt_path=geo.ckpt", *DATA_ARGS[data][:1], *MAP_ARGS])
    assert cfg.data._target_ == "src.data.datamodule.ExpressionDataModule" and cfg.data.source.reference == "geo.ckpt"
    assert cfg.data_name == data
    hydra.utils.instantiate(cfg.data, _convert_="all")


def test_slurm_launcher_gives_one_task_and_gpu_per_device(train_config):
    cfg = train_config("hydra/launcher=slurm", "trainer=ddp", "trainer.devices=4", "trainer.num_nodes=2")
    launcher = cfg.hydra.launcher
    assert launcher._target_.endswith("SlurmLauncher")
    assert (launcher.tasks_per_node, launcher.gpus_per_node, launcher.nodes) == (4, 4, 2)


def test_optuna_search_minimises_the_validation_mae(train_config):
    cfg = train_config("hparams_search=egex_optuna")
    assert cfg.hydra.sweeper._target_.endswith("OptunaSweeper") and cfg.hydra.sweeper.direction == "minimize"
    assert cfg.optimized_metric == "val/mae" and cfg.hydra.mode.name == "MULTIRUN"


def test_the_equal_time_comparison_is_the_comparison_with_one_time_limit_for_every_network(tmp_path):
    equal = compose_config("train", tmp_path, ["experiment=compare_equal_time"])
    plain = compose_config("train", tmp_path, ["experiment=compare"])
    assert equal.trainer.max_time == "00:00:05:00" and plain.trainer.get("max_time") is None
    assert equal.hydra.sweeper.params == plain.hydra.sweeper.params  # every method, the same seeds
    assert equal.hydra.mode == plain.hydra.mode and equal.task_name == "compare_equal_time"


def test_the_equal_epochs_comparison_is_the_comparison_with_a_fixed_schedule_for_every_network(tmp_path):
    equal = compose_config("train", tmp_path, ["experiment=compare_equal_epochs"])
    plain = compose_config("train", tmp_path, ["experiment=compare"])
    assert equal.trainer.max_epochs == 10 and equal.callbacks.early_stopping is None
    assert plain.callbacks.early_stopping.monitor == "val/mae"
    assert equal.hydra.sweeper.params == plain.hydra.sweeper.params  # every method, the same seeds
    assert equal.task_name == "compare_equal_epochs"
