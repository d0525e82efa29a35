"""Declarative checks of config values: each configurable object declares its own, next to its code.

A class lists the values it is configured with as ``config_checks`` (keys relative to where its config
sits: ``dropout`` for a model is ``model.dropout`` on the command line), each with what it must be and an
example; :func:`checks_of` collects them along the class hierarchy and :func:`check_settings` applies them
to a composed config before any work, so that a bad one fails as an :class:`~src.common.errors.InputError`
naming the key, the value, what was expected and a valid override, e.g. ``data.batch_size=abc: expected a
positive integer (the global training batch), e.g. data.batch_size=200``. A new model or data set brings
its checks with it; nothing central is edited.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from omegaconf import DictConfig, OmegaConf

from src.common.errors import InputError

# -- what a value may be --------------------------------------------------------------------------------


def integer(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def positive_int(v) -> bool:
    return integer(v) and v >= 1


def optional(check: Callable[[Any], bool]) -> Callable[[Any], bool]:
    return lambda v: v is None or check(v)


def list_of(check: Callable[[Any], bool], non_empty: bool = False) -> Callable[[Any], bool]:
    def ok(v) -> bool:
        return isinstance(v, Sequence) and not isinstance(v, str) and (len(v) > 0 or not non_empty) and all(map(check, v))

    return ok


def one_of(*choices) -> Callable[[Any], bool]:
    return lambda v: not isinstance(v, (list, dict)) and any(v is c or (type(v) is type(c) and v == c) for c in choices)


def level(v) -> bool:
    """A confidence level in (0, 1)."""
    return number(v) and 0 < v < 1


def fraction(v) -> bool:
    """A number in [0, 1)."""
    return number(v) and 0 <= v < 1


POSITIVE_INT = "a positive integer"
WIDTHS = (list_of(positive_int), "a list of positive layer widths")


@dataclass(frozen=True)
class Check:
    """A config key, what its value must be (a predicate and its words), and an example value."""

    key: str
    ok: Callable[[Any], bool]
    expected: str
    example: str


def check_table(*rows: tuple[str, Callable[[Any], bool], str, str]) -> tuple[Check, ...]:
    """``(key, predicate, expected, example)`` rows as :class:`Check` objects."""
    return tuple(Check(*row) for row in rows)


def checks_of(cls: type | None, prefix: str) -> tuple[Check, ...]:
    """The ``config_checks`` a class and its bases declare (the class's own first; a key declared twice counts
    once, the most derived), with ``prefix`` (e.g. ``model``) put before their keys."""
    if cls is None:
        return ()
    seen: dict[str, Check] = {}
    for klass in cls.__mro__:
        for check in klass.__dict__.get("config_checks", ()):
            seen.setdefault(check.key, check)
    return tuple(replace(c, key=f"{prefix}.{c.key}" if prefix else c.key) for c in seen.values())


def target_class(cfg: DictConfig, key: str) -> type | None:
    """The class ``cfg.<key>._target_`` names, or None when there is none or it cannot be imported (the
    instantiation that follows then says why)."""
    target = OmegaConf.select(cfg, f"{key}._target_", default=None)
    if not isinstance(target, str):
        return None
    module, _, name = target.rpartition(".")
    try:
        import importlib

        found = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError, ValueError):
        return None
    return found if isinstance(found, type) else None


_ABSENT = object()


def shown(value) -> str:
    """A value as it is written on the command line (``null``, ``true``, ``[1,2]``)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, Mapping):
        return "{" + ",".join(f"{k}:{shown(v)}" for k, v in value.items()) + "}"
    if isinstance(value, Sequence) and not isinstance(value, str):
        return "[" + ",".join(map(shown, value)) + "]"
    return str(value)


def check_settings(cfg: DictConfig, checks: Sequence[Check]) -> None:
    """Raise an :class:`InputError` naming the first key of ``checks`` present in ``cfg`` whose value is not
    what the key expects (keys absent from ``cfg`` are not checked)."""
    for check in checks:
        value = OmegaConf.select(cfg, check.key, default=_ABSENT)
        if value is _ABSENT:
            continue
        if OmegaConf.is_config(value):
            value = OmegaConf.to_container(value, resolve=True)
        if not check.ok(value):
            raise InputError(f"{check.key}={shown(value)}: expected {check.expected}, e.g. {check.key}={check.example}")
