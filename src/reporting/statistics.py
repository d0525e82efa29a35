"""Comparisons that survive statistics: methods run over several seeds (or folds), compared gene by gene.

For one test data set, every method's runs are its repeats (seeds, folds). Reported per method:

- test MAE and Pearson: mean ± sd over its runs (each run's MAE is its mean over genes);
- the improvement over LR, over ridge (LR-L2) and over D-GEX in percent: per repeat (runs paired by their
  seed or fold when both methods have it, else every pairing of their runs), mean ± sd; against ridge also
  a paired two-sided Wilcoxon signed-rank test over those repeats (is the method's test MAE lower than
  ridge's on the same folds?) and one over genes;
- where the runs measured them: interval coverage (nominal 0.9) and the share of reliable genes;
- against the best method (lowest mean MAE): a paired two-sided Wilcoxon signed-rank test over genes
  of the per-gene MAE averaged over each method's runs, its p-value, and the share of genes on which
  the method's MAE is lower than the best's.

A claim "A beats B" needs a small p (e.g. < 0.01) *and* a spread over seeds smaller than the gap.
"""

from __future__ import annotations

import itertools
import statistics
from dataclasses import dataclass

import numpy as np
from scipy.stats import wilcoxon

from src.reporting.tables import markdown_table


@dataclass
class MethodSummary:
    method: str
    runs: list
    mae: list[float]
    pearson: list[float]
    per_gene: np.ndarray  # per-gene MAE averaged over the runs, on ``genes``
    vs_lr: list[float] | None = None
    vs_dgex: list[float] | None = None
    vs_ridge: list[float] | None = None
    p_vs_ridge_repeats: float | None = None  # paired over folds/seeds
    p_vs_ridge_genes: float | None = None  # paired over genes (per-gene MAE averaged over runs)
    p_vs_best: float | None = None
    won_vs_best: float | None = None

    def metric(self, name: str) -> list[float]:
        """``name`` of every run that recorded it (e.g. ``test/interval_coverage``)."""
        return [float(r.metrics[name]) for r in self.runs if r.metrics.get(name) is not None]


def _repeat(run) -> str | None:
    return run.metrics.get("_repeat") or getattr(run, "repeat", None)


def _pairs(method: MethodSummary, reference: MethodSummary) -> tuple[list[tuple[float, float]], bool]:
    """(method MAE, reference MAE) per repeat, paired by seed and fold when both have them (True), else every
    pairing of their runs (False). A deterministic reference run once per fold pairs with every seed of it."""
    by_repeat = {_repeat(r): float(r.per_gene_mae.mean()) for r in reference.runs}
    by_fold = {}
    for r in reference.runs:
        by_fold.setdefault(_fold(_repeat(r)), []).append(float(r.per_gene_mae.mean()))
    pairs = []
    for run, mae in zip(method.runs, method.mae):
        key = _repeat(run)
        if key is not None and key in by_repeat:
            pairs.append((mae, by_repeat[key]))
        elif key is not None and len(by_fold.get(_fold(key), [])) == 1:
            pairs.append((mae, by_fold[_fold(key)][0]))
    if pairs:
        return pairs, True
    return list(itertools.product(method.mae, reference.mae)), False


def _fold(repeat: str | None) -> str | None:
    """The ``data.fold=`` part of a repeat's key, if any."""
    return next((p for p in (repeat or "").split() if p.startswith("data.fold=")), None)


def _improvements(method: MethodSummary, reference: MethodSummary | None) -> list[float] | None:
    """Per-repeat relative MAE reduction (percent) of ``method`` over ``reference``."""
    if reference is None or reference is method:
        return None
    return [100 * (ref - mae) / ref for mae, ref in _pairs(method, reference)[0]]


def _paired_p(method: MethodSummary, reference: MethodSummary | None) -> float | None:
    """Two-sided Wilcoxon signed-rank p over the repeats paired with ``reference`` (None when unpaired)."""
    if reference is None or reference is method:
        return None
    pairs, paired = _pairs(method, reference)
    diff = np.array([m - r for m, r in pairs])
    if not paired or len(diff) < 2:
        return None
    return float(wilcoxon(diff).pvalue) if np.any(diff != 0) else 1.0


