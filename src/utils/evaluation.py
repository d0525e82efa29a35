"""What ``src.eval`` checks before evaluating a checkpoint: the data to evaluate on, cut as the model was
trained, with the model's genes."""

from __future__ import annotations

from omegaconf import DictConfig, OmegaConf

from src.common.errors import InputError


def data_config(cfg: DictConfig, model) -> DictConfig:
    """The data to evaluate on: ``data=...`` if given, else the checkpoint's own data config, with any
    ``data.*`` overrides (e.g. those of ``debug=fast``) applied over it."""
    given = cfg.get("data")
    if given is not None and "_target_" in given:
        return given
    if not model.data_config:
        raise InputError(f"{cfg.ckpt_path}: the checkpoint holds no data config; choose the data, e.g. data=synthetic "
                         "or data=matrix data.source.path=FILE data.source.landmark_map=... data.source.target_map=...")
    return OmegaConf.merge(OmegaConf.create(model.data_config), given or {})


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
