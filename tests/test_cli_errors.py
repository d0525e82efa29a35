"""Bad input and config on the command line: one message naming the file or key, status 1, no traceback.

Every case is a real command line (``python -m src.train/src.eval/src.predict ...``) on tiny inputs
made here; they run concurrently, then each test reads its outcome. Two start a fresh interpreter each;
the others are forked from one that imported the entry points (tests/forked_cli.py), since a start is
seconds and the error itself a fraction of one.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from src.data.io.gctx import write_gctx
from tests.conftest import REPO, compose_config

pytestmark = pytest.mark.slow

PROBES = ["p1_at", "p2_at", "p3_at", "p4_at", "p5_at"]  # not Affymetrix-looking ids: tables need an orientation


def cli(module: str, *args: str, env: dict | None = None, timeout: int = 180) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", module, *args], cwd=REPO, capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, **(env or {})})


def output(proc: subprocess.CompletedProcess) -> str:
    return proc.stdout + proc.stderr


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    """Tiny inputs: gene maps (2 landmarks, 3 targets), good and broken GCTX files, a table, and a checkpoint
    trained on the good file."""
    d = tmp_path_factory.mktemp("inputs")
    f = {"root": d, "lm": d / "map_lm.txt", "tg": d / "map_tg.txt", "badmap": d / "bad_map.txt"}
    f["lm"].write_text("A\tENSG01\tp1_at\nB\tENSG02\tp2_at\n")
    f["tg"].write_text("C\tENSG03\tp3_at\nD\tENSG04\tp4_at\nE\tENSG05\tp5_at\n")
    f["badmap"].write_text("A\tENSG01\tp1_at\nB ENSG02 p2_at\n")  # spaces, not tabs, on line 2
    values = np.random.default_rng(0).normal(8, 2, size=(60, 5)).astype(np.float32)
    samples = [f"S{i}" for i in range(60)]
    f["good"] = write_gctx(d / "good.gctx", values, samples, PROBES)
    with_nan = values.copy()
    with_nan[7, 1] = np.nan  # a landmark: prediction reads it too
    f["nan"] = write_gctx(d / "with_nan.gctx", with_nan, samples, PROBES)
    f["no_landmark"] = write_gctx(d / "no_landmark.gctx", values[:, 1:], samples, PROBES[1:])
    f["zero"] = write_gctx(d / "zero_samples.gctx", values[:0], [], PROBES)
    raw = f["good"].read_bytes()
    (d / "truncated.gctx").write_bytes(raw[: len(raw) // 2])
    f["truncated"] = d / "truncated.gctx"
    (d / "not_a_checkpoint.ckpt").write_text("hello\n")
    f["not_ckpt"] = d / "not_a_checkpoint.ckpt"
    f["table"] = d / "genes_in_rows.tsv"
    # More unknown features (control spots) than map probes: neither side is mostly known ids, so the
    # orientation cannot be told and must be given.
    extra = np.random.default_rng(1).normal(8, 2, size=(6, 60))
    pd.DataFrame(np.vstack([values.T, extra]), index=PROBES + [f"ctrl{i}" for i in range(6)], columns=samples).to_csv(
        f["table"], sep="\t", index_label="probe")
    f["dat"] = d / "profiles.dat"
    f["dat"].write_bytes(bytes(range(256)) * 4)  # neither HDF5 nor text: the format is told by neither content nor name
    import gzip
    import zipfile

    f["xlsx"] = d / "workbook.csv"  # a spreadsheet saved under a .csv name
    with zipfile.ZipFile(f["xlsx"], "w") as book:
        book.writestr("xl/workbook.xml", "<workbook/>")
    rows = "".join(f"S{i}," + ",".join(f"{v:.3f}" for v in values[i]) + "\n" for i in range(60)) * 50
    packed = gzip.compress(("sample," + ",".join(PROBES) + "\n" + rows).encode())
    f["truncated_gz"] = d / "cut.csv.gz"
    f["truncated_gz"].write_bytes(packed[: len(packed) // 2])  # a download that stopped half-way
    f["binary_panel"] = d / "panel.txt"
    f["binary_panel"].write_bytes(b"\x00\x01\x02binary\x00" * 10)
    f["folder"] = d / "a_folder"
    f["folder"].mkdir()
    f["twice"] = d / "map_twice.txt"
    f["twice"].write_text(f["lm"].read_text() + "A\tENSG01\tp1_at\n")  # the first gene again

    from src.train import train

    cfg = compose_config("train", d / "trained", ["model=lr", "logger=none", *matrix(f, f["good"])], d / "data")
    train(cfg)
    f["ckpt"] = Path(cfg.paths.output_dir) / "checkpoints" / "best.ckpt"
    return f


def matrix(f: dict, path: Path, landmark_map: Path | None = None) -> list[str]:
    return ["data=matrix", f"data.source.path={path}", f"data.source.landmark_map={landmark_map or f['lm']}",
            f"data.source.target_map={f['tg']}"]


def training(f: dict, *args: str) -> tuple[str, ...]:
    return ("src.train", "model=lr", "logger=none", f"paths.output_root={f['root'] / 'out'}",
            f"paths.data_dir={f['root'] / 'data'}", *args)


def predicting(f: dict, name: str, *args: str) -> tuple[str, ...]:
    return ("src.predict", f"ckpt_path={f['ckpt']}", f"output={f['root'] / 'pred' / name}.h5ad",
            f"paths.output_root={f['root'] / 'out'}", *args)


# case -> (command line, what the one message must say); run as subprocesses, so kept to one of each kind
CASES = {
    "train_missing_file": (lambda f: training(f, *matrix(f, f["root"] / "missing.gctx")), ["missing.gctx", "not found"]),
    "train_nan": (lambda f: training(f, *matrix(f, f["nan"])), ["with_nan.gctx", "non-finite", "sample S7", "p2_at"]),
    "train_missing_landmarks": (lambda f: training(f, *matrix(f, f["no_landmark"])), ["no_landmark.gctx", "p1_at", "missing"]),
    "train_bad_map_line": (lambda f: training(f, *matrix(f, f["good"], f["badmap"])), ["bad_map.txt, line 2", "symbol<TAB>"]),
    "train_truncated_hdf5": (lambda f: training(f, *matrix(f, f["truncated"])), ["truncated.gctx", "truncated"]),
    "train_table_orientation": (lambda f: training(f, *matrix(f, f["table"])),
                                ["genes_in_rows.tsv", "+data.source.reader_options.orientation=features_in_rows"]),
    "batch_size_abc": (lambda f: training(f, "data.batch_size=abc"), ["data.batch_size=abc", "e.g. data.batch_size=200"]),
    "batch_size_0": (lambda f: training(f, "data.batch_size=0"), ["data.batch_size=0", "positive integer"]),
    "max_epochs_abc": (lambda f: training(f, "trainer.max_epochs=abc"), ["trainer.max_epochs=abc", "e.g. trainer.max_epochs="]),
    "dropout_abc": (lambda f: training(f, "model=egex", "model.dropout=abc"), ["model.dropout=abc", "[0, 1)"]),
    "eval_non_checkpoint": (lambda f: ("src.eval", f"ckpt_path={f['not_ckpt']}", f"paths.output_root={f['root'] / 'out'}"),
                            ["not_a_checkpoint.ckpt", "not a readable checkpoint"]),
    "predict_zero_samples": (lambda f: predicting(f, "zero", f"input={f['zero']}"), ["zero_samples.gctx", "no samples"]),
    "predict_missing_landmarks": (lambda f: predicting(f, "lm", f"input={f['no_landmark']}"),
                                  ["no_landmark.gctx", "p1_at", "missing_landmarks=impute"]),
    "predict_unknown_format": (lambda f: predicting(f, "dat", f"input={f['dat']}"), ["profiles.dat", "input_format=gctx"]),
    # Round two (issue 27): decoding, decompression, options, unset values, ranges, folders, the Trainer.
    "predict_zip_as_csv": (lambda f: predicting(f, "zip", f"input={f['xlsx']}"), ["workbook.csv", "zip archive", "save it as CSV"]),
    "predict_truncated_gz": (lambda f: predicting(f, "gz", f"input={f['truncated_gz']}"), ["cut.csv.gz", "truncated or damaged gzip"]),
    "train_truncated_gz": (lambda f: training(f, *matrix(f, f["truncated_gz"])), ["cut.csv.gz", "truncated or damaged gzip"]),
    "eval_binary_panel": (lambda f: ("src.eval", f"ckpt_path={f['ckpt']}", f"landmark_panel={f['binary_panel']}",
                                     f"paths.output_root={f['root'] / 'out'}"), ["panel.txt", "binary data, not text"]),
    "predict_unknown_reader_option": (lambda f: predicting(f, "opt", f"input={f['table']}", "+reader_options.colour=red"),
                                      ["reader_options.colour", "not an option of the table reader", "orientation"]),
    "train_geo_without_path": (lambda f: training(f, "data=geo"), ["data.source.", "is not set"]),
    "eval_geo_without_path": (lambda f: ("src.eval", f"ckpt_path={f['ckpt']}", "data=geo", f"paths.output_root={f['root'] / 'out'}"),
                              ["data.source.", "is not set"]),
    "seed_negative": (lambda f: training(f, "seed=-1"), ["seed=-1", "from 0 to 2**32 - 1", "e.g. seed=12345"]),
    "train_folder": (lambda f: training(f, *matrix(f, f["folder"])), ["a_folder", "a directory, not a file"]),
    "predict_folder": (lambda f: predicting(f, "dir", f"input={f['folder']}"), ["a_folder", "a directory, not a file"]),
    "precision_xyz": (lambda f: training(f, "trainer.precision=xyz"), ["trainer.precision=xyz", "e.g. trainer.precision="]),
    # Accepted silently before: metrics that are all NaN, a gene twice, the landmark map as the target map.
    "train_too_few_samples": (lambda f: training(f, *matrix(f, f["good"]), "data.max_samples=3"),
                              ["too few in train", "data.max_samples=null"]),
    "train_gene_twice": (lambda f: training(f, *matrix(f, f["good"], f["twice"])),
                         ["map_twice.txt, line 3", "ENSG01", "listed again (first on line 1)"]),
    "train_landmarks_as_targets": (lambda f: training(f, *matrix(f, f["good"]), f"data.source.target_map={f['lm']}"),
                                   ["target_map", "it is the landmark map itself"]),
}
# Hints pasted back onto the command that printed them (composed by Hydra as the command line is, run in
# the process): the command then runs to its end.
PASTED = {
    "train_too_few_samples": ("train", "data.max_samples=null"),
    "train_table_orientation": ("train", "++data.source.reader_options.orientation=features_in_rows"),
    "predict_missing_landmarks": ("predict", "missing_landmarks=impute"),
}


# Run as real command lines (a fresh interpreter each); the other cases share one through tests/forked_cli.py.
REAL_STARTS = ("train_missing_file", "full_error")


@pytest.fixture(scope="module")
def outcomes(files) -> dict[str, subprocess.CompletedProcess]:
    """Every case run once, concurrently: two as real command lines, the rest forked from one interpreter
    that imported the entry points (tests/forked_cli.py: the same run, less the start-up)."""
    jobs = {name: list(command(files)) for name, (command, _) in CASES.items()}
    jobs["full_error"] = list(training(files, "data.batch_size=abc"))
    envs = {"full_error": {"HYDRA_FULL_ERROR": "1"}}
    forked_dir = files["root"] / "forked"
    forked_dir.mkdir()
    (forked_dir / "jobs.json").write_text(json.dumps(
        {name: {"argv": argv, "env": envs.get(name, {})} for name, argv in jobs.items() if name not in REAL_STARTS}))
    with ThreadPoolExecutor(max_workers=len(REAL_STARTS) + 1) as pool:
        real = {name: pool.submit(cli, *jobs[name], env=envs.get(name)) for name in REAL_STARTS}
        forked = pool.submit(subprocess.run, [sys.executable, "-m", "tests.forked_cli", str(forked_dir / "jobs.json"),
                                              str(forked_dir), "--parallel", "3"], cwd=REPO, timeout=300, check=True)
        results = {name: future.result() for name, future in real.items()}
        forked.result()
    for name, argv in jobs.items():
        if name not in REAL_STARTS:
            rc, out, err = ((forked_dir / f"{name}.{suffix}").read_text() for suffix in ("rc", "out", "err"))
            results[name] = subprocess.CompletedProcess(argv, int(rc), out, err)
    return results


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_prints_one_message_naming_the_file_or_key_and_exits_1(outcomes, case):
    proc, expected = outcomes[case], CASES[case][1]
    text = output(proc)
    assert proc.returncode == 1, text[-3000:]
    assert "Traceback" not in text and "Error executing job" not in text, text[-3000:]
    (message,) = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]  # one message
    for part in expected:
        assert part in message, message


@pytest.mark.parametrize("case", list(PASTED))
def test_the_suggested_fix_pasted_onto_the_command_line_is_a_valid_override_that_works(outcomes, files, tmp_path, case):
    task, fix = PASTED[case]
    assert fix in outcomes[case].stderr  # what the failing command said
    command = [a for a in CASES[case][0](files)[1:] if not a.startswith(("paths.output_root=", "output="))]
    cfg = compose_config(task, tmp_path, [*command, fix, f"output={tmp_path / 'out.h5ad'}"][: None if task == "predict" else -1],
                         files["root"] / "data")
    if task == "train":
        from src.train import train

        assert train(cfg)["test/mae"] > 0
    else:
        from src.predict import predict

        assert predict(cfg)[0].is_file()


def test_hydra_full_error_shows_the_traceback(outcomes):
    proc = outcomes["full_error"]
    assert proc.returncode == 1
    assert "Traceback" in output(proc) and "InputError: data.batch_size=abc" in output(proc)


def test_a_failing_job_of_a_sweep_leaves_the_others_their_results_and_the_summary_marks_it(files):
    root = files["root"] / "sweep"
    proc = cli("src.train", "-m", "model=lr", "logger=none", *matrix(files, files["good"]), "data.batch_size=10,0",
               f"paths.output_root={root}", f"paths.data_dir={files['root'] / 'data'}")
    text = output(proc)
    assert proc.returncode == 1 and "Traceback" not in text, text[-3000:]  # the sweep ran to its end, then said so
    (sweep,) = (root / "train" / "multirun").iterdir()
    assert (sweep / "0" / "metrics.json").is_file() and not (sweep / "0" / "failed.json").exists()
    assert not (sweep / "1" / "metrics.json").exists()
    from src.reporting.run_folder import RunFolder

    assert "data.batch_size=0: expected a positive integer" in RunFolder(sweep / "1").read_failure()["error"]
    summary = (sweep / "summary.md").read_text()
    assert "2 jobs (1 failed)" in summary and "| 0 | " in summary and "| 1 (failed) | " in summary
    assert "- job 1 (" in summary and "data.batch_size=0: expected a positive integer" in summary


# The same kinds of error raised in the process (the command lines above show how they print): each is an
# InputError or FileNotFoundError, so the entry points print its one message.
IN_PROCESS = {
    "train_unknown_format": ("train", lambda f: ["model=lr", "logger=none", *matrix(f, f["dat"])],
                             ["profiles.dat", "data.source.format=gctx"]),
    "train_resume_from_non_checkpoint": ("train", lambda f: ["model=lr", "logger=none", f"ckpt_path={f['not_ckpt']}"],
                                         ["not_a_checkpoint.ckpt", "not a readable checkpoint"]),
    "train_interval_out_of_range": ("train", lambda f: ["model=lr", "interval=1.5"], ["interval=1.5", "(0, 1)"]),
    "eval_missing_checkpoint": ("eval", lambda f: [f"ckpt_path={f['root'] / 'nothing.ckpt'}"],
                                ["nothing.ckpt", "no such checkpoint"]),
    "eval_bad_interval": ("eval", lambda f: [f"ckpt_path={f['ckpt']}", "interval=abc"], ["interval=abc", "e.g. interval=0.9"]),
    "predict_nan": ("predict", lambda f: [f"input={f['nan']}"], ["with_nan.gctx", "non-finite", "sample S7", "p2_at"]),
    "predict_truncated_hdf5": ("predict", lambda f: [f"input={f['truncated']}"], ["truncated.gctx"]),
    "predict_table_orientation": ("predict", lambda f: [f"input={f['table']}"],
                                  ["genes_in_rows.tsv", "+reader_options.orientation=features_in_rows"]),
    "predict_block_size_0": ("predict", lambda f: [f"input={f['good']}", "block_size=0"], ["block_size=0", "e.g. block_size=8192"]),
    "predict_bad_device": ("predict", lambda f: [f"input={f['good']}", "device=gpu"], ["device=gpu", "device=auto"]),
    "predict_genes_typo": ("predict", lambda f: [f"input={f['good']}", "genes=reliabel"], ["genes=reliabel", "all or reliable"]),
}


@pytest.mark.parametrize("case", list(IN_PROCESS))
def test_bad_input_in_process_is_an_input_error_naming_the_file_or_key(files, tmp_path, case):
    from src.common.errors import USER_ERRORS

    task, overrides, expected = IN_PROCESS[case]
    extra = {"predict": [f"ckpt_path={files['ckpt']}", f"output={tmp_path / 'out.h5ad'}"]}.get(task, [])
    cfg = compose_config(task, tmp_path, [*extra, *overrides(files)], files["root"] / "data")
    if task == "train":
        from src.train import build as run
    elif task == "eval":
        from src.eval import evaluate as run
    else:
        from src.predict import predict as run
    with pytest.raises(USER_ERRORS) as caught:
        run(cfg)
    for part in expected:
        assert part in str(caught.value)
    assert not (tmp_path / "out.h5ad").exists()
