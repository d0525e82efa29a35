"""An expression matrix already in memory (an ``AnnData`` or a pandas ``DataFrame``) as a
:class:`~src.data.io.base.MatrixReader`, so that it goes through exactly the path a file goes through."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

from src.common.errors import InputError


class MemoryReader:
    """Samples x features values held in memory: an ``AnnData`` (samples are ``obs``, genes ``var``, as
    scverse has it; ``X`` dense or sparse) or a ``DataFrame`` (samples as rows, genes as columns).

    ``obs`` columns of an ``AnnData`` are its :meth:`sample_annotations`, as a GCTX's column metadata or an
    h5ad file's ``obs`` are for the file readers. ``name`` stands for the data in messages.
    """

    def __init__(self, data, name: str = "the data"):
        import pandas as pd

        self.path = Path(name)
        self._obs = None
        if isinstance(data, pd.DataFrame):
            self._values = data
            self.sample_ids = np.asarray([str(s) for s in data.index], dtype=object)
            self.feature_ids = np.asarray([str(f) for f in data.columns], dtype=object)
        elif hasattr(data, "obs_names") and hasattr(data, "var_names") and hasattr(data, "X"):
            if data.X is None:
                raise InputError(f"{name}: the AnnData has no X; expected landmark values in X (samples x genes)")
            self._values, self._obs = data.X, data.obs
            self.sample_ids = np.asarray([str(s) for s in data.obs_names], dtype=object)
            self.feature_ids = np.asarray([str(f) for f in data.var_names], dtype=object)
        else:
            raise InputError(f"{name}: a {type(data).__name__} cannot be predicted from; expected an AnnData "
                             "(samples as obs, genes as var) or a pandas DataFrame (samples as rows, genes as columns)")

    def sample_annotations(self) -> dict[str, np.ndarray]:
        """The ``obs`` columns of an ``AnnData`` (none for a ``DataFrame``)."""
        if self._obs is None:
            return {}
        return {str(c): self._obs[c].to_numpy() for c in self._obs.columns}

    def blocks(self, columns: np.ndarray | None = None, block_size: int = 4096) -> Iterator[tuple[slice, np.ndarray]]:
        """Yield ``(sample_slice, float32 values)`` blocks, keeping only ``columns`` (positions) if given."""
        n = len(self.sample_ids)
        for start in range(0, n, block_size):
            rows = slice(start, min(start + block_size, n))
            if hasattr(self._values, "iloc"):
                block = self._values.iloc[rows] if columns is None else self._values.iloc[rows, columns]
                block = block.apply(_numeric, name=str(self.path)).to_numpy(dtype=np.float32)
            else:
                block = self._values[rows] if columns is None else self._values[rows][:, columns]
                block = block.toarray() if hasattr(block, "toarray") else np.asarray(block)
                block = block.astype(np.float32, copy=False)
            yield rows, block


def _numeric(column, name: str):
    """A DataFrame column as numbers, or an error naming the column (e.g. a column of gene symbols)."""
    import pandas as pd

    try:
        return pd.to_numeric(column)
    except (ValueError, TypeError):
        bad = next(v for v in column if not _is_number(v))
        raise InputError(f"{name}: column {column.name!r} holds {bad!r}, not a number; expected samples as rows and "
                         "genes as columns, values only (move annotations into the index: df.set_index(...))") from None


def _is_number(value) -> bool:
    try:
        float(value)
        return True
    except (ValueError, TypeError):
        return False
