"""Tests of src/reporting; ``fake_run`` writes a run folder by hand, in the published file formats."""

import json

import numpy as np


def fake_run(folder, method, maes, data="synthetic", floor=0.2):
    """A run folder written without src.reporting: metrics.json and per_gene_test.tsv as documented."""
    folder.mkdir(parents=True)
    (folder / "metrics.json").write_text(json.dumps(
        {"metrics": {"test/mae": float(np.mean(maes))}, "method": method, "data": data, "noise_floor_mae": floor}))
    rows = ["gene\tmae\tpearson"] + [f"g{i}\t{m}\t0.5" for i, m in enumerate(maes)]
    (folder / "per_gene_test.tsv").write_text("\n".join(rows) + "\n")
