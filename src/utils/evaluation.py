"""What ``src.eval`` checks before evaluating a checkpoint: the data to evaluate on, cut as the model was
trained, with the model's genes."""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig, OmegaConf, open_dict

from src.common.errors import InputError


def data_config(cfg: DictConfig, model) -> DictConfig:
    """The data to evaluate on: ``data=...`` if given, else the checkpoint's own data config, with any
    ``data.*`` overrides (e.g. those of ``debug=fast``) applied over it."""
    given = cfg.get("data")
    if given is not None and "_target_" in given:
        return with_model_targets(given, model)
    if not model.data_config:
        raise InputError(f"{cfg.ckpt_path}: the checkpoint holds no data config; choose the data, e.g. data=synthetic "
                         "or data=matrix data.source.path=FILE data.source.landmark_map=... data.source.target_map=...")
    merged = OmegaConf.merge(OmegaConf.create(model.data_config), given or {})
    resolve_stored_paths(merged, cfg.ckpt_path, overridden=OmegaConf.to_container(given) if given else {})
    return with_model_targets(merged, model)


def with_model_targets(data_cfg: DictConfig, model) -> DictConfig:
    """The data keep the targets the model predicts: a model with targets that are also landmark genes (a
    probe-level GEO model evaluated on gene-level RNA-seq, D-GEX's cross-platform protocol) is scored on all
    of them (``data.source.measured_targets=keep``); a model trained without them, without them."""
    source = data_cfg.get("source")
    if source is not None and "measured_targets" in source:
        space = model.preprocessing
        shared = set(space.target_ids) & set(space.landmark_ids)
        with open_dict(data_cfg):
            data_cfg.source.measured_targets = "keep" if shared else "drop"
    return data_cfg


STORED_PATHS = ("path", "landmark_map", "target_map", "sample_annotations")


def training_folder(ckpt_path) -> Path | None:
    """The folder training ran in, from the run's ``.hydra/hydra.yaml`` beside ``checkpoints/`` (None if absent)."""
    hydra_file = Path(ckpt_path).resolve().parent.parent / ".hydra" / "hydra.yaml"
    try:
        cwd = OmegaConf.load(hydra_file).hydra.runtime.cwd
    except Exception:  # noqa: BLE001 - no run folder around the checkpoint: nothing to resolve against
        return None
    return Path(cwd) if cwd else None


def resolve_stored_paths(data_cfg: DictConfig, ckpt_path, overridden: dict) -> None:
    """The checkpoint's data config names files as training was given them; a relative one is resolved against
    the folder training ran in when it is not found from here, or refused with the override that fixes it
    (``+data.source.path=...``: ``src.eval``'s config has no data node to override without ``+``)."""
    source = data_cfg.get("source")
    if source is None:
        return
    given = (overridden.get("source") or {}) if isinstance(overridden, dict) else {}
    for key in STORED_PATHS:
        value = source.get(key)
        if not isinstance(value, str) or key in given or Path(value).is_absolute() or Path(value).exists():
            continue
        folder = training_folder(ckpt_path)
        if folder is not None and (folder / value).exists():
            source[key] = str(folder / value)
            continue
        raise InputError(
            f"{ckpt_path}: the checkpoint's data.source.{key}={value} is relative to the folder training ran in "
            f"({folder or 'unknown'}) and is not found from {Path.cwd()}; pass the file, e.g. "
            f"+data.source.{key}={(folder / value) if folder else Path(value).resolve()}"
        )


def check_sizes(model, data_cfg: DictConfig, what: str) -> None:
    """Before any data work: a checkpoint trained on the first N target genes (``data.max_targets``, e.g.
    ``debug=fast``) is evaluated on data cut the same way, or the error says what to set."""
    trained = (model.data_config or {}).get("max_targets")
    asked = data_cfg.get("max_targets")
    if trained and asked != trained:
        raise InputError(
            f"{what}: the model was trained on the first {trained} target genes (data.max_targets={trained}, "
            f"e.g. by debug=fast), but the data to evaluate keep {asked or 'all of them'}; "
            f"pass data.max_targets={trained} (or debug=fast), or evaluate a model trained on all targets"
        )


def check_same_genes(model_space, data_space, what: str) -> None:
    """Fail clearly when a data set's landmark or target genes differ from those a model was trained on."""
    for kind in ("landmark_ids", "target_ids"):
        ours, theirs = list(getattr(model_space, kind)), list(getattr(data_space, kind))
        if ours != theirs:
            missing = [g for g in ours if g not in set(theirs)]
            raise InputError(
                f"{what}: the data's {kind.split('_')[0]} genes differ from the model's "
                f"({len(theirs)} vs {len(ours)} genes, {len(missing)} of the model's missing, e.g. {missing[:3]})"
            )
