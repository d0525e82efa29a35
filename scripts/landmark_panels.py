"""How accuracy and interval coverage degrade as landmarks go missing (docs/RESULTS.md).

    python scripts/landmark_panels.py CHECKPOINT [--missing 0.1 0.3 0.5] [--seed 0] [--out DIR]

For each share of missing landmarks, a random panel of the checkpoint's landmarks is written and
``src.eval ckpt_path=CHECKPOINT landmark_panel=<panel>`` measures the model on its own test split with
the other landmarks imputed (as ``src.predict missing_landmarks=impute``); one Markdown table is printed.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import json
from pathlib import Path

import numpy as np

from src.models.loading import load_model

COLUMNS = ["test/panel_deployed_mae", "test/panel_deployed_pearson", "test/panel_interval_coverage",
           "test/panel_interval_width", "test/panel_adaptive_interval_coverage", "test/panel_adaptive_interval_width",
           "calibration/panel_reliable_genes"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint")
    parser.add_argument("--missing", type=float, nargs="+", default=[0.1, 0.3, 0.5])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="outputs/landmark_panels")
    args = parser.parse_args()
    ids = load_model(args.checkpoint).preprocessing.landmark_ids
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for share in args.missing:
        keep = np.random.default_rng(args.seed).permutation(len(ids))[: round(len(ids) * (1 - share))]
        panel = out / f"panel_{int(share * 100)}pct_missing.txt"
        panel.write_text("\n".join(ids[i] for i in sorted(keep)) + "\n")
        run_dir = out / f"eval_{int(share * 100)}"
        subprocess.run([sys.executable, "-m", "src.eval", f"ckpt_path={args.checkpoint}", f"landmark_panel={panel}",
                        f"hydra.run.dir={run_dir}"], check=True, stdout=subprocess.DEVNULL)
        metrics = json.loads((run_dir / "metrics.json").read_text())["metrics"]
        rows.append((share, metrics))
    full = rows[0][1]
    print("| landmarks missing | MAE | Pearson | coverage (constant) | width (constant) | coverage (adaptive) | width (adaptive) | reliable genes |")
    print("|---|---|---|---|---|---|---|---|")
    print(f"| 0% | {full['test/deployed_mae']:.4f} | {full['test/deployed_pearson']:.4f} | {full['test/interval_coverage']:.4f} | "
          f"{full['test/interval_width']:.3f} | {full['test/adaptive_interval_coverage']:.4f} | {full['test/adaptive_interval_width']:.3f} | |")
    for share, m in rows:
        cells = [f"{m[c]:.4f}" if "width" not in c and "genes" not in c else (f"{m[c]:.3f}" if "width" in c else f"{m[c]:.0f}") for c in COLUMNS]
        print(f"| {share:.0%} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
