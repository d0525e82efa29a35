"""The CUDA path end to end, on a machine with a GPU: train, evaluate and predict on the GPU.

    python bench/cuda_check.py [--workdir DIR] [--model egex]

1. ``python -m src.train`` on the default synthetic data with ``trainer.accelerator=gpu`` and the
   automatic precision (bf16-mixed on a GPU with native bf16), logger off: wall time, the precision
   chosen and the test metrics of ``metrics.json``;
2. the test split's landmark profiles (on the raw scale, as a user has them) written to an ``.h5ad``
   and predicted by ``python -m src.predict`` twice, ``device=cuda`` and ``device=cpu``, with
   intervals: wall times, the largest difference between the two, and the MAE of the GPU predictions
   against the test targets (standardised scale, averaged over genes), which must equal the run's
   ``test/deployed_mae`` (the number we report is the number a user gets).

Results go into the ``cuda-check`` section of docs/BENCHMARKS.md; the script fails (status 1) when
there is no GPU or when a check does not hold.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from omegaconf import OmegaConf

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, machine, write_section  # noqa: E402


def timed(command: list[str]) -> float:
    """Run ``python -m <command>`` in the repository; its wall time in seconds (fails loudly)."""
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", *command], cwd=ROOT, capture_output=True, text=True)
    if proc.returncode:
        raise SystemExit(f"failed: {' '.join(command)}\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}")
    return time.perf_counter() - start


def write_test_inputs(run_dir: Path, path: Path):
    """Write the run's test split as a user would have it (raw landmarks, .h5ad); return the
    standardised test targets and the target gene ids."""
    import anndata

    from src.data.io.writers import plain_string_frame
    from src.train import build_datamodule

    cfg = OmegaConf.load(run_dir / ".hydra" / "config.yaml")
    datamodule = build_datamodule(cfg)
    datamodule.setup()
    space = datamodule.preprocessing
    landmarks = space.landmark_scaler.inverse(datamodule.split_data("test").landmarks.numpy())
    obs, var = plain_string_frame({}, datamodule.sample_ids["test"]), plain_string_frame({}, space.landmark_ids)
    anndata.AnnData(landmarks, obs=obs, var=var).write_h5ad(path)
    return datamodule.split_data("test").targets.numpy(), list(space.target_ids)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workdir", default=None, help="where the run folder and files go (default: a temporary folder)")
    parser.add_argument("--model", default="egex")
    parser.add_argument("--cpu", action="store_true", help="a dry run of the script itself on the CPU (debug=fast)")
    args = parser.parse_args()
    if not torch.cuda.is_available() and not args.cpu:
        raise SystemExit("no CUDA GPU here: this check runs on a machine with one (--cpu: a dry run on the CPU)")
    accelerator, gpu_device, extra = ("cpu", "cpu", ["debug=fast"]) if args.cpu else ("gpu", "cuda", [])
    work = Path(args.workdir or tempfile.mkdtemp(prefix="cuda_check_"))
    run_dir, lines, failures = work / "train", [], []

    seconds = timed(["src.train", f"model={args.model}", f"trainer.accelerator={accelerator}", "logger=none",
                     f"hydra.run.dir={run_dir}", f"paths.output_root={work}", *extra])
    precision = OmegaConf.load(run_dir / ".hydra" / "config.yaml").trainer.precision
    metrics = json.loads((run_dir / "metrics.json").read_text())["metrics"]
    lines += [f"- `python -m src.train model={args.model} trainer.accelerator=gpu logger=none` (default synthetic data, "
              f"precision chosen: `{precision}`): {seconds:.1f} s wall including data generation; "
              f"test MAE {metrics['test/mae']:.4f}, deployed {metrics['test/deployed_mae']:.4f}, "
              f"Pearson {metrics['test/pearson']:.4f}, interval coverage {metrics.get('test/interval_coverage', float('nan')):.3f}."]
    print(lines[-1], flush=True)

    source = work / "test_landmarks.h5ad"
    targets, target_ids = write_test_inputs(run_dir, source)
    import anndata

    ckpt = json.loads((run_dir / "metrics.json").read_text())["best_checkpoint"]
    outputs = {}
    for key, device in (("gpu", gpu_device), ("cpu", "cpu")):
        out = work / f"pred_{key}.h5ad"
        seconds = timed(["src.predict", f"ckpt_path={ckpt}", f"input={source}", f"output={out}", f"device={device}",
                         "interval=0.9", "overwrite=true", f"paths.output_root={work}", f"hydra.run.dir={work}/predict_{key}"])
        outputs[key] = (anndata.read_h5ad(out), seconds)
    gpu, cpu = outputs["gpu"][0], outputs["cpu"][0]
    if list(gpu.var_names) != target_ids:
        failures.append("the GPU prediction's genes differ from the model's targets")
    gpu_std, cpu_std = gpu.layers["standardised"], cpu.layers["standardised"]
    diff = float(np.abs(gpu_std - cpu_std).max())
    mae = float(np.abs(gpu_std - targets).mean(axis=0).mean())
    lines += [f"- `python -m src.predict ... device=cuda interval=0.9` on the {len(targets)} test profiles (raw-scale "
              f"landmarks in an .h5ad): {outputs['gpu'][1]:.1f} s wall; `device=cpu` {outputs['cpu'][1]:.1f} s "
              f"(both mostly process start and reading the checkpoint).",
              f"- GPU vs CPU predictions: largest difference {diff:.2e} (standardised scale); MAE of the GPU "
              f"predictions against the test targets {mae:.6f}, the run's `test/deployed_mae` "
              f"{metrics['test/deployed_mae']:.6f} (difference {abs(mae - metrics['test/deployed_mae']):.1e})."]
    if diff > 1e-3:
        failures.append(f"GPU and CPU predictions differ by {diff:.2e}")
    if abs(mae - metrics["test/deployed_mae"]) > 1e-4:
        failures.append(f"predicted MAE {mae:.6f} is not the reported test/deployed_mae {metrics['test/deployed_mae']:.6f}")

    body = "\n".join([
        "## The CUDA path (bench/cuda_check.py) — GPU figures",
        "",
        f"Machine: {machine()}.",
        "",
        *lines,
        "",
        "Checks: " + ("all held." if not failures else "FAILED: " + "; ".join(failures)),
    ])
    print(body)
    if not args.cpu:
        print(f"wrote {write_section('cuda-check', body)}")
    if failures:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
