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
    assert trainer_overrides(train_config("trainer.devices=2"), staged) == {"strategy": "ddp_find_unused_parameters_true"}
    assert trainer_overrides(train_config("trainer.devices=2"), plain) == {}
    assert trainer_overrides(train_config(), staged) == {}  # one device: no DDP at all
