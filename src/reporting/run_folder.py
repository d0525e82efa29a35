"""A run folder: what one run (train or eval) leaves behind, written and read back here only.

The files::

    metrics.json          {"metrics": {"val/mae": ..., "test/mae": ...}, "model": ..., "method": ...,
                           "data": ..., "noise_floor_mae": ..., ...}  (NaN metrics are null)
    per_gene_test.tsv     one row per target gene: gene, then each per-gene test metric (mae, pearson)
    per_gene_test.png     histograms of the per-gene test metrics (when logged to W&B)
    failed.json           {"error": "<one message>", "type": "InputError"}: the job of a sweep failed
    .hydra/overrides.yaml the command-line overrides of the run (written by Hydra)

Every other module reads and writes runs through :class:`RunFolder`; none knows these names.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import numpy as np
import yaml

from src.common.errors import InputError
from src.common.atomic import atomic_path


@dataclass(frozen=True)
class PerGene:
    """Per-gene test metrics: the gene ids and one array per metric, in the file's column order."""

    genes: list[str]
    columns: dict[str, np.ndarray]

    def __getitem__(self, name: str) -> np.ndarray:
        return self.columns[name]

    def __len__(self) -> int:
        return len(self.genes)


@dataclass(frozen=True)
class RunRecord:
    """Everything a run folder holds, read back: its identity, summary metrics and per-gene metrics."""

    folder: RunFolder
    method: str
    data: str
    metrics: dict
    noise_floor: float | None
    meta: dict = field(repr=False)
    per_gene: PerGene = field(repr=False)


