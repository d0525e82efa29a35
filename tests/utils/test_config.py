import pytest

from src.utils.config import trainer_overrides, validate_config


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
    assert trainer_overrides(train_config("trainer.devices=2"), staged)["strategy"] == "ddp_find_unused_parameters_true"
    assert "strategy" not in trainer_overrides(train_config("trainer.devices=2"), plain)
    assert "strategy" not in trainer_overrides(train_config(), staged)  # one device: no DDP at all


def test_checkpoints_are_always_written_atomically(train_config):
    from src.utils.checkpoint_io import AtomicCheckpointIO

    plain = type("M", (), {})()
    assert [type(p) for p in trainer_overrides(train_config(), plain)["plugins"]] == [AtomicCheckpointIO]


def test_ckpt_path_last_means_this_run_folders_last_checkpoint(train_config):
    from pathlib import Path

    from src.utils.config import resolve_ckpt_path

    cfg = train_config("ckpt_path=last")
    with pytest.raises(FileNotFoundError, match=r"ckpt_path=last: no .*checkpoints/last.ckpt; .*hydra.run.dir="):
        resolve_ckpt_path(cfg)
    last = Path(cfg.paths.output_dir) / "checkpoints" / "last.ckpt"
    last.parent.mkdir(parents=True)
    last.write_bytes(b"x")
    assert resolve_ckpt_path(cfg) == str(last)
