"""Config checks declared by the classes they configure, collected along the class hierarchy and applied
to a composed config through its _target_."""

import pytest
from omegaconf import OmegaConf

from src.common.config_checks import check_table, check_settings, checks_of, positive_int, target_class
from src.common.errors import InputError


class Base:
    config_checks = check_table(("depth", positive_int, "a positive depth", "3"),
                                ("width", positive_int, "a positive width", "8"))


class Wider(Base):
    """A subclass adds its own keys and may restate a base's (its own wins)."""

    config_checks = check_table(("width", lambda v: positive_int(v) and v >= 16, "a width of at least 16", "16"),
                                ("heads", positive_int, "a positive number of heads", "4"))


def test_a_class_s_checks_and_its_bases_are_collected_with_the_config_prefix():
    checks = {c.key: c for c in checks_of(Wider, "model")}
    assert set(checks) == {"model.width", "model.heads", "model.depth"} and checks["model.width"].example == "16"
    assert checks_of(None, "model") == ()


def test_a_new_model_brings_its_checks_to_validation_without_a_central_table():
    cfg = OmegaConf.create({"model": {"_target_": f"{__name__}.Wider", "width": 8, "depth": 2}})
    assert target_class(cfg, "model") is Wider
    with pytest.raises(InputError, match=r"^model.width=8: expected a width of at least 16, e.g. model.width=16$"):
        check_settings(cfg, checks_of(target_class(cfg, "model"), "model"))
    cfg.model.width = 32
    check_settings(cfg, checks_of(target_class(cfg, "model"), "model"))  # absent keys (heads) are not checked
    assert target_class(OmegaConf.create({"model": {"_target_": "no.such.Module"}}), "model") is None
