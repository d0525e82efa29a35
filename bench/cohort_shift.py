"""Trust across cohorts, measured on real shifts: ``python bench/cohort_shift.py [--repeats 5]``.

A ridge model (``lr_l2``: trust is the subject, not accuracy) is trained on one cohort and applied through
the inference engine (:class:`src.inference.Predictor`, the path of ``src.predict``) to another:

- GPL96 microarrays -> GEUVADIS RNA-seq (D-GEX's cross-platform direction in miniature; Ensembl ids, log2(TPM+1)
  rank-mapped onto the microarray quantiles as the GEO model's preprocessing does);
- GEUVADIS -> GPL96 (probes averaged per gene with the D-GEX maps, already log2);
- a batch shift within GPL96 (trained on ``batch`` 3-5, applied to batches 1 and 2);
- synthetic: the generator's genes with every sample's latent state moved by 1 sd along each axis.

For each: the share of profiles flagged as unlike the training data (shift p < 0.01); coverage and mean
width of 0.9 intervals (standardised scale) without recalibration, shift-weighted, and recalibrated with 10,
20 and 50 measured profiles (random draws, ``--repeats`` of them; coverage on the remaining profiles), the
last also with the per-gene location/scale correction; per-gene Pearson for genes called reliable and the
others. Prints a markdown table for docs/RESULTS.md ("Trust across cohorts").
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from src import api  # noqa: E402
from src.data.genes import match_genes, read_gene_map  # noqa: E402
from src.data.io.gctx import read_matrix, read_meta, write_gctx  # noqa: E402
from src.data.io.matrix import open_matrix  # noqa: E402
from src.data.synthetic import SyntheticSpec, generate  # noqa: E402
from src.inference import Predictor  # noqa: E402
from src.inference.cohort import target_map  # noqa: E402
from src.models.trust import coverage, per_gene_pearson  # noqa: E402

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
GPL96 = SHARED / "gpl96" / "bladderbatch_gpl96.gctx"
GEUVADIS = SHARED / "geuvadis" / "E-GEUV-1-query-results.tpms.tsv.gz"
OUT = Path("outputs/cohort_shift")
LEVEL = 0.9


def frame_of(values: np.ndarray, samples, genes) -> pd.DataFrame:
    return pd.DataFrame(np.asarray(values, np.float32), index=[str(s) for s in samples], columns=[str(g) for g in genes])


def geuvadis_frame() -> pd.DataFrame:
    """GEUVADIS as Expression Atlas serves it: samples x Ensembl ids, TPM."""
    reader = open_matrix(GEUVADIS)
    values = np.vstack([b for _, b in reader.blocks(np.arange(len(reader.feature_ids)), 10**6)])
    return frame_of(values, reader.sample_ids, reader.feature_ids)


def gpl96_gene_frame(samples=None) -> pd.DataFrame:
    """GPL96 probes averaged per gene of the D-GEX maps (landmarks and targets), samples x Ensembl ids."""
    values, header = read_matrix(GPL96)
    columns = []
    for name in ("map_lm.txt", "map_tg.txt"):
        gene_map = read_gene_map(SHARED / "dgex" / name)
        matched = match_genes(list(header.feature_ids), [gene_map], "probe", allow_missing=True)
        columns.append(frame_of(matched.apply(values)[:, matched.present], header.sample_ids,
                                np.asarray(gene_map.ensembl_ids)[matched.present]))
    out = pd.concat(columns, axis=1)
    out = out.loc[:, ~out.columns.duplicated()]  # a gene of several map rows: once
    return out if samples is None else out.loc[list(samples)]


def train(name: str, *overrides: str) -> Path:
    ckpt = OUT / name / "checkpoints" / "best.ckpt"
    if not ckpt.exists():
        api.train("model=lr_l2", "logger=none", f"hydra.run.dir={OUT / name}", *overrides)
    return ckpt


def truth_of(predictor: Predictor, frame: pd.DataFrame, log2: bool) -> np.ndarray:
    matched = match_genes(list(frame.columns), [target_map(predictor)], "ensembl", allow_missing=True)
    return predictor.preprocessing.transform_measured_targets(matched.apply(frame.to_numpy()), log2=log2)


def interval_stats(predicted, truth: np.ndarray, genes: np.ndarray) -> tuple[float, float, float]:
    """Coverage, mean width over finite intervals, and the share of unbounded ones (measured genes only)."""
    pred = predicted.layers["standardised"][:, genes]
    half = (predicted.layers["standardised_upper"] - predicted.layers["standardised"])[:, genes]
    per_gene, _ = coverage(pred, truth[:, genes], half)
    finite = np.isfinite(half)
    return float(per_gene.mean()), float(2 * half[finite].mean()) if finite.any() else float("inf"), float(1 - finite.mean())


def measure(name: str, ckpt: Path, cohort: pd.DataFrame, log2: bool, repeats: int, seed: int = 0) -> dict:
    predictor = Predictor.load(ckpt, device="cpu")
    truth = truth_of(predictor, cohort, log2)
    genes = ~np.isnan(truth).any(0)
    options = dict(name=name, log2=log2, id_type="ensembl", missing_landmarks="impute", interval=LEVEL)
    base = predictor.predict(cohort, **options)
    row = {"shift": name, "profiles": len(cohort), "flagged": float(base.obs["unlike_training"].mean())}
    row["coverage"], row["width"], _ = interval_stats(base, truth, genes)
    r = per_gene_pearson(base.layers["standardised"][:, genes], truth[:, genes])
    reliable = base.var["reliable"].to_numpy(bool)[genes]
    row["r_reliable"], row["r_other"] = float(np.nanmean(r[reliable])), float(np.nanmean(r[~reliable]))
    row["n_reliable"] = int(reliable.sum())
    weighted = predictor.predict(cohort, interval_shift="weighted", **options)
    row["w_coverage"], row["w_width"], row["w_unbounded"] = interval_stats(weighted, truth, genes)
    rng = np.random.default_rng(seed)
    for k in (10, 20, 50):
        if len(cohort) - k < 5:
            continue
        for adjust in ("none", "location_scale") if k == 20 else ("none",):
            stats = []
            for _ in range(repeats):
                chosen = rng.permutation(len(cohort))
                cal, rest = chosen[:k], chosen[k:]
                out = predictor.predict(cohort.iloc[rest], calibrate_with=cohort.iloc[cal], adjust=adjust, **options)
                cov, width, _ = interval_stats(out, truth[rest], genes)
                mae = float(np.abs(out.layers["standardised"][:, genes] - truth[rest][:, genes]).mean())
                stats.append((cov, width, mae))
            tag = f"k{k}" + ("_adj" if adjust != "none" else "")
            row[f"{tag}_coverage"], row[f"{tag}_width"], row[f"{tag}_mae"] = np.mean(stats, axis=0)
    row["mae"] = float(np.abs(base.layers["standardised"][:, genes] - truth[:, genes]).mean())
    return row


def shifts(repeats: int) -> list[dict]:
    rows = []
    # GPL96 -> GEUVADIS, and the in-cohort test profiles for reference.
    gpl96 = train("gpl96", "data=gpl96")
    geuvadis = geuvadis_frame()
    rows.append(measure("GPL96 -> GEUVADIS", gpl96, geuvadis, log2=True, repeats=repeats))
    # GEUVADIS -> GPL96.
    geu = train("geuvadis", "data=geuvadis")
    rows.append(measure("GEUVADIS -> GPL96", geu, gpl96_gene_frame(), log2=False, repeats=repeats))
    # In-cohort: GEUVADIS's own test split (the profiles no part of training saw).
    from src.reporting.run_folder import RunFolder

    test_ids = RunFolder(OUT / "geuvadis").read_splits()["test"]
    rows.append(measure("GEUVADIS test split (no shift)", geu, geuvadis.loc[test_ids], log2=True, repeats=repeats))
    # Batches within GPL96: trained on batches 3-5, applied to batches 1 and 2 (29 profiles: 20 measured leave 9).
    values, header = read_matrix(GPL96)
    batch = read_meta(GPL96, "sample")["batch"].astype(float).astype(int)
    keep = batch >= 3
    train_file = OUT / "gpl96_batches_3_5.gctx"
    if not train_file.exists():
        train_file.parent.mkdir(parents=True, exist_ok=True)
        write_gctx(train_file, values[keep], list(np.asarray(header.sample_ids)[keep]), list(header.feature_ids))
    batch_ckpt = train("gpl96_batches", "data=gpl96", f"data.source.path={train_file.resolve()}")
    held_frame = frame_of(values[~keep], np.asarray(header.sample_ids)[~keep], header.feature_ids)
    rows.append(measure_probes(f"GPL96 batches 1-2 ({(~keep).sum()} profiles) from batches 3-5 ({keep.sum()})",
                               batch_ckpt, held_frame, repeats))
    # Synthetic: the latent state moved by 1 sd along every axis.
    syn = train("synthetic", "data=synthetic", "data.max_targets=1000")
    shifted = generate(SyntheticSpec(n_samples=500, n_targets=1000, sample_seed=7, latent_shift=1.0))  # the model's genes
    frame = frame_of(shifted["matrix"], shifted["sample_ids"], shifted["feature_ids"])
    rows.append(measure("synthetic, latent state +1 sd", syn, frame, log2=False, repeats=repeats))
    return rows


def measure_probes(name: str, ckpt: Path, frame: pd.DataFrame, repeats: int) -> dict:
    """A probe-level cohort of a probe-level model: targets averaged from their probes, as the model's data were."""
    tg = read_gene_map(SHARED / "dgex" / "map_tg.txt")
    matched = match_genes(list(frame.columns), [tg], "probe", allow_missing=True)
    targets = frame_of(matched.apply(frame.to_numpy())[:, matched.present], frame.index,
                       np.asarray(tg.ensembl_ids)[matched.present])
    lm = read_gene_map(SHARED / "dgex" / "map_lm.txt")
    matched = match_genes(list(frame.columns), [lm], "probe", allow_missing=True)
    landmarks = frame_of(matched.apply(frame.to_numpy())[:, matched.present], frame.index,
                         np.asarray(lm.ensembl_ids)[matched.present])
    both = pd.concat([landmarks, targets], axis=1)
    return measure(name, ckpt, both.loc[:, ~both.columns.duplicated()], log2=False, repeats=repeats)


