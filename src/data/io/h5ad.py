"""Read AnnData ``.h5ad`` files as a :class:`~src.data.io.base.MatrixReader`.

Following the scverse convention, samples are the ``obs`` rows and features the ``var_names``. The file
is opened in backed mode, so ``X`` stays on disk and is read in row slices (dense or sparse, CSR being
the fast case). Note that AnnData loads ``layers`` into memory even in backed mode.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import h5py
import numpy as np

if TYPE_CHECKING:
    import anndata

from src.data.io.base import MatrixFormatError, check_unique

EXPECTED = "expected an AnnData .h5ad file (HDF5 with obs, var and X)"


class H5ADReader:
    """An ``.h5ad`` file as a :class:`~src.data.io.base.MatrixReader`: values of ``X`` or ``layers[layer]``.

    Keeps the file open until :meth:`close` (or the end of a ``with`` block).
    """

    def __init__(self, path: str | os.PathLike, layer: str | None = None):
        self.path = Path(path)
        self.layer = layer
        self._adata = _open(self.path, ("obs", "var", "X" if layer is None else "layers"))
        try:
            if layer is not None and layer not in self._adata.layers:
                layers = ", ".join(self._adata.layers.keys()) or "none"
                raise MatrixFormatError(f"{self.path}: no layer {layer!r}; the file's layers are: {layers}")
            self.sample_ids = np.array(self._adata.obs_names.astype(str), dtype=object)
            self.feature_ids = np.array(self._adata.var_names.astype(str), dtype=object)
            check_unique(self.sample_ids, "sample", self.path)
            check_unique(self.feature_ids, "feature", self.path)
        except BaseException:
            self.close()
            raise

    def sample_annotations(self) -> dict[str, np.ndarray]:
        """The ``obs`` columns (per-sample annotations), as plain arrays."""
        return {str(name): np.asarray(self._adata.obs[name].astype(str) if self._adata.obs[name].dtype == object
                                      or str(self._adata.obs[name].dtype) == "category" else self._adata.obs[name])
                for name in self._adata.obs.columns}

    def blocks(self, columns: np.ndarray | None = None, block_size: int = 4096) -> Iterator[tuple[slice, np.ndarray]]:
        """Yield ``(sample_slice, float32 values)`` blocks, keeping only ``columns`` (positions) if given."""
        if not self._adata.file.is_open:
            raise MatrixFormatError(f"{self.path}: the reader is closed; open the file again to read it")
        source = self._adata.X if self.layer is None else self._adata.layers[self.layer]
        n_samples = len(self.sample_ids)
        for start in range(0, n_samples, block_size):
            rows = slice(start, min(start + block_size, n_samples))
            try:
                block = source[rows]
            except OSError as err:
                raise MatrixFormatError(
                    f"{self.path}: cannot read samples {rows.start}-{rows.stop - 1} ({err}); "
                    "the file is truncated or corrupted"
                ) from err
            if columns is not None:
                block = block[:, columns]
            if hasattr(block, "toarray"):  # scipy sparse
                block = block.toarray()
            yield rows, np.asarray(block, dtype=np.float32)

    def close(self) -> None:
        """Close the file (idempotent)."""
        self._adata.file.close()

    def __enter__(self) -> H5ADReader:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _open(path: Path, required: tuple[str, ...]) -> anndata.AnnData:
    """``anndata.read_h5ad(path, backed="r")``; clear errors for missing, empty, unreadable or incomplete files."""
    import anndata  # imported on use, like sklearn in src.data.dedup: a fraction of a second at every start

    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file ({EXPECTED})")
    if path.stat().st_size == 0:
        raise MatrixFormatError(f"{path}: the file is empty; {EXPECTED}")
    try:
        with h5py.File(path, "r") as f:
            missing = [name for name in required if name not in f]
    except OSError as err:
        raise MatrixFormatError(f"{path}: not a readable HDF5 file ({err}); {EXPECTED}") from err
    if missing:
        raise MatrixFormatError(f"{path}: not an .h5ad file: no {', '.join(missing)} in it; {EXPECTED}")
    try:
        with warnings.catch_warnings():  # duplicate ids get a clearer error from check_unique
            warnings.filterwarnings("ignore", message=".* names are not unique")
            return anndata.read_h5ad(path, backed="r")
    except (OSError, KeyError, ValueError) as err:
        raise MatrixFormatError(f"{path}: not a readable .h5ad file ({err}); {EXPECTED}") from err
