"""The embedded synthetic data set as a source: generated once into a GCTX file, then read like any other."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np

from src.data.cache import open_cache, write_cache
from src.data.io.gctx import read_header, read_meta
from src.data.sources.base import ExpressionData
from src.data.sources.gctx import GCTXSource
from src.data.synthetic import SyntheticSpec, ensure_synthetic_gctx, ensure_synthetic_graph


class SyntheticSource:
    """Synthetic profiles (see :mod:`src.data.synthetic`) cached as ``directory/synthetic_<hash>.gctx``.

    ``max_samples``/``max_targets`` generate a smaller file rather than reading part of a large one.
    The data carries its known noise floor in ``info["noise_floor_mae"]`` and the path of the true landmark
    graph (``directory/synthetic_<hash>_graph.tsv``, see :func:`~src.data.synthetic.landmark_graph`) in
    ``info["landmark_graph"]``.
    """

    def __init__(self, directory: str | Path, **spec):
        self.directory = Path(directory)
        # YAML gives lists (or ListConfigs) where the spec holds (low, high) tuples.
        self.spec = SyntheticSpec(**{k: tuple(v) if isinstance(v, Sequence) else v for k, v in spec.items()})

    def _spec(self, max_samples: int | None, max_targets: int | None) -> SyntheticSpec:
        return replace(
            self.spec,
            n_samples=min(self.spec.n_samples, max_samples or self.spec.n_samples),
            n_targets=min(self.spec.n_targets, max_targets or self.spec.n_targets),
        )

    def prepare(self, max_samples: int | None = None, max_targets: int | None = None) -> None:
        spec = self._spec(max_samples, max_targets)
        ensure_synthetic_gctx(spec, self.directory)
        ensure_synthetic_graph(spec, self.directory)

    def shape(self, max_samples: int | None = None, max_targets: int | None = None) -> tuple[int, int, int]:
        """``(samples, landmarks, targets)`` of the data, from the spec (nothing generated)."""
        spec = self._spec(max_samples, max_targets)
        return spec.n_samples, spec.n_landmarks, spec.n_targets

    def open(self, max_samples: int | None = None, max_targets: int | None = None) -> ExpressionData:
        """The data left on disk, read by rows (the DataModule's ``storage=disk``): the GCTX file's landmarks and
        targets written once more as a row cache (``synthetic_<hash>_rows.h5``) the first time this is asked."""
        spec = self._spec(max_samples, max_targets)
        cache = self.directory / f"synthetic_{spec.key()}_rows.h5"
        if not cache.exists():
            data = self.load(max_samples, max_targets)
            ids = {"sample_ids": data.sample_ids, "landmark_ids": data.landmark_ids, "target_ids": data.target_ids}
            write_cache(cache, np.hstack([data.landmarks, data.targets]), len(data.landmark_ids), ids, data.info)
        landmarks, targets, ids, info = open_cache(cache)
        return ExpressionData(landmarks, targets, **ids, info={**info, "cache": str(cache)})

    def load(self, max_samples: int | None = None, max_targets: int | None = None) -> ExpressionData:
        path = ensure_synthetic_gctx(self._spec(max_samples, max_targets), self.directory)
        header, roles = read_header(path), read_meta(path, "feature")["role"]
        ids = header.feature_ids
        data = GCTXSource(path, ids[roles == "landmark"], ids[roles == "target"]).load()
        data.info["noise_floor_mae"] = float(header.attrs["noise_floor_mae"])
        data.info["landmark_graph"] = str(ensure_synthetic_graph(self._spec(max_samples, max_targets), self.directory))
        return data
