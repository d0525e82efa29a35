import pytest

from src.utils.config import choose_strategy, save_config, validate_config


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
    for model, devices, expected in ((staged, 2, "ddp_find_unused_parameters_true"), (plain, 2, "auto"), (staged, 1, "auto")):
        cfg = train_config(f"trainer.devices={devices}")
        choose_strategy(cfg, model)
        assert cfg.trainer.strategy == expected  # written into the config: what ran is what is saved


def test_checkpoints_are_always_written_atomically(train_config):
    import hydra

    from src.utils.checkpoint_io import AtomicCheckpointIO

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
    choose_strategy(cfg, type("M", (), {"has_unused_parameters": True})())
    assert save_config(cfg) == saved
    assert OmegaConf.load(saved).trainer.strategy == "ddp_find_unused_parameters_true"


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

    from src.common.checkpoint import KEY

    ours = {KEY: {"model_class": "src.models.linear.LinearRegression"}, "state_dict": {}}
    torch.save(ours, last)  # weights only, like best.ckpt: nothing to resume
    with pytest.raises(ValueError, match="holds weights only .*checkpoints/last.ckpt"):
        resolve_ckpt_path(cfg)
    torch.save({**ours, "optimizer_states": [], "loops": {}}, last)
    assert resolve_ckpt_path(cfg) == str(last)
