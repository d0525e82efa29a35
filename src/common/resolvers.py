"""OmegaConf resolvers our configs use, all registered here, once, when ``src`` is imported."""

import os
import re
from datetime import datetime

from omegaconf import OmegaConf

from src.common.precision import RESOLVER as AUTO_PRECISION, resolve_precision


def run_stamp(time_format: str) -> str:
    """The name of a run folder: the start time in ``time_format``, or, in a process started by torchrun,
    the job's rendezvous id (``TORCHELASTIC_RUN_ID``: a fresh id on one node, ``--rdzv-id`` on several),
    which every process of the job shares, so that they all write into one folder. Start times differ
    between processes; torchrun's default id ``none`` (several nodes without ``--rdzv-id``) falls back to them."""
    run_id = os.environ.get("TORCHELASTIC_RUN_ID", "none")
    if run_id != "none":
        return "torchrun_" + re.sub(r"[^A-Za-z0-9_.-]", "_", run_id)
    return datetime.now().strftime(time_format)


def register_resolvers() -> None:
    """``${len:x}``: the length of a list (e.g. the depth of a network in a run's name);
    ``${run_stamp:format}``: a run folder's name (:func:`run_stamp`), the same for one call in a process;
    ``${auto_precision:accelerator}``: the training precision for the hardware
    (:func:`src.common.precision.choose_precision`)."""
    if not OmegaConf.has_resolver("len"):
        OmegaConf.register_new_resolver("len", lambda value: len(value))
    if not OmegaConf.has_resolver("run_stamp"):
        OmegaConf.register_new_resolver("run_stamp", run_stamp, use_cache=True)
    if not OmegaConf.has_resolver(AUTO_PRECISION):
        OmegaConf.register_new_resolver(AUTO_PRECISION, resolve_precision)
