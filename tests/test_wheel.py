"""A wheel built from the repository works outside the checkout: installed into a fresh environment, it
trains from an unrelated folder (the configs travel in the package) and its Python API predicts."""

import shutil
import subprocess
import sys
import sysconfig
import textwrap

import pytest

from tests.conftest import REPO


def _run(args, cwd, timeout=300):
    proc = subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout


@pytest.mark.slow
def test_the_wheel_trains_from_another_folder_and_its_api_predicts(tmp_path):
    # Build from a copy, so that the build's own folders never land in the checkout.
    source = tmp_path / "source"
    source.mkdir()
    for name in ("src", "gexinfer", "conf"):
        shutil.copytree(REPO / name, source / name, symlinks=True, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, source / name)
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path / "dist"),
          str(source)], cwd=tmp_path)
    (wheel,) = (tmp_path / "dist").glob("gexinfer-*.whl")
    # A fresh environment: the wheel installed in it, the dependencies (torch & co.) borrowed from this one.
    env = tmp_path / "env"
    _run([sys.executable, "-m", "venv", "--without-pip", str(env)], cwd=tmp_path)
    python = env / "bin" / "python"
    site = _run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], cwd=tmp_path).strip()
    with open(f"{site}/deps.pth", "w") as f:
        f.write(sysconfig.get_paths()["purelib"] + "\n")
    _run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-index", "--target", site, str(wheel)], cwd=tmp_path)
    # Train from an unrelated folder, as the README says.
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    _run([str(python), "-m", "src.train", "debug=fast", "logger=csv", "model=lr_l2"], cwd=elsewhere)
    (ckpt,) = (elsewhere / "outputs" / "train").glob("*/checkpoints/best.ckpt")
    # The API, from the installed package (not the checkout), predicts in memory.
    script = textwrap.dedent(f"""
        import gexinfer, src, numpy as np, pandas as pd
        assert src.__file__.startswith({site!r}), src.__file__
        predictor = gexinfer.Predictor.load({str(ckpt)!r})
        frame = pd.DataFrame(np.random.default_rng(0).normal(7, 1, (5, len(predictor.landmark_ids))),
                             columns=predictor.landmark_ids)
        out = predictor.predict(frame, interval=0.9)
        print(out.shape, int(out.var["reliable"].sum()) > 0)
    """)
    printed = _run([str(python), "-c", script], cwd=elsewhere)
    assert printed.strip().splitlines()[-1] == "(5, 300) True"