def summarise_methods(runs: list) -> list[MethodSummary]:
    """One :class:`MethodSummary` per method of ``runs`` (one test data set), best (lowest mean MAE) first."""
    genes = sorted(set.intersection(*(set(r.genes) for r in runs)))
    by_method: dict[str, list] = {}
    for run in runs:
        by_method.setdefault(run.method, []).append(run)
    out = []
    for method, group in by_method.items():
        per_gene = np.mean([r.mae_on(genes) for r in group], axis=0)
        out.append(MethodSummary(method, group, [float(r.per_gene_mae.mean()) for r in group],
                                 [float(np.nanmean(r.per_gene_pearson)) for r in group], per_gene))
    out.sort(key=lambda m: statistics.mean(m.mae))
    best = out[0]
    lr = next((m for m in out if m.method == "lr"), None)
    ridge = next((m for m in out if m.method == "lr_l2"), None)
    dgex = next((m for m in out if m.method.startswith("dgex")), None)
    for m in out:
        m.vs_lr, m.vs_dgex, m.vs_ridge = _improvements(m, lr), _improvements(m, dgex), _improvements(m, ridge)
        m.p_vs_ridge_repeats = _paired_p(m, ridge)
        if ridge is not None and m is not ridge:
            diff = m.per_gene - ridge.per_gene
            m.p_vs_ridge_genes = float(wilcoxon(m.per_gene, ridge.per_gene).pvalue) if np.any(diff != 0) else 1.0
        if m is not best:
            diff = m.per_gene - best.per_gene
            m.p_vs_best = float(wilcoxon(m.per_gene, best.per_gene).pvalue) if np.any(diff != 0) else 1.0
            m.won_vs_best = float(100 * np.mean(diff < 0))
    return out


def _mean_sd(values: list[float] | None, fmt: str = "{:.4f}", pct: bool = False) -> str:
    if not values:
        return ""
    unit = "%" if pct else ""
    mean = fmt.format(statistics.mean(values))
    if len(values) == 1:
        return mean + unit
    return f"{mean} ± {fmt.replace('+', '').format(statistics.stdev(values))}{unit}"


def _p(value: float | None) -> str:
    return "" if value is None else (f"{value:.2g}" if value > 1e-300 else "< 1e-300")


def statistics_table(summaries: list[MethodSummary]) -> str:
    """The Markdown table of :func:`summarise_methods` (and, when ridge ran, a second one against ridge
    with the trust columns)."""
    best = summaries[0].method
    rows = []
    for m in summaries:
        won = "" if m.won_vs_best is None else f"{m.won_vs_best:.1f}%"
        rows.append([m.method, str(len(m.runs)), _mean_sd(m.mae), _mean_sd(m.pearson),
                     _mean_sd(m.vs_lr, "{:+.2f}", True), _mean_sd(m.vs_dgex, "{:+.2f}", True), _p(m.p_vs_best), won])
    table = markdown_table(
        ["method", "runs", "test MAE (mean ± sd over runs)", "Pearson", "vs LR", "vs D-GEX",
         f"p, Wilcoxon vs {best} (over genes)", f"genes better than {best}"],
        rows,
    )
    if not any(m.vs_ridge for m in summaries):
        return table
    rows = []
    for m in summaries:
        reliable = m.metric("calibration/reliable_fraction")
        rows.append([m.method, _mean_sd(m.vs_ridge, "{:+.2f}", True), _p(m.p_vs_ridge_repeats), _p(m.p_vs_ridge_genes),
                     _mean_sd(m.metric("test/interval_coverage")),
                     _mean_sd([100 * r for r in reliable], "{:.1f}", True)])
    return table + "\n\n" + markdown_table(
        ["method", "vs ridge (paired by fold/seed)", "p vs ridge, Wilcoxon over folds/seeds", "p vs ridge, Wilcoxon over genes",
         "0.9 interval coverage", "reliable genes"],
        rows,
    )
