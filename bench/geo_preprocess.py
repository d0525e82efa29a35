"""GEO preprocessing at the scale of the LINCS compendium, on a synthetic file of the same layout.

    python bench/geo_preprocess.py [--samples 129158] [--workdir /tmp/geo-bench]

Writes a ``bgedv2_QNORM.gctx``-layout file (samples x 22,268 GPL96 probes, float32; 11.5 GB at full
size) with the D-GEX maps' probes, then measures, each in a fresh process with the file evicted from
the page cache: reading the file once; ``prepare_data`` (probes -> genes, duplicate removal, cache
write); and ``setup`` (loading the cache, quantile normalisation, split, standardisation). Wall time
and peak resident memory go into the ``geo-preprocess`` section of docs/BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, machine, run_child, write_section  # noqa: E402

MAPS = ROOT.parent / "shared" / "data" / "dgex"
N_PROBES = 22268  # GPL96 probes in bgedv2_QNORM.gctx

READ_ONCE = """
import json, sys, time
from src.data.io.gctx import GCTXReader
from bench.common import peak_rss_gib
t = time.perf_counter()
reader = GCTXReader(sys.argv[1])
for _ in reader.blocks(block_size=2048):
    pass
print(json.dumps({"seconds": time.perf_counter() - t, "peak_gib": peak_rss_gib()}))
"""

PIPELINE = """
import json, sys, time
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from bench.common import ROOT, peak_rss_gib
path, maps, cache, stage = sys.argv[1:5]
# The data=geo preset of conf/data/geo.yaml, exactly as `python -m src.train data=geo ...` builds it.
with initialize_config_dir(version_base="1.3", config_dir=str(ROOT / "conf")):
    cfg = compose("train", overrides=["data=geo", f"data.source.path={path}", f"data.source.landmark_map={maps}/map_lm.txt",
                                      f"data.source.target_map={maps}/map_tg.txt", f"data.source.cache_dir={cache}"])
dm = instantiate(cfg.data, _convert_="all")
t = time.perf_counter()
dm.prepare_data() if stage == "prepare" else dm.setup("fit")
out = {"seconds": time.perf_counter() - t, "peak_gib": peak_rss_gib()}
if stage == "prepare":
    import h5py
    with h5py.File(dm.source.cache_path(), "r") as f:
        out["phases"] = json.loads(f.attrs["info"])["seconds"]
if stage == "setup":
    out["split"] = [len(dm.splits[s]) for s in ("train", "val", "test")]
    out["processed_gib"] = sum(
        (t.landmarks.numel() + t.targets.numel()) * 4 for t in dm.splits.values()) / 2**30
print(json.dumps(out))
"""


def evict(path: Path) -> None:
    """Drop a file's pages from the page cache, so the next read comes from disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=129158)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/geo-bench"))
    parser.add_argument("--keep", action="store_true", help="keep the synthetic GEO file and the cache")
    args = parser.parse_args()
    from src.data.fixtures import write_geo_like
    from src.data.genes import read_gene_map

    args.workdir.mkdir(parents=True, exist_ok=True)
    path = args.workdir / f"bgedv2_like_{args.samples}.gctx"
    cache = args.workdir / "cache"
    lm, tg = read_gene_map(MAPS / "map_lm.txt"), read_gene_map(MAPS / "map_tg.txt")
    n_map_probes = len(set(lm.all_probes) | set(tg.all_probes))
    write_seconds = None
    if not path.exists():
        t = time.perf_counter()
        write_geo_like(path, lm, tg, args.samples, extra_probes=N_PROBES - n_map_probes)
        write_seconds = time.perf_counter() - t
    size_gib = path.stat().st_size / 2**30
    results = {}
    evict(path)
    results["read"] = run_child(READ_ONCE, str(path))
    for stage in ("prepare", "setup"):
        for f in [path, *cache.glob("*.h5")]:
            evict(f)
        results[stage] = run_child(PIPELINE, str(path), str(MAPS), str(cache), stage)
        print(stage, results[stage], flush=True)
    raw_gib = args.samples * N_PROBES * 4 / 2**30
    rows = [
        ("Read the file once (all probes, blocks of 2,048 samples)", results["read"]),
        ("`prepare_data`: probes -> genes, duplicate removal, cache write", results["prepare"]),
        ("`setup`: load cache, quantile normalisation, split, standardisation", results["setup"]),
    ]
    split = results["setup"]["split"]
    phases = results["prepare"]["phases"]
    processed_gib = results["setup"]["processed_gib"]
    peak = max(r["peak_gib"] for r in results.values())
    verdict = "below" if peak < raw_gib + processed_gib else "ABOVE"
    body = "\n".join([
        "## GEO preprocessing at full scale (`bench/geo_preprocess.py`)",
        "",
        f"Machine: {machine()}.",
        "",
        f"Input: a synthetic `bgedv2_QNORM.gctx`-layout file, {args.samples:,} samples x {N_PROBES:,} probes "
        f"(float32, {size_gib:.1f} GiB on disk; raw matrix {raw_gib:.1f} GiB), with every probe of the D-GEX maps"
        + (f"; writing it took {write_seconds / 60:.1f} min." if write_seconds else "."),
        "Each step runs in a fresh process with the file evicted from the page cache first.",
        "",
        "| Step | Wall time | Peak RSS |",
        "|---|---|---|",
        *(f"| {name} | {r['seconds'] / 60:.1f} min ({r['seconds']:.0f} s) | {r['peak_gib']:.1f} GiB |" for name, r in rows),
        "",
        f"Within `prepare_data`: reading and mapping {phases['read_and_map']:.0f} s, duplicate removal "
        f"{phases['remove_duplicates']:.0f} s (k-means fit and within-cluster distances), the rest writing the cache.",
        "",
        f"Result: {sum(split):,} samples after duplicate removal, split {split[0]:,} / {split[1]:,} / {split[2]:,}; "
        f"the processed splits hold {processed_gib:.1f} GiB of float32 in memory. The highest peak, {peak:.1f} GiB, "
        f"is {verdict} the raw matrix plus the processed one ({raw_gib + processed_gib:.1f} GiB): the raw file is only "
        "ever in memory one block of samples at a time.",
        "",
        "The page-cache eviction is this VM's (`posix_fadvise`); the host may still cache the file, so the read "
        "time is a lower bound for a cold disk.",
    ])
    print(f"wrote {write_section('geo-preprocess', body)}")
    if not args.keep:
        path.unlink()
        for f in cache.glob("*.h5"):
            f.unlink()


if __name__ == "__main__":
    main()