def table(rows: list[dict]) -> str:
    def f(row, key, digits=3):
        v = row.get(key)
        return "" if v is None else f"{v:.{digits}f}"

    lines = ["| shift | profiles | flagged (p < 0.01) | 0.9 coverage / width, as trained | shift-weighted (unbounded) "
             "| 10 measured | 20 measured | 50 measured | 20 measured + location/scale (MAE before -> after) "
             "| Pearson reliable / other genes (n reliable) |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        cells = [r["shift"], str(r["profiles"]), f"{100 * r['flagged']:.0f}%",
                 f"{f(r, 'coverage')} / {f(r, 'width', 2)}",
                 f"{f(r, 'w_coverage')} / {f(r, 'w_width', 2)} ({100 * r['w_unbounded']:.0f}%)"]
        for tag in ("k10", "k20", "k50"):
            cells.append(f"{f(r, tag + '_coverage')} / {f(r, tag + '_width', 2)}" if f"{tag}_coverage" in r else "n/a")
        cells.append(f"{f(r, 'k20_adj_coverage')} / {f(r, 'k20_adj_width', 2)} ({f(r, 'mae')} -> {f(r, 'k20_adj_mae')})"
                     if "k20_adj_coverage" in r else "n/a")
        cells.append(f"{f(r, 'r_reliable')} / {f(r, 'r_other')} ({r['n_reliable']})")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="random draws of the measured profiles")
    args = parser.parse_args()
    rows = shifts(args.repeats)
    OUT.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_csv(OUT / "shift_results.tsv", sep="\t", index=False)
    print(table(rows))


if __name__ == "__main__":
    main()
