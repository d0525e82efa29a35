"""Run every benchmark and refresh docs/BENCHMARKS.md: ``make bench`` (``make bench ARGS=--quick``).

    python bench/run_all.py [--quick]

Runs ``geo_preprocess.py``, ``train_throughput.py``, ``memory_scaling.py`` and ``beyond_memory.py`` one after another, each
as its own process with its defaults (each rewrites its own section of docs/BENCHMARKS.md), then
rewrites the file's header line with this machine and the date. ``--quick`` passes short settings
(``--quick`` to the training benchmarks, ``--samples 20000`` instead of the full-size GEO file): a
check that everything runs in a few minutes, whose numbers the sections label as quick.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import BENCHMARKS, ROOT, machine  # noqa: E402

BENCH = Path(__file__).resolve().parent
#: script -> arguments in quick mode (the full run uses each script's defaults).
BENCHMARKS_TO_RUN = {
    "geo_preprocess.py": ["--samples", "20000"],
    "train_throughput.py": ["--quick"],
    "memory_scaling.py": ["--quick"],
    "beyond_memory.py": ["--quick"],
}
HEADER = re.compile(r"^Written by the scripts in `bench/`.*$", re.MULTILINE)


def rewrite_header(quick: bool) -> None:
    """Replace the line under the title with how the file is made and where and when it last was."""
    line = (f"Written by the scripts in `bench/` (`make bench` runs them all); last run: {machine()}"
            + (" -- **quick mode** (`--quick`: short settings, GEO at 20,000 samples)." if quick else "."))
    text = BENCHMARKS.read_text() if BENCHMARKS.exists() else "# Benchmarks\n\n"
    if HEADER.search(text):
        text = HEADER.sub(lambda _: line, text, count=1)
    else:
        title, _, rest = text.partition("\n")
        text = f"{title}\n\n{line}\n{rest}" if title.startswith("# ") else f"# Benchmarks\n\n{line}\n\n{text}"
    BENCHMARKS.write_text(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="short settings: a check that every benchmark runs")
    args = parser.parse_args()
    failed, t0 = [], time.perf_counter()
    for script, quick_args in BENCHMARKS_TO_RUN.items():
        command = [sys.executable, str(BENCH / script), *(quick_args if args.quick else [])]
        print(f"\n=== {' '.join(command[1:])}", flush=True)
        t = time.perf_counter()
        if subprocess.run(command, cwd=ROOT, check=False).returncode != 0:
            failed.append(script)
        print(f"=== {script}: {'FAILED' if script in failed else 'done'} in {(time.perf_counter() - t) / 60:.1f} min",
              flush=True)
    if failed:
        sys.exit(f"benchmarks failed: {', '.join(failed)} (docs/BENCHMARKS.md header left as it was)")
    rewrite_header(args.quick)
    print(f"\nall benchmarks done in {(time.perf_counter() - t0) / 60:.1f} min; wrote {BENCHMARKS}")


if __name__ == "__main__":
    main()
