"""The command lines a user types. Those that need a fresh interpreter (DDP re-launches, W&B's service
process and environment, import-time warnings, a killed process) run as subprocesses; the others run
their entry point in this process (``run_main``)."""

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO, compose_config, run_main

pytestmark = pytest.mark.slow


def run(*args: str, env: dict | None = None, timeout: int = 240) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        [sys.executable, *args], cwd=REPO, capture_output=True, text=True, timeout=timeout, env=env or os.environ.copy()
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


def metrics_files(root):
    return sorted(root.rglob("metrics.json"))


def test_two_cpu_processes_with_ddp(tmp_path, data_dir):
    run("-m", "src.train", "experiment=egex_staged", "trainer=ddp_sim", "debug=fast",  # unused parameters per stage
        f"paths.output_root={tmp_path}", f"paths.data_dir={data_dir}")
    runs = list((tmp_path / "egex_staged").iterdir())
    assert len(runs) == 1  # rank 1 joined rank 0's run folder
    files = metrics_files(tmp_path)
    assert len(files) == 1  # only rank 0 writes outputs
    metrics = json.loads(files[0].read_text())["metrics"]
    assert {"val/mae", "val/pearson", "test/mae", "test/pearson", "test/deployed_mae", "test/interval_coverage"} <= set(metrics)
    assert (runs[0] / "train_ddp_process_1.log").exists()


def test_wandb_runs_offline_without_a_key_and_never_prompts(tmp_path, data_dir):
    env = {k: v for k, v in os.environ.items() if not k.startswith("WANDB_")}
    env["HOME"] = str(tmp_path / "home")  # no ~/.netrc credentials
    proc = run("-m", "src.train", "debug=fast", "logger=wandb", "logger.wandb.log_model=true",
               f"paths.output_root={tmp_path}", f"paths.data_dir={data_dir}", env=env, timeout=180)
    assert "W&B: no API key found, logging offline" in proc.stdout + proc.stderr
    run_dir = next((tmp_path / "train").iterdir())
    (offline,) = list((run_dir / "wandb").glob("offline-run-*"))
    media = offline / "files" / "media"
    assert list(media.glob("table/test/per_gene_*.table.json"))  # the per-gene table
    assert list(media.glob("images/test/per_gene_histograms_*.png"))  # and its figure
    (log,) = list(offline.glob("run-*.wandb"))
    assert b"optimizer" in log.read_bytes() and b"max_epochs" in log.read_bytes()  # the composed config
    assert f"model-{offline.name.rsplit('-', 1)[1]}".encode() in log.read_bytes()  # checkpoints as an artifact


def test_eval_command_line(tmp_path, quick_dgex, capsys):
    cfg, _ = quick_dgex
    run_main("src.eval", f"ckpt_path={cfg.paths.output_dir}/checkpoints/best.ckpt", f"paths.output_root={tmp_path}")
    assert "test" in capsys.readouterr().out and len(list((tmp_path / "eval").iterdir())) == 1


def test_one_command_runs_the_whole_comparison_and_writes_the_report(tmp_path, data_dir):
    run_main("src.train", "experiment=compare", "debug=fast", "seed=12345", "trainer.max_epochs=1",  # one seed, one epoch,
             "data.max_samples=1000", "data.max_targets=100",  # small data: the command and its report are the subject
             f"paths.output_root={tmp_path}", f"paths.data_dir={data_dir}")
    (sweep,) = list((tmp_path / "compare").iterdir())
    report = (sweep / "report.md").read_text()
    for method in ("lr", "lr_l2", "lr_l1", "knn", "dgex", "egex", "taaf", "resmlp", "ggan", "ncnn"):
        assert f"| {method} |" in report
    assert (sweep / "synthetic_scatter_vs_lr.png").exists()


def test_the_comparison_runs_every_method_over_its_seeds_and_reports_spreads_and_p_values(tmp_path, data_dir):
    """A plain multirun (two models x three seeds, one process each): one sweep folder, a metrics file per
    job, and the report's spreads over seeds."""
    run_main("src.train", "experiment=compare", "debug=fast", "model=lr,lr_l2",
             f"paths.output_root={tmp_path}", f"paths.data_dir={data_dir}")
    (sweep,) = list((tmp_path / "compare").iterdir())
    assert len(metrics_files(sweep)) == 6  # 2 methods x the 3 default seeds (closed-form: fast)
    report = (sweep / "report.md").read_text()
    assert "### Over seeds and folds" in report and "p, Wilcoxon vs" in report
    row = next(line for line in report.splitlines() if line.startswith("| lr_l2 | 3 |") or line.startswith("| lr | 3 |"))
    assert "±" in row
    assert (sweep / "synthetic_mae_over_runs.png").exists()


