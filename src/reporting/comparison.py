"""Collect finished runs and compare them the way the D-GEX paper reports results.

Runs are read from their run folders (:class:`~src.reporting.run_folder.RunFolder`, written by
``src.train`` and ``src.eval``) and grouped by the data set they were tested on; within a group every
method is compared with ``lr`` (linear regression) and with the best D-GEX run, gene by gene.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from src.reporting.run_folder import RunFolder
from src.reporting.tables import markdown_table


@dataclass
class Run:
    """One evaluated model: its name, data set, summary metrics and per-gene test metrics."""

    path: Path
    method: str
    data: str
    metrics: dict
    genes: list[str]
    per_gene_mae: np.ndarray
    per_gene_pearson: np.ndarray
    noise_floor: float | None = None
    label: str = ""
    repeat: str | None = None  # its seed and fold (e.g. "seed=2 data.fold=0"): pairs runs of two methods

    def mae_on(self, genes: list[str]) -> np.ndarray:
        index = {g: i for i, g in enumerate(self.genes)}
        return self.per_gene_mae[[index[g] for g in genes]]


def read_run(folder: str | Path | RunFolder) -> Run:
    """Read one run folder; errors name the folder and the missing or malformed file."""
    record = (folder if isinstance(folder, RunFolder) else RunFolder(folder)).read(required=("mae", "pearson"))
    per_gene = record.per_gene
    # Genes constant in the training split are not scored (their MAE is ~0 by construction).
    keep = np.ones(len(per_gene.genes), dtype=bool)
    if "scored" in per_gene.columns:
        keep = per_gene["scored"] > 0
    return Run(
        path=record.folder.path,
        method=record.method,
        data=record.data,
        metrics=record.metrics,
        genes=[g for g, k in zip(per_gene.genes, keep) if k],
        per_gene_mae=per_gene["mae"][keep],
        per_gene_pearson=per_gene["pearson"][keep],
        noise_floor=record.noise_floor,
        repeat=" ".join(o for o in record.folder.read_overrides() if o.startswith(("seed=", "data.fold="))) or None,
    )


def find_runs(paths: list[str | Path]) -> list[Run]:
    """Every run folder at or below ``paths`` (single runs, sweep folders, or parents of either)."""
    folders = RunFolder.find(paths)
    if not folders:
        raise FileNotFoundError(f"no run folders (with {RunFolder.METRICS}) under {', '.join(map(str, paths))}")
    runs = [read_run(f) for f in folders]
    _label(runs)
    return runs


def _label(runs: list[Run]) -> None:
    """Unique row labels: the method name, plus the folder name where a method has several runs."""
    counts: dict[tuple[str, str], int] = {}
    for r in runs:
        counts[(r.data, r.method)] = counts.get((r.data, r.method), 0) + 1
    for r in runs:
        r.label = r.method if counts[(r.data, r.method)] == 1 else f"{r.method} ({r.path.name})"


@dataclass
class Comparison:
    """The rows of one data set's comparison table, best first."""

    data: str
    rows: list[dict] = field(default_factory=list)
    noise_floor: float | None = None
    reference: Run | None = None  # lr
    dgex: Run | None = None  # the best D-GEX run


def compare(runs: list[Run]) -> list[Comparison]:
    """One :class:`Comparison` per data set."""
    out = []
    for data in dict.fromkeys(r.data for r in runs):
        group = sorted((r for r in runs if r.data == data), key=lambda r: r.per_gene_mae.mean())
        lr = min((r for r in group if r.method == "lr"), key=lambda r: r.per_gene_mae.mean(), default=None)
        dgex = next((r for r in group if r.method.startswith("dgex")), None)
        floors = [r.noise_floor for r in group if r.noise_floor]
        comparison = Comparison(data, noise_floor=floors[0] if floors else None, reference=lr, dgex=dgex)
        for run in group:
            mae = run.per_gene_mae
            row = {
                "method": run.label,
                "mae": float(mae.mean()),
                "mae_sd": float(mae.std()),
                "pearson": float(np.nanmean(run.per_gene_pearson)),
                "deployed_mae": run.metrics.get("test/deployed_mae"),
                "vs_lr": _relative(run, lr),
                "vs_dgex": _relative(run, dgex),
                "beats_lr": _fraction_better(run, lr),
                "vs_floor": float(mae.mean() / comparison.noise_floor) if comparison.noise_floor else None,
            }
            comparison.rows.append(row)
        out.append(comparison)
    return out


def _relative(run: Run, reference: Run | None) -> float | None:
    """Relative improvement of ``run`` over ``reference`` in percent (positive: lower error)."""
    if reference is None or reference is run:
        return None
    ref = reference.mae_on(run.genes).mean()
    return float(100 * (ref - run.per_gene_mae.mean()) / ref)


def _fraction_better(run: Run, reference: Run | None) -> float | None:
    """Share of genes (percent) on which ``run`` has a lower MAE than ``reference``."""
    if reference is None or reference is run:
        return None
    return float(100 * np.mean(run.per_gene_mae < reference.mae_on(run.genes)))


def comparison_table(comparison: Comparison) -> str:
    """The comparison as a Markdown table, with the noise floor when the data has one."""
    header = ["method", "MAE (mean ± sd over genes)", "deployed MAE", "Pearson", "vs LR", "vs D-GEX", "genes better than LR"]
    if comparison.noise_floor:
        header.append("MAE / noise floor")

    def pct(v, signed=True):
        return "" if v is None else (f"{v:+.2f}%" if signed else f"{v:.2f}%")

    rows = []
    for row in comparison.rows:
        cells = [
            row["method"],
            f"{row['mae']:.4f} ± {row['mae_sd']:.4f}",
            "" if row.get("deployed_mae") is None else f"{row['deployed_mae']:.4f}",
            f"{row['pearson']:.4f}",
            pct(row["vs_lr"]),
            pct(row["vs_dgex"]),
            pct(row["beats_lr"], signed=False),
        ]
        if comparison.noise_floor:
            cells.append(f"{row['vs_floor']:.3f}")
        rows.append(cells)
    table = markdown_table(header, rows)
    deployed = [(r["mae"], r.get("deployed_mae")) for r in comparison.rows if r.get("deployed_mae") is not None]
    if deployed and all(abs(m - d) < 5e-4 for m, d in deployed):
        table += ("\n\nThese data are not quantile-normalised: the deployed path (landmarks preprocessed as "
                  "`src.predict` does) and D-GEX's protocol are the same, so 'deployed MAE' equals 'MAE'.")
    elif deployed:
        table += ("\n\n'MAE' follows D-GEX's protocol (each test sample's landmarks quantile-normalised together "
                  "with its true targets, comparable with the papers); 'deployed MAE' is what `src.predict` "
                  "delivers on a new profile (landmarks rank-mapped alone).")
    if comparison.noise_floor:
        table += f"\n\nNoise floor (MAE of the true function): {comparison.noise_floor:.4f}"
    return table