@dataclass(frozen=True)
class RunFolder:
    """One run's folder; reads and writes its result files (writes are atomic)."""

    path: Path

    METRICS: ClassVar[str] = "metrics.json"
    PER_GENE: ClassVar[str] = "per_gene_test.tsv"
    PER_GENE_FIGURE: ClassVar[str] = "per_gene_test.png"
    OVERRIDES: ClassVar[str] = ".hydra/overrides.yaml"
    SPLITS: ClassVar[str] = "splits.tsv"
    FAILURE: ClassVar[str] = "failed.json"

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", Path(self.path))

    # -- where the files are -------------------------------------------------------------------

    @property
    def metrics_file(self) -> Path:
        return self.path / self.METRICS

    @property
    def per_gene_file(self) -> Path:
        return self.path / self.PER_GENE

    @property
    def per_gene_figure_file(self) -> Path:
        return self.path / self.PER_GENE_FIGURE

    @property
    def overrides_file(self) -> Path:
        return self.path / self.OVERRIDES

    @property
    def splits_file(self) -> Path:
        return self.path / self.SPLITS

    @property
    def failure_file(self) -> Path:
        return self.path / self.FAILURE

    @property
    def name(self) -> str:
        return self.path.name

    def has_metrics(self) -> bool:
        return self.metrics_file.is_file()

    def has_per_gene(self) -> bool:
        return self.per_gene_file.is_file()

    @classmethod
    def find(cls, paths: Iterable[str | Path]) -> list[RunFolder]:
        """Every run folder (one with ``metrics.json``) at or below ``paths``, in path order, each once.

        ``paths`` may be single runs, sweep folders or parents of either; a path that does not exist
        raises ``FileNotFoundError``. No run folder at all gives an empty list.
        """
        folders = []
        for p in map(Path, paths):
            if not p.exists():
                raise FileNotFoundError(f"{p}: no such run or sweep folder")
            folders += [cls(m.parent) for m in sorted(p.rglob(cls.METRICS))]
        return list(dict.fromkeys(folders))

    @classmethod
    def find_failed(cls, paths: Iterable[str | Path]) -> list[RunFolder]:
        """Every run folder at or below ``paths`` whose job failed (one with ``failed.json``), in path order."""
        folders = []
        for p in map(Path, paths):
            folders += [cls(m.parent) for m in sorted(Path(p).rglob(cls.FAILURE))]
        return list(dict.fromkeys(folders))

    # -- writing --------------------------------------------------------------------------------

    def write_metrics(self, metrics: Mapping[str, float], meta: Mapping[str, object] | None = None) -> Path:
        """Write ``{"metrics": metrics, **meta}`` as ``metrics.json`` (NaN becomes null); a failure recorded by
        an earlier attempt in this folder (a resumed job) is removed."""
        payload = {"metrics": {k: (None if math.isnan(v) else v) for k, v in metrics.items()}, **(meta or {})}
        with atomic_path(self.metrics_file) as tmp:
            tmp.write_text(json.dumps(payload, indent=2) + "\n")
        self.failure_file.unlink(missing_ok=True)
        return self.metrics_file

    def write_per_gene(self, gene_ids: Sequence[str], per_gene: Mapping[str, Sequence[float]]) -> Path:
        """Write ``per_gene_test.tsv``: one row per gene, one column per metric (sorted by name).

        ``per_gene`` maps a metric name to one value per gene (a tensor, array or list).
        """
        names = sorted(per_gene)
        with atomic_path(self.per_gene_file) as tmp, open(tmp, "w", newline="") as f:
            writer = csv.writer(f, delimiter="\t")
            writer.writerow(["gene", *names])
            columns = [_as_list(per_gene[n]) for n in names]
            for gene, *values in zip(gene_ids, *columns):
                writer.writerow([gene, *(f"{v:.6g}" for v in values)])
        return self.per_gene_file

    def write_splits(
        self, sample_ids: Mapping[str, Sequence[str]], annotations: Mapping[str, Mapping[str, str]] | None = None
    ) -> Path:
        """Write ``splits.tsv``: columns ``sample_id`` and ``split`` (train, val, calibration, test), one
        row per sample, so that any number of the run can be rebuilt outside the framework; then one
        column per sample annotation (``annotations``: name -> sample id -> value, e.g. ancestry)."""
        annotations = dict(annotations or {})
        with atomic_path(self.splits_file) as tmp, open(tmp, "w", newline="") as f:
            writer = csv.writer(f, delimiter="\t")
            writer.writerow(["sample_id", "split", *annotations])
            for split, ids in sample_ids.items():
                writer.writerows([sample, split, *(a.get(sample, "") for a in annotations.values())] for sample in ids)
        return self.splits_file

    def write_failure(self, message: str, kind: str = "InputError") -> Path:
        """Record that this run (a job of a sweep) failed: ``failed.json`` with its error message and
        the error's type; the sweep summary lists the job as failed with that message."""
        with atomic_path(self.failure_file) as tmp:
            tmp.write_text(json.dumps({"error": message, "type": kind}, indent=2) + "\n")
        return self.failure_file

    # -- reading --------------------------------------------------------------------------------

    def read_failure(self) -> dict | None:
        """``{"error": message, "type": ...}`` if the run failed (``failed.json``), else None."""
        return json.loads(self.failure_file.read_text()) if self.failure_file.is_file() else None

    def read_splits(self) -> dict[str, list[str]]:
        """``splits.tsv`` as split -> sample ids (in file order)."""
        out: dict[str, list[str]] = {}
        with open(self._require(self.splits_file), newline="") as f:
            for row in csv.DictReader(f, delimiter="\t"):
                out.setdefault(row["split"], []).append(row["sample_id"])
        return out

    def read_meta(self) -> dict:
        """The whole ``metrics.json``: ``metrics`` plus what was written with it (model, method, data...)."""
        return json.loads(self._require(self.metrics_file).read_text())

    def read_metrics(self) -> dict[str, float | None]:
        """The summary metrics (``val/*``, ``test/*``); null where a metric was NaN."""
        return self.read_meta().get("metrics", {})

    def read_per_gene(self, required: Sequence[str] = ()) -> PerGene:
        """The per-gene test metrics; empty or ``nan`` cells read as NaN.

        Fails (``ValueError``, naming the file) when the file has no rows or lacks a ``required`` column.
        """
        path = self._require(self.per_gene_file)
        with open(path) as f:
            reader = csv.reader(f, delimiter="\t")
            header = next(reader, [])
            rows = [row for row in reader if row]
        if not rows or not {"gene", *required} <= set(header):
            expected = ", ".join(["gene", *required]) if required else "gene, <metric>..."
            raise InputError(f"{path}: expected a header '{expected}' and one row per gene")
        at = header.index("gene")
        columns = {n: np.array([_number(r[i]) for r in rows]) for i, n in enumerate(header) if i != at}
        return PerGene(genes=[r[at] for r in rows], columns=columns)

    def read_overrides(self) -> list[str]:
        """The run's command-line overrides (Hydra's ``.hydra/overrides.yaml``); none without that file."""
        return yaml.safe_load(self.overrides_file.read_text()) if self.overrides_file.exists() else []

    def read(self, required: Sequence[str] = ("mae", "pearson")) -> RunRecord:
        """Both result files at once; a run without one of them fails, naming the missing file."""
        self._require(self.metrics_file)
        self._require(self.per_gene_file)
        meta = self.read_meta()
        return RunRecord(
            folder=self,
            method=meta.get("method") or meta.get("model", self.name),
            data=meta.get("data") or "data",
            metrics=meta.get("metrics", {}),
            noise_floor=meta.get("noise_floor_mae"),
            meta=meta,
            per_gene=self.read_per_gene(required),
        )

    def _require(self, path: Path) -> Path:
        if not path.is_file():
            raise FileNotFoundError(f"{path}: missing; a run folder needs {self.METRICS} and {self.PER_GENE}")
        return path


def _as_list(values) -> list:
    return values.tolist() if hasattr(values, "tolist") else list(values)


def _number(cell: str) -> float:
    return float(cell) if cell not in ("", "nan") else math.nan
