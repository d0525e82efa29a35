"""The checkpoint contract: the one module that reads and writes our part of a Lightning checkpoint.

Lightning's checkpoint (``state_dict``, ``hyper_parameters``, optimiser and callback states) gets one
more entry, ``checkpoint["gexinfer"]``, holding what evaluation and prediction need besides the
weights, as plain Python values and tensors (readable with ``torch.load(weights_only=True)``):

- ``model_class``: the training plan's import path, to rebuild it without knowing it in advance;
- ``preprocessing``: the fitted preprocessing (``src.data.preprocessing.Preprocessing.to_dict()``);
- ``data_config``: the resolved data config, so ``src.eval`` can rebuild the same splits;
- ``names``: how reports name the method and the data;
- ``extras``: what a training plan adds of its own (e.g. hyperparameters chosen on validation).

Everything else (models, the reference quantiles of a GEO-trained checkpoint, eval, predict) reads
and writes it through these functions.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch

from src.common.atomic import atomic_path
from src.common.errors import InputError

KEY = "gexinfer"


@dataclass
class OurPart:
    """Our entry of a checkpoint (see the module docstring)."""

    model_class: str
    preprocessing: dict | None = None
    data_config: dict | None = None
    names: dict = field(default_factory=dict)
    extras: dict = field(default_factory=dict)


def store(checkpoint: dict, part: OurPart) -> None:
    """Write ``part`` into a checkpoint dictionary that Lightning is about to save."""
    checkpoint[KEY] = {
        "model_class": part.model_class,
        "preprocessing": part.preprocessing,
        "data_config": part.data_config,
        "names": dict(part.names),
        "extras": dict(part.extras),
    }


def our_part(checkpoint: dict, where: str | Path = "checkpoint") -> OurPart:
    """Our entry of a loaded checkpoint dictionary; a clear error when it is not one of ours."""
    entry = checkpoint.get(KEY) if isinstance(checkpoint, dict) else None
    if not isinstance(entry, dict) or "model_class" not in entry:
        raise InputError(f"{where}: not a gexinfer checkpoint (expected the '{KEY}' and 'state_dict' entries)")
    extras = dict(entry.get("extras") or {})
    if "selected" in entry:  # checkpoints written before the extras entry existed
        extras.setdefault("selected", entry["selected"])
    return OurPart(
        model_class=entry["model_class"],
        preprocessing=entry.get("preprocessing", entry.get("gene_space")),  # "gene_space": checkpoints of before 2026-12
        data_config=entry.get("data_config"),
        names=dict(entry.get("names") or {}),
        extras=extras,
    )


def read_checkpoint(path: str | Path) -> dict:
    """``torch.load(weights_only=True)`` of one of our checkpoints, with errors that name the file and
    the problem (missing, truncated, corrupted, not a torch file, not ours)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such checkpoint file")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception as err:  # truncated, corrupted, or not a torch file at all
        cause = f"{type(err).__name__}: {err}"[:300]
        raise InputError(f"{path}: not a readable checkpoint ({cause}); expected a checkpoint written by src.train, "
                         "e.g. outputs/train/<run>/checkpoints/best.ckpt") from err
    if not isinstance(ckpt, dict) or "state_dict" not in ckpt:
        raise InputError(f"{path}: not a gexinfer checkpoint (expected the '{KEY}' and 'state_dict' entries)")
    our_part(ckpt, path)
    return ckpt


def read_our_part(path: str | Path) -> OurPart:
    """Our entry of the checkpoint file ``path`` (the weights are memory-mapped, not read)."""
    return our_part(read_checkpoint(path), path)


def add_extras(path: str | Path, **extras) -> None:
    """Add entries to the ``extras`` of our part of the checkpoint file ``path`` (rewritten atomically)."""
    read_checkpoint(path)  # refuses files that are not ours, with a clear error
    ckpt = torch.load(path, map_location="cpu", weights_only=True)  # in memory: the file is rewritten below
    ckpt[KEY].setdefault("extras", {}).update(extras)
    with atomic_path(path) as tmp:
        torch.save(ckpt, tmp)
