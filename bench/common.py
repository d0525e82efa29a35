"""Shared pieces of the benchmarks: machine description, peak memory of a child process, and
rewriting one section of ``docs/BENCHMARKS.md`` (each benchmark owns the section between its markers)."""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BENCHMARKS = ROOT / "docs" / "BENCHMARKS.md"


def machine() -> str:
    """One line describing this machine and software, for the top of each results section."""
    import numpy
    import torch

    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor() or "unknown CPU")
    mem = next((int(line.split()[1]) // 2**20 for line in Path("/proc/meminfo").read_text().splitlines()
                if line.startswith("MemTotal")), 0)
    gpu = f", GPU {torch.cuda.get_device_name()}" if torch.cuda.is_available() else ""
    return (f"{dt.date.today().isoformat()}, {os.cpu_count()} cores ({cpu}), {mem} GiB RAM{gpu}, "
            f"Python {platform.python_version()}, torch {torch.__version__}, numpy {numpy.__version__}")


#: The warning that opens a section written by a ``--quick`` run.
QUICK_NOTE = "**Quick mode** (`--quick`): a check that the benchmark runs, too few steps for reliable numbers.\n\n"


def machine_paragraph(quick: bool, details: str) -> str:
    """The paragraph under a training benchmark's heading: the quick-mode warning when ``quick``, then
    ``Machine: <machine()>; <details>.`` (``details``: what the benchmark adds, e.g. threads and device)."""
    return (QUICK_NOTE if quick else "") + f"Machine: {machine()}; {details}."


def run_child(code: str, *args: str) -> dict:
    """Run ``python -c code args...`` in a fresh process and return the JSON it prints last."""
    proc = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, cwd=ROOT)
    if proc.returncode != 0:
        raise RuntimeError(f"benchmark child failed:\n{proc.stderr[-3000:]}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def peak_rss_gib() -> float:
    """Peak resident memory of this process so far (``VmHWM``; unlike ``ru_maxrss`` it does not start at
    the parent's size when the process was forked)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 2**20
    raise RuntimeError("no VmHWM in /proc/self/status")


def write_section(name: str, body: str) -> Path:
    """Replace (or append) the ``name`` section of docs/BENCHMARKS.md, between its HTML comment markers."""
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    text = BENCHMARKS.read_text() if BENCHMARKS.exists() else "# Benchmarks\n\nWritten by the scripts in `bench/`.\n"
    block = f"{start}\n{body.rstrip()}\n{end}"
    pattern = re.compile(re.escape(start) + ".*?" + re.escape(end), re.S)
    text = pattern.sub(lambda _: block, text) if pattern.search(text) else text.rstrip() + "\n\n" + block + "\n"
    BENCHMARKS.parent.mkdir(parents=True, exist_ok=True)
    BENCHMARKS.write_text(text)
    return BENCHMARKS
