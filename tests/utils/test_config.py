import pytest

from src.utils.config import ddp_strategy, save_config, settle_config, validate_config


def test_global_batch_must_divide_among_processes(train_config):
    with pytest.raises(ValueError, match="must be divisible by the 3 processes"):
        validate_config(train_config("trainer.devices=3"))
    validate_config(train_config("trainer.devices=2"))


def test_lightning_must_not_add_its_own_sampler(train_config):
    with pytest.raises(ValueError, match="use_distributed_sampler must be false"):
        validate_config(train_config("trainer.use_distributed_sampler=true"))


def test_staged_models_get_ddp_that_tolerates_unused_parameters(train_config):
    staged = type("M", (), {"has_unused_parameters": True})()
    plain = type("M", (), {"has_unused_parameters": False})()
    for model, devices, expected in ((staged, 2, "ddp_find_unused_parameters_true"), (plain, 2, None), (staged, 1, None)):
        cfg = train_config(f"trainer.devices={devices}")
        assert ddp_strategy(cfg, model) == expected
        settle_config(cfg, model)
        assert cfg.trainer.strategy == (expected or "auto")  # written into the config: what ran is what is saved


def test_checkpoints_are_always_written_atomically(train_config):
    import hydra

    from src.utils.atomic_checkpoint_io import AtomicCheckpointIO

    cfg = train_config("logger=none")
    trainer = hydra.utils.instantiate(cfg.trainer, logger=False)
    assert isinstance(trainer.strategy.checkpoint_io, AtomicCheckpointIO)


def test_the_saved_config_is_rewritten_with_what_ran(train_config):
    from pathlib import Path

    from omegaconf import OmegaConf

    cfg = train_config("trainer.devices=2", "model=egex", "experiment=egex_staged")
    saved = Path(cfg.paths.output_dir) / ".hydra" / "config.yaml"
    saved.parent.mkdir(parents=True)
    saved.write_text(OmegaConf.to_yaml(cfg))
    settings = settle_config(cfg, type("M", (), {"has_unused_parameters": True})())
    assert settings == {"trainer.strategy": "ddp_find_unused_parameters_true", "trainer.precision": "32-true"}
    assert OmegaConf.load(saved).trainer.strategy == "ddp_find_unused_parameters_true"  # saved once, as it ran
    assert OmegaConf.load(saved).trainer.precision == "32-true" and save_config(cfg) == saved


def test_ckpt_path_last_means_this_run_folders_last_checkpoint(train_config):
    from pathlib import Path

    from src.utils.config import resolve_ckpt_path

    cfg = train_config("ckpt_path=last")
    with pytest.raises(FileNotFoundError, match=r"ckpt_path=last: no .*checkpoints/last.ckpt; .*hydra.run.dir="):
        resolve_ckpt_path(cfg)
    last = Path(cfg.paths.output_dir) / "checkpoints" / "last.ckpt"
    last.parent.mkdir(parents=True)
    last.write_bytes(b"x")
    with pytest.raises(ValueError, match="last.ckpt: not a readable checkpoint"):  # refused before any work
        resolve_ckpt_path(cfg)
    import torch

    from src.common.checkpoint_format import KEY

    ours = {KEY: {"model_class": "src.models.linear.LinearRegression"}, "state_dict": {}}
    torch.save(ours, last)  # weights only, like best.ckpt: nothing to resume
    with pytest.raises(ValueError, match="holds weights only .*checkpoints/last.ckpt"):
        resolve_ckpt_path(cfg)
    torch.save({**ours, "optimizer_states": [], "loops": {}}, last)
    assert resolve_ckpt_path(cfg) == str(last)


