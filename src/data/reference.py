"""Reference quantiles to rank-map new samples onto (D-GEX mapped RNA-seq onto the GEO quantiles)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from src.common.errors import InputError
from src.common.checkpoint_format import read_our_part


def load_reference(path: str | Path, n_genes: int) -> np.ndarray:
    """Reference quantiles from a checkpoint (the training data's, stored with the model) or a text file.

    A text file holds one value per line, ascending. The reference must have one value per gene
    (landmarks and targets together), ``n_genes`` of them.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: reference quantiles not found (expected a checkpoint or a text file)")
    if path.suffix == ".ckpt":
        preprocessing = read_our_part(path).preprocessing or {}
        if preprocessing.get("reference") is None:
            raise InputError(f"{path}: the checkpoint holds no reference quantiles (its data was not quantile-normalised)")
        reference = preprocessing["reference"].numpy()
    else:
        try:
            reference = np.loadtxt(path, dtype=np.float64, ndmin=1)
        except ValueError as err:
            raise InputError(f"{path}: expected one number per line ({err})") from err
    if reference.shape != (n_genes,):
        raise InputError(f"{path}: {reference.size} reference quantiles for {n_genes} genes; expected one per gene")
    if not np.isfinite(reference).all() or (np.diff(reference) < 0).any():
        raise InputError(f"{path}: reference quantiles must be finite and ascending")
    return reference.astype(np.float64)