def test_ddp_inside_a_multirun_runs_each_job_once_with_the_metrics_of_one_process(tmp_path, data_dir):
    """``trainer.devices=2`` on a CPU machine (the README command) inside a sweep: two processes per job, one
    sweep folder, one job per combination, one W&B run per job, and the validation and test MAE of one
    process with the same global batch (E-GEX without dropout in debug=fast). GGAN's two optimisers
    (manual optimisation) train under DDP too. ``ridge_residual``'s two processes fit the same ridge (rank
    0's broadcast) and take the no-op steps of epoch 0 in step. A W&B key in the environment reaches no
    log and no saved file."""
    from src.train import train

    key = "0123456789abcdef0123456789abcdef01234567"
    env = {**os.environ, "WANDB_API_KEY": key, "WANDB_MODE": "offline"}
    common = ["debug=fast", "logger=wandb", f"paths.data_dir={data_dir}"]
    proc = run("-m", "src.train", "-m", "model=egex,ggan,ridge_residual", "trainer.devices=2", *common,
               f"paths.output_root={tmp_path / 'sweep'}", env=env, timeout=400)
    text = proc.stdout + proc.stderr
    (sweep,) = list((tmp_path / "sweep" / "train" / "multirun").iterdir())
    jobs = sorted(p for p in sweep.iterdir() if p.is_dir() and p.name.isdigit())
    assert len(jobs) == 3 and len(metrics_files(sweep)) == 3  # rank 1 wrote none
    assert all(len(list((job / "wandb").glob("offline-run-*"))) == 1 for job in jobs)
    assert all((job / "train_ddp_process_1.log").exists() for job in jobs)  # rank 1 ran in its job's folder
    assert (sweep / "summary.md").exists() and "Initializing distributed: GLOBAL_RANK: 1, MEMBER: 2/2" in text
    assert "terminate called" not in text  # rank 1 ended its process group before exiting
    assert key not in text and not [p for p in tmp_path.rglob("*") if p.is_file() and key.encode() in p.read_bytes()]
    saved = {json.loads(f.read_text())["method"]: json.loads(f.read_text()) for f in metrics_files(sweep)}
    swept = {method: saved[method]["metrics"] for method in saved}
    assert {"val/mae", "test/mae", "test/pearson", "test/interval_coverage"} <= set(swept["ggan"])
    assert all(math.isfinite(v) for v in swept["ggan"].values())
    assert swept["ggan"]["test/mae"] < 0.7  # predicting the mean scores about 0.8 on the standardised scale
    for method in ("egex", "ridge_residual"):
        cfg = compose_config("train", tmp_path / method, [f"model={method}", "debug=fast", "logger=none"], data_dir)
        single = train(cfg)
        for key in ("val/mae", "test/mae", "test/pearson"):
            assert swept[method][key] == pytest.approx(single[key], rel=1e-4), (method, key)
        selected = json.loads((Path(cfg.paths.output_dir) / "metrics.json").read_text()).get("selected")
        assert saved[method].get("selected") == selected, method  # ridge_residual: the same penalty and epochs
    assert saved["ridge_residual"]["selected"]


def test_optuna_search_with_two_processes_per_trial_samples_each_trial_once(tmp_path, data_dir):
    """The trial's parameters are sampled once, in rank 0: rank 1 trains the same network, so the trial
    scores as one process given the sampled parameters (dropout fixed at 0, so that the two agree; one
    trial here; several DDP jobs in one sweep: test_ddp_inside_a_multirun_...)."""
    from src.train import train

    common = ["debug=fast", "logger=csv", f"paths.data_dir={data_dir}"]
    run("-m", "src.train", "hparams_search=egex_optuna", "hydra.sweeper.n_trials=1", "model.dropout=choice(0.0)",
        "trainer.devices=2", *common, f"paths.output_root={tmp_path / 'search'}", timeout=400)
    (sweep,) = list((tmp_path / "search" / "train" / "multirun").iterdir())
    summary = json.loads((sweep / "summary.json").read_text())
    assert len(summary["jobs"]) == 1 and (sweep / "optimization_results.yaml").exists()
    (trial,) = summary["jobs"]
    sampled = [o for o in trial["overrides"] if o.startswith("model.")]
    assert len(sampled) == 4 and "model.dropout=0.0" in sampled  # lr, latent, widths, dropout
    single = train(compose_config("train", tmp_path / "single", ["model=egex", *sampled, *common], data_dir))
    for key in ("val/mae", "test/mae", "test/pearson"):
        assert trial["metrics"][key] == pytest.approx(single[key], rel=1e-4), key