@pytest.mark.parametrize("override, message", [
    ("data.batch_size=abc", "data.batch_size=abc: expected a positive integer (the global training batch), e.g. data.batch_size=200"),
    ("data.batch_size=0", "data.batch_size=0: expected a positive integer"),
    ("data.batch_size=true", "data.batch_size=true: expected a positive integer"),
    ("data.eval_batch_size=2.5", "data.eval_batch_size=2.5: expected a positive integer"),
    ("data.split=[0.8,0.2]", "data.split=[0.8,0.2]: expected three non-negative fractions"),
    ("data.split_seed=abc", "data.split_seed=abc: expected an integer, e.g. data.split_seed=0"),
    ("data.calibration=-1", "data.calibration=-1: expected a fraction in [0, 1)"),
    ("data.max_samples=0", "data.max_samples=0: expected null (all samples) or a positive integer"),
    ("trainer.max_epochs=abc", "trainer.max_epochs=abc: expected a positive integer (the most epochs to train), or -1"),
    ("trainer.max_epochs=0", "trainer.max_epochs=0: expected a positive integer"),
    ("trainer.devices=two", "trainer.devices=two: expected a positive number of devices"),
    ("model.dropout=abc", "model.dropout=abc: expected a fraction in [0, 1), e.g. model.dropout=0.1"),
    ("model.dropout=1", "model.dropout=1: expected a fraction in [0, 1)"),
    ("model.optimizer.lr=0", "model.optimizer.lr=0: expected a positive learning rate, e.g. model.optimizer.lr=1e-3"),
    ("model.mlp_widths=[1024,-1]", "model.mlp_widths=[1024,-1]: expected a list of positive layer widths"),
    ("model.latent=abc", "model.latent=abc: expected a positive latent size"),
    ("seed=abc", "seed=abc: expected an integer from 0 to 2**32 - 1, e.g. seed=12345"),
    ("interval=1", "interval=1: expected a level in (0, 1), e.g. interval=0.9"),
])
def test_config_values_are_type_and_range_checked_naming_the_key(train_config, override, message):
    from src.common.errors import InputError

    with pytest.raises(InputError) as caught:
        validate_config(train_config(override))
    assert str(caught.value).startswith(message)


@pytest.mark.parametrize("overrides", [
    ["trainer.max_epochs=-1"], ["trainer.max_epochs=null"], ["trainer.devices=auto"], ["trainer.devices=[0]"],
    ["model.dropout=0"], ["data.max_samples=null"], ["data.split=[800,100,100]"], ["model=lr_l2"], ["model=knn"],
    ["model=dgex", "model.lr=null"], ["experiment=dgex_grid"],
])
def test_valid_values_pass_the_checks(train_config, overrides):
    validate_config(train_config(*overrides))


def test_model_specific_keys_are_checked_when_the_model_has_them(train_config):
    from src.common.errors import InputError

    with pytest.raises(InputError, match=r"model.alphas=\[-1\]: expected a list of positive penalty strengths"):
        validate_config(train_config("model=lr_l2", "model.alphas=[-1]"))
    with pytest.raises(InputError, match=r"model.ks=\[\]: expected a list of positive neighbour counts"):
        validate_config(train_config("model=knn", "model.ks=[]"))


@pytest.mark.parametrize("override, message", [
    ("block_size=abc", "block_size=abc: expected a positive integer (samples per block), e.g. block_size=8192"),
    ("interval=1.5", "interval=1.5: expected null (no intervals) or a level in (0, 1)"),
    ("genes=some", "genes=some: expected all or reliable"),
    ("missing_landmarks=skip", "missing_landmarks=skip: expected error or impute, e.g. missing_landmarks=impute"),
    ("overwrite=yes", "overwrite=yes: expected true or false"),
    ("log2=maybe", "log2=maybe: expected auto, true or false"),
    ("input_format=csv", "input_format=csv: expected auto, gctx, h5ad, table, archs4"),
    ("device=gpu", "device=gpu: expected auto, cpu, cuda or cuda:N"),
    ("device=cuda:99", "device=cuda:99: this machine has"),
])
def test_predict_config_values_are_checked(tmp_path, override, message):
    from src.common.errors import InputError
    from src.utils.config import validate_predict_config
    from tests.conftest import compose_config

    cfg = compose_config("predict", tmp_path, ["ckpt_path=m.ckpt", "input=in.gctx", "output=out.h5ad", override])
    with pytest.raises(InputError) as caught:
        validate_predict_config(cfg)
    assert str(caught.value).startswith(message)
    validate_predict_config(compose_config("predict", tmp_path, ["ckpt_path=m.ckpt", "input=in.gctx", "output=out.h5ad"]))
    with pytest.raises(InputError, match="output is not set; expected e.g. python -m src.predict"):
        validate_predict_config(compose_config("predict", tmp_path, ["ckpt_path=m.ckpt", "input=in.gctx"]))


