"""Keep freed memory in the process during training (glibc), instead of unmapping and refaulting it every step.

glibc's malloc serves blocks above its mmap threshold (at most 32 MiB) with fresh ``mmap`` calls and
returns them to the OS when freed. Gradients (freed by ``zero_grad(set_to_none=True)``), bf16 weight
copies under autocast and large activations are such blocks, so every step page-faults and zeroes
hundreds of MiB again. Serving them from the heap and keeping freed memory makes steps of the large
MLPs 1.3-1.5x faster on CPU (docs/BENCHMARKS.md). The price: memory freed during training is not
returned to the OS before the process ends.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import sys

from lightning.pytorch.callbacks import Callback

log = logging.getLogger(__name__)

M_TRIM_THRESHOLD = -1
M_MMAP_MAX = -4


def keep_freed_memory() -> bool:
    """Tell glibc to serve every block from the heap and keep freed memory; False where that does not apply."""
    if not sys.platform.startswith("linux"):
        return False
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc (e.g. musl)
        return False
    ok = mallopt(M_MMAP_MAX, 0) == 1 and mallopt(M_TRIM_THRESHOLD, 2**31 - 1) == 1
    if ok:
        log.debug("glibc malloc: large blocks from the heap, freed memory kept")
    return ok


class KeepFreedMemory(Callback):
    """Apply :func:`keep_freed_memory` when fitting starts, i.e. after the data were loaded (whose
    temporaries are returned to the OS as usual); ``enabled=false`` leaves glibc's defaults."""

    def __init__(self, enabled: bool = True):
        self.enabled = enabled

    def on_fit_start(self, trainer, pl_module) -> None:
        if self.enabled:
            keep_freed_memory()