def test_submitit_local_executor_runs_a_sweep_job(tmp_path, data_dir):
    run("-m", "src.train", "-m", "hydra/launcher=local", "model=lr", "debug=fast", "logger=csv",
        f"paths.output_root={tmp_path}", f"paths.data_dir={data_dir}")
    (sweep,) = list((tmp_path / "train" / "multirun").iterdir())
    assert len(metrics_files(sweep)) == 1 and list((sweep / ".submitit").iterdir())


def test_a_run_killed_mid_epoch_resumes_from_last_and_ends_as_if_never_interrupted(tmp_path, data_dir):
    args = ["-m", "src.train", "model=dgex", "debug=fast", "trainer.max_epochs=4", "logger=none",  # dropout 0.1
            f"paths.data_dir={data_dir}"]
    run(*args, f"paths.output_root={tmp_path / 'whole'}")
    (whole,) = metrics_files(tmp_path / "whole")
    folder = tmp_path / "killed"
    # 48 steps per epoch (2,400 samples / 50): step 120 is in the middle of the third epoch.
    proc = subprocess.run([sys.executable, *args, f"hydra.run.dir={folder}", "+callbacks.kill._target_=tests.faults.KillAtStep",
                           "+callbacks.kill.step=120"], cwd=REPO, capture_output=True, text=True, timeout=240)
    assert proc.returncode == -9 and not (folder / "metrics.json").exists()
    assert not list((folder / "checkpoints").glob(".*.tmp"))  # no half-written checkpoint under a real name
    run(*args, f"hydra.run.dir={folder}", "ckpt_path=last")
    assert json.loads((folder / "metrics.json").read_text())["metrics"] == json.loads(whole.read_text())["metrics"]


def test_an_input_error_in_rank_0_of_a_ddp_run_prints_one_message_and_every_process_exits(tmp_path, data_dir):
    """Rank 1 waits in a collective for rank 0, which fails: rank 0 stops it and exits with status 1."""
    proc = subprocess.run(
        [sys.executable, "-m", "src.train", "model=lr_l2", "debug=fast", "logger=none", "trainer.devices=2",
         f"paths.output_root={tmp_path}", f"paths.data_dir={data_dir}",
         "+callbacks.fault._target_=tests.faults.FailAtStep", "+callbacks.fault.step=1"],
        cwd=REPO, capture_output=True, text=True, timeout=180)
    text = proc.stdout + proc.stderr
    assert proc.returncode == 1 and "Traceback" not in text, text[-3000:]
    assert "error: injected: bad input found during training" in proc.stderr
    assert "GLOBAL_RANK: 1" in text  # the second process had started (and is gone: run() returned)


def test_the_terminal_shows_what_matters(tmp_path, gpl96, geo_lr):
    """No Lightning product tips, no deprecation notices of Lightning's internals (emitted at import: a
    fresh interpreter), the cache named once, no epoch bar for a closed-form baseline."""
    from tests.conftest import SHARED

    data = ["data=geo", f"data.source.path={gpl96}", f"data.source.landmark_map={SHARED}/dgex/map_lm.txt",
            f"data.source.target_map={SHARED}/dgex/map_tg.txt", "debug=fast", "model=lr"]  # geo_lr built the cache
    proc = run("-m", "src.train", *data, f"paths.output_root={tmp_path}", f"paths.data_dir={geo_lr.paths.data_dir}")
    out = proc.stdout + proc.stderr
    assert "Tip:" not in out and "LeafSpec" not in out and "Traceback" not in out
    assert out.count("Using the cached data") == 1
    assert not any(line.lstrip().startswith("Epoch") for line in out.splitlines())