def test_eval_config_values_are_checked(tmp_path):
    from src.common.errors import InputError
    from src.utils.config import validate_eval_config
    from tests.conftest import compose_config

    with pytest.raises(InputError, match="ckpt_path is not set"):
        validate_eval_config(compose_config("eval", tmp_path, []))
    with pytest.raises(InputError, match=r"interval=0: expected a level in \(0, 1\)"):
        validate_eval_config(compose_config("eval", tmp_path, ["ckpt_path=m.ckpt", "interval=0"]))
    with pytest.raises(InputError, match="data.max_targets=abc: expected null"):
        validate_eval_config(compose_config("eval", tmp_path, ["ckpt_path=m.ckpt", "+data.max_targets=abc"]))
    validate_eval_config(compose_config("eval", tmp_path, ["ckpt_path=m.ckpt", "debug=fast"]))


def test_a_gpu_accelerator_on_a_machine_without_one_is_refused_with_the_fix(train_config):
    import torch

    from src.utils.config import validate_config

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    with pytest.raises(ValueError, match=r"trainer.accelerator=gpu: no CUDA GPU is available here .* trainer.accelerator=auto"):
        validate_config(train_config("trainer.accelerator=gpu"))
    validate_config(train_config("trainer.accelerator=auto"))  # the fix


def every_check():
    """Every config check of the run, the Trainer, eval, predict, every model and every data set."""
    import yaml
    from omegaconf import OmegaConf

    from src.common.config_checks import checks_of, target_class
    from src.utils.config import EVAL_CHECKS, PREDICT_CHECKS, RUN_CHECKS, TRAINER_CHECKS, data_checks
    from tests.conftest import CONF

    checks = [*RUN_CHECKS, *TRAINER_CHECKS, *EVAL_CHECKS, *PREDICT_CHECKS]
    for path in sorted((CONF / "model").glob("*.yaml")):
        cfg = OmegaConf.create({"model": yaml.safe_load(path.read_text())})
        checks += checks_of(target_class(cfg, "model"), "model")
    for path in sorted((CONF / "data" / "source").glob("*.yaml")):
        cfg = OmegaConf.create({"data": {"source": yaml.safe_load(path.read_text())}})
        checks += data_checks(cfg)
    return {check.key: check for check in checks}.values()


@pytest.mark.parametrize("check", every_check(), ids=lambda c: c.key)
def test_the_example_every_check_prints_passes_it_when_pasted(check):
    """Each config error ends with ``e.g. KEY=EXAMPLE``: parsed as the command line parses it, that value is one
    the key accepts (so the hint works pasted, for every key of every model and data set)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    value = OverridesParser.create().parse_overrides([f"{check.key}={check.example}"])[0].value()
    assert check.ok(value), f"{check.key}={check.example} is refused by its own check"


def test_processes_per_node_follow_trainer_devices():
    """What ``data.storage=auto`` weighs: each process of the node holds the data."""
    from omegaconf import OmegaConf

    from src.utils.config import processes_per_node

    assert processes_per_node(OmegaConf.create({"devices": 2})) == 2
    assert processes_per_node(OmegaConf.create({"devices": [0, 3, 5]})) == 3
    assert processes_per_node(OmegaConf.create({"devices": "auto", "accelerator": "cpu"})) == 1
