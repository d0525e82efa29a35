"""Progress bars for long work (reading, duplicate removal, normalisation, prediction), drawn with rich.

Only the first process of a distributed run draws them: the other ranks do the same work silently,
so the terminal shows one bar, not one per process.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn


def is_first_process() -> bool:
    """True in a single process and in rank 0 of a distributed run (torchrun, SLURM or Lightning's launcher)."""
    for variable in ("RANK", "SLURM_PROCID", "LOCAL_RANK"):
        value = os.environ.get(variable)
        if value is not None:
            return value == "0"
    return True


def jupyter_without_widgets() -> bool:
    """True in a Jupyter kernel without ipywidgets, where rich cannot draw a live bar (it would warn instead)."""
    from importlib.util import find_spec

    from rich.console import Console

    return Console().is_jupyter and find_spec("ipywidgets") is None


@contextmanager
def progress_bar(description: str, total: float) -> Iterator[Callable[[float], None]]:
    """Show a bar while the block runs (rank 0 only; not in a notebook without ipywidgets); yields
    ``advance(n)`` to call as work gets done."""
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
        disable=not is_first_process() or jupyter_without_widgets(),
    ) as bar:
        task = bar.add_task(description, total=total)
        yield lambda n=1: bar.advance(task, n)
