"""What every data source produces."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from src.common.errors import InputError


@dataclass
class ExpressionData:
    """Landmark and target expression of the same samples (rows), on the source's own scale."""

    landmarks: np.ndarray  # float32, (n_samples, n_landmarks)
    targets: np.ndarray  # float32, (n_samples, n_targets)
    sample_ids: list[str]
    landmark_ids: list[str]
    target_ids: list[str]
    info: dict = field(default_factory=dict)  # e.g. {"noise_floor_mae": 0.22, "path": "..."}
    # Fixed reference quantiles (one per gene, landmarks then targets) to rank-map samples onto, if any.
    reference: np.ndarray | None = None
    # Per-sample annotations (name -> one string per sample, in sample order), e.g. ancestry or sex.
    sample_annotations: dict[str, list[str]] = field(default_factory=dict)

    def __post_init__(self):
        """Check the shapes (values were checked once, where they were read: see ``check_values``)."""
        where = self.info.get("path", "data source")
        n = len(self.sample_ids)
        for name, arr, ids in (("landmark", self.landmarks, self.landmark_ids), ("target", self.targets, self.target_ids)):
            if arr.shape != (n, len(ids)):
                raise InputError(
                    f"{where}: {name} matrix has shape {arr.shape}; expected {n} samples x {len(ids)} {name} genes"
                )


class ExpressionSource(Protocol):
    """A data set's files, turned into :class:`ExpressionData`."""

    def prepare(self, max_samples: int | None = None, max_targets: int | None = None) -> None:
        """Create any files the source needs (idempotent, atomic, safe under several processes)."""

    def load(self, max_samples: int | None = None, max_targets: int | None = None) -> ExpressionData:
        """Read the data; ``max_samples``/``max_targets`` keep only the first ones (for quick runs).

        A source whose data can stay on disk (the DataModule's ``storage=disk``) also has
        ``shape(max_samples, max_targets)``, its ``(samples, landmarks, targets)`` without reading the data, and
        ``open(max_samples, max_targets)``: the same :class:`ExpressionData` with
        :class:`~src.data.rowfile.RowFile` matrices that read rows on demand."""
