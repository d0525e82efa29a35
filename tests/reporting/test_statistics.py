"""Methods over seeds: mean ± sd, improvements paired by seed, Wilcoxon over genes against the best."""

import numpy as np
import pytest
from scipy.stats import wilcoxon

from src.reporting.comparison import find_runs
from src.reporting.comparison_report import write_report
from src.reporting.statistics import statistics_table, summarise_methods
from tests.reporting import fake_run


def _seeded(folder, method, maes, seed):
    fake_run(folder, method, maes)
    (folder / ".hydra").mkdir()
    (folder / ".hydra" / "overrides.yaml").write_text(f"- model={method}\n- seed={seed}\n")


@pytest.fixture
def runs(tmp_path):
    rng = np.random.default_rng(0)
    base = rng.uniform(0.3, 0.6, size=200)
    for seed in range(3):
        _seeded(tmp_path / f"lr{seed}", "lr", base + 0.01 * rng.normal(size=200), seed)
        _seeded(tmp_path / f"egex{seed}", "egex", 0.9 * base + 0.01 * rng.normal(size=200), seed)
        _seeded(tmp_path / f"dgex{seed}", "dgex", 0.95 * base + 0.01 * rng.normal(size=200), seed)
    return tmp_path


def test_every_method_gets_its_spread_pairing_and_a_paired_test_against_the_best(runs):
    summaries = summarise_methods(find_runs([runs]))
    best, dgex, lr = summaries
    assert [m.method for m in summaries] == ["egex", "dgex", "lr"] and len(best.mae) == 3
    assert best.p_vs_best is None and dgex.p_vs_best < 1e-10 and lr.won_vs_best < 5
    # Improvements over LR are paired by seed: three values, each about 10% for egex.
    assert len(best.vs_lr) == 3 and all(8 < v < 12 for v in best.vs_lr)
    expected = wilcoxon(dgex.per_gene, best.per_gene).pvalue
    assert dgex.p_vs_best == pytest.approx(expected)
    table = statistics_table(summaries).splitlines()
    assert table[2].startswith("| egex | 3 | ") and "%" in table[2]


def test_the_report_shows_the_seeds_table_and_an_error_bar_figure(runs, tmp_path):
    report = write_report([runs], tmp_path / "report")
    text = report.read_text()
    assert "### Over seeds and folds" in text and "Wilcoxon vs egex" in text
    assert (tmp_path / "report" / "synthetic_mae_over_runs.png").stat().st_size > 1000


def test_methods_are_compared_with_ridge_paired_by_fold_with_trust_columns(tmp_path):
    """Ridge runs once per fold (deterministic); a network runs per fold and seed: each network run pairs with
    its fold's ridge run, and the test over folds and seeds sees those pairs."""
    rng = np.random.default_rng(1)
    base = rng.uniform(0.3, 0.6, size=100)
    for fold in range(5):
        folder = tmp_path / f"ridge{fold}"
        fake_run(folder, "lr_l2", base * (1 + 0.05 * fold))
        (folder / ".hydra").mkdir()
        (folder / ".hydra" / "overrides.yaml").write_text(f"- model=lr_l2\n- data.fold={fold}\n- seed=1\n")
        for seed in range(2):
            folder = tmp_path / f"net{fold}_{seed}"
            fake_run(folder, "ridge_residual", 0.98 * base * (1 + 0.05 * fold) + 0.001 * rng.normal(size=100))
            (folder / ".hydra").mkdir()
            (folder / ".hydra" / "overrides.yaml").write_text(f"- model=ridge_residual\n- data.fold={fold}\n- seed={seed}\n")
    summaries = summarise_methods(find_runs([tmp_path]))
    net, ridge = summaries
    assert net.method == "ridge_residual" and len(net.vs_ridge) == 10 and all(1.5 < v < 2.5 for v in net.vs_ridge)
    # Ten pairs (fold x seed), every one in the network's favour: the smallest two-sided p for n=10.
    assert net.p_vs_ridge_repeats == pytest.approx(wilcoxon(np.ones(10)).pvalue) and net.p_vs_ridge_repeats < 0.01
    assert net.p_vs_ridge_genes < 1e-10 and ridge.p_vs_ridge_repeats is None
    assert "p vs ridge, Wilcoxon over folds/seeds" in statistics_table(summaries)
