"""A data set stored as one GCTX file with gene-level ids."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from src.common.errors import InputError
from src.data.io.gctx import GCTXError, iter_blocks, locate, read_header
from src.data.io.text import read_text
from src.data.transforms import check_values
from src.data.sources.base import ExpressionData


def read_id_list(ids: Sequence[str] | str | Path, what: str) -> list[str]:
    """Ids given inline, or as a text file with one id per line (first tab-separated field)."""
    if isinstance(ids, (str, Path)):
        path = Path(ids)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: {what} id list not found (expected a text file, one id per line)")
        out = [line.split("\t")[0].strip() for line in read_text(path).splitlines()]
        out = [i for i in out if i]
        if not out:
            raise InputError(f"{path}: the {what} id list is empty; expected one id per line")
        return out
    return [str(i) for i in ids]


class GCTXSource:
    """Landmarks and targets read from one GCTX file by their feature ids.

    Args:
        path: the GCTX file (samples x features as h5py reads it).
        landmark_ids: landmark feature ids, inline or a text file with one id per line.
        target_ids: target feature ids, inline or a text file.
        block_size: samples read per block (the file is never read at once with fancy indexing).
    """

    def __init__(self, path: str | Path, landmark_ids, target_ids, block_size: int = 4096):
        self.path = Path(path)
        self.landmark_ids = read_id_list(landmark_ids, "landmark")
        self.target_ids = read_id_list(target_ids, "target")
        self.block_size = block_size
        overlap = set(self.landmark_ids) & set(self.target_ids)
        if overlap:
            raise InputError(f"{len(overlap)} ids are both landmarks and targets (e.g. {sorted(overlap)[:3]})")

    def prepare(self, max_samples: int | None = None, max_targets: int | None = None) -> None:
        if not self.path.exists():
            raise FileNotFoundError(f"{self.path}: GCTX file not found")

    def load(self, max_samples: int | None = None, max_targets: int | None = None) -> ExpressionData:
        header = read_header(self.path)
        target_ids = self.target_ids[:max_targets] if max_targets else self.target_ids
        lm_cols = locate(header, self.landmark_ids, "landmark")
        tg_cols = locate(header, target_ids, "target")
        n = min(header.shape[0], max_samples or header.shape[0])
        if n == 0:
            raise GCTXError(f"{self.path}: the file holds no samples")
        columns = np.concatenate([lm_cols, tg_cols])
        n_lm = len(lm_cols)
        # Each block goes straight into its two arrays: no combined copy of the data.
        landmarks = np.empty((n, n_lm), dtype=np.float32)
        targets = np.empty((n, len(tg_cols)), dtype=np.float32)
        for rows, block in iter_blocks(self.path, columns, self.block_size):
            if rows.start >= n:
                break
            stop = min(rows.stop, n)
            check_values(block[: stop - rows.start], str(self.path), header.sample_ids, header.feature_ids[columns], rows.start)
            landmarks[rows.start : stop] = block[: stop - rows.start, :n_lm]
            targets[rows.start : stop] = block[: stop - rows.start, n_lm:]
        return ExpressionData(
            landmarks=landmarks,
            targets=targets,
            sample_ids=list(header.sample_ids[:n]),
            landmark_ids=self.landmark_ids,
            target_ids=target_ids,
            info={"path": str(self.path)},
        )
