"""Mean ± sd over the runs that repeat one configuration (folds, seeds)."""

from src.reporting.repeats import repeat_group, repeats_table


def _job(overrides, mae, failed=False):
    job = {"overrides": overrides, "metrics": {"test/mae": mae, "val/mae": mae + 0.01}}
    if failed:
        job["failed"] = "boom"
    return job


def test_folds_and_seeds_of_one_configuration_are_one_row_with_mean_and_sd():
    assert repeat_group(["model=lr", "data.folds=5", "data.fold=3", "seed=2"]) == "model=lr data.folds=5"
    jobs = [_job(["model=lr", "data.folds=3", f"data.fold={i}"], m) for i, m in enumerate((0.4, 0.5, 0.6))]
    jobs += [_job(["model=egex", "data.folds=3", f"data.fold={i}"], m) for i, m in enumerate((0.3, 0.35))]
    jobs += [_job(["model=egex", "data.folds=3", "data.fold=2"], 9.9, failed=True)]  # not averaged
    table = repeats_table(jobs)
    lines = table.splitlines()
    assert lines[2].startswith("| model=egex data.folds=3 | 2 | 0.3250 ± 0.0354")  # best first
    assert lines[3].startswith("| model=lr data.folds=3 | 3 | 0.5000 ± 0.1000")


def test_no_table_when_nothing_was_repeated():
    assert repeats_table([_job(["model=lr"], 0.4), _job(["model=egex"], 0.3)]) is None
