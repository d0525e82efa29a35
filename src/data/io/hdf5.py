"""An HDF5 output file that a failed write cannot turn into a crash.

When a write fails (a full disk, a file over ``ulimit -f``), HDF5 keeps the unwritten chunks and metadata in its
caches and tries to flush them again when the file is closed, and again at interpreter exit, where a failure
ends the process with a segmentation fault. The output is being discarded anyway (it is a temporary file,
:func:`~src.common.atomic.atomic_path`), so on failure the file's descriptor is pointed at ``/dev/null``
before HDF5 closes it: the last flush goes nowhere and the close succeeds. That is not enough once a write
inside HDF5 has failed (its internal state is then beyond repair, and it crashes when its objects are
collected), so a writer first reserves the room its file will take (:func:`reserve`): a disk or a size limit
that cannot hold the output fails there, before any data is written, and no later write can fail for room.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

import h5py


def discard(f: h5py.File) -> None:
    """Close ``f`` without writing anything more to its file (see the module docstring)."""
    try:
        handle = f.id.get_vfd_handle()
        null = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(null, handle)
        finally:
            os.close(null)
    except Exception:  # noqa: BLE001 - not a POSIX file driver, or already closed: close as it is
        pass
    try:
        f.close()
    except Exception:  # noqa: BLE001 - the failure being reported is the one that brought us here
        pass


def reserve(f: h5py.File, nbytes: int, path) -> None:
    """Allocate ``nbytes`` of disk for the open file ``f`` (``posix_fallocate`` on its descriptor), so that the
    writes that fill it cannot fail for want of room; a full disk, a size limit or a quota raises a
    :class:`~src.common.errors.NoRoomError` naming ``path`` now. File systems that cannot allocate ahead are
    left as they are. :func:`hdf5_output` trims the file to what HDF5 used when it closes it."""
    from src.common.atomic import DISK_FULL, unwritable

    try:
        os.posix_fallocate(f.id.get_vfd_handle(), 0, int(nbytes))
    except OSError as err:
        if err.errno in DISK_FULL:
            raise unwritable(path, err, "write") from None
    except (AttributeError, ValueError):  # no posix_fallocate here, or not a POSIX file driver
        pass


@contextmanager
def hdf5_output(path, mode: str = "w", **options) -> Iterator[h5py.File]:
    """``h5py.File(path, mode, **options)``, closed when the block ends, and discarded (:func:`discard`) when
    the block or the final close fails."""
    f = h5py.File(path, mode, **options)
    try:
        yield f
    except BaseException:
        discard(f)
        raise
    try:
        f.flush()
        used = f.id.get_filesize()  # the end of what HDF5 allocated (a reserved file is longer)
        f.close()
    except BaseException:
        discard(f)
        raise
    if os.path.getsize(path) > used:
        os.truncate(path, used)  # the room reserved and not used, so the file ends where HDF5's data do
