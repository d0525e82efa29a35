"""Write files so that a crash never leaves a half-written file under the final name.

:func:`atomic_path` hands out a temporary name next to the final one, ``.<name>.<host>.<pid>-<hex>.tmp``,
and renames it into place only when the block succeeds; an exception removes it. A writer killed
outright (SIGKILL, out of memory, a node lost) cannot remove its temporary file, so the next
:func:`atomic_path` for the same target removes the temporary files of that target left by processes
of this host that no longer run (the host and PID in the name say whose it is). Temporary files of
running processes (concurrent writers such as DDP ranks) and of other hosts (a shared file system) are
left alone.

Errors creating the temporary file, writing it (an :class:`OSError` that names it) or renaming it name
the final path, never only the hidden temporary one.
"""

from __future__ import annotations

import errno
import logging
import os
import re
import socket
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from src.common.errors import NoRoomError

log = logging.getLogger(__name__)

DISK_FULL = (errno.ENOSPC, errno.EFBIG, errno.EDQUOT)  # a full disk, a file over the size limit, a quota


def _host() -> str:
    """This host's name as it may appear in a file name (no separators, no spaces)."""
    return re.sub(r"[^A-Za-z0-9_.-]", "_", socket.gethostname()) or "localhost"


def temporary_name(path: Path) -> Path:
    """A fresh temporary name for ``path``: ``.<name>.<host>.<pid>-<8 hex>.tmp`` in the same folder."""
    return path.with_name(f".{path.name}.{_host()}.{os.getpid()}-{uuid.uuid4().hex[:8]}.tmp")


def _running(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, ValueError):  # another user's process, or not a PID we can ask about
        return True
    return True


def stale_temporaries(path: str | os.PathLike) -> list[Path]:
    """Temporary files of ``path`` left by processes of this host that no longer run."""
    path = Path(path)
    pattern = re.compile(rf"\.{re.escape(path.name)}\.{re.escape(_host())}\.(\d+)-[0-9a-f]{{8}}\.tmp")
    try:
        names = os.listdir(path.parent)
    except OSError:
        return []
    stale = []
    for name in sorted(names):
        match = pattern.fullmatch(name)
        if match and not _running(int(match.group(1))):
            stale.append(path.with_name(name))
    return stale


def remove_stale_temporaries(path: str | os.PathLike) -> list[Path]:
    """Remove :func:`stale_temporaries` of ``path`` (one log line names them); returns what was removed."""
    removed = []
    for tmp in stale_temporaries(path):
        try:
            tmp.unlink()
        except FileNotFoundError:  # another writer of the same target removed it first
            continue
        except OSError as err:
            log.warning("Could not remove the stale temporary file %s: %s", tmp, err.strerror or err)
            continue
        removed.append(tmp)
    if removed:
        log.warning("Removed %d temporary file(s) of %s left by killed writers: %s",
                    len(removed), path, ", ".join(p.name for p in removed))
    return removed


def _reason(path: Path, err: OSError, doing: str) -> str:
    """Why ``path`` cannot be written, in words that name no temporary file."""
    if isinstance(err, (NotADirectoryError, FileExistsError)) or err.errno == errno.ENOTDIR:
        for parent in path.parents:
            if os.path.lexists(parent):
                if not parent.is_dir():
                    return f"{parent} is not a directory"
                break
    if isinstance(err, IsADirectoryError) or (doing == "rename" and path.is_dir()):
        return "it is a directory"
    what = err.strerror or str(err)
    if doing == "folder":
        return f"cannot create the folder {path.parent} ({what})"
    if doing == "create":
        return f"cannot create a file in {path.parent} ({what})"
    if doing == "rename":
        return f"cannot rename the finished file into place ({what})"
    return what


def unwritable(path: str | os.PathLike, err: OSError, doing: str = "write", tmp: Path | None = None) -> OSError:
    """An error of ``err``'s kind saying that ``path`` cannot be written and why.

    ``doing``: ``folder`` (creating its folder), ``create`` (creating a file next to it), ``write`` or
    ``rename``; ``tmp``: the temporary file being written, named after the reason.
    """
    path = Path(path)
    message = f"cannot write {path}: {_reason(path, err, doing)}"
    if tmp is not None:
        message += f" (while writing its temporary file {tmp.name}: {err})"
    kind = NotADirectoryError if isinstance(err, FileExistsError) else NoRoomError if err.errno in DISK_FULL else type(err)
    try:
        new = kind(message)
    except Exception:  # an OSError subclass with another signature
        new = OSError(message)
    new.errno = err.errno
    return new


def _names(err: BaseException, tmp: Path) -> bool:
    """Whether ``err`` is about the file being written: it names it, or it is a full disk (a write error of
    any file of the block: which one it names does not help the user)."""
    return isinstance(err, OSError) and (err.filename in (tmp, str(tmp)) or tmp.name in str(err)
                                         or err.errno in DISK_FULL)


def disk_full_error(err: BaseException) -> OSError | None:
    """An HDF5 write failure that h5py raises as a ``RuntimeError`` carrying the system's errno (``errno = 28``,
    a full disk; 27, a file over the size limit; 122, a quota), as the ``OSError`` it is; None for others."""
    match = re.search(r"errno = (\d+)", str(err)) if isinstance(err, RuntimeError) else None
    if match and int(match.group(1)) in DISK_FULL:
        code = int(match.group(1))
        return OSError(code, os.strerror(code))
    return None


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it to ``path`` only if the block succeeds.

    The folder is created when missing. The temporary file exists (empty) when the block starts; its
    name is unique per writer (host, PID and a random part), so concurrent writers (e.g. DDP ranks) never
    clobber each other's partial files, and the rename is atomic on POSIX file systems. Temporary files
    of ``path`` left by killed processes of this host are removed first. The temporary file is removed
    whenever the block fails; an :class:`OSError` naming it (e.g. a full disk) is raised again naming
    ``path``.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise unwritable(path, err, "folder") from err
    remove_stale_temporaries(path)
    tmp = temporary_name(path)
    try:
        os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
    except OSError as err:
        raise unwritable(path, err, "create") from err
    try:
        try:
            yield tmp
        except NoRoomError:
            raise  # an inner file of the block already named (nested writers: the first message is the one)
        except OSError as err:
            if _names(err, tmp):
                raise unwritable(path, err, "write", tmp) from err
            raise
        except RuntimeError as err:  # h5py's form of a failed write
            full = disk_full_error(err)
            if full is not None:
                raise unwritable(path, full, "write") from err
            raise
        try:
            os.replace(tmp, path)
        except OSError as err:
            raise unwritable(path, err, "rename") from err
    finally:
        tmp.unlink(missing_ok=True)


def claim_path(path: Path) -> Path:
    """The marker that says a writer is producing ``path``: ``.<name>.claim`` in the same folder."""
    return path.with_name(f".{path.name}.claim")


@contextmanager
def claimed(path: str | os.PathLike, key: str = "output") -> Iterator[Path]:
    """Hold ``path`` for this process while the block runs, so that a second writer of the same output is
    refused at its start instead of silently replacing the first one's complete result when it finishes.

    The claim is a marker file created exclusively (``O_EXCL``) next to ``path``, holding this host and PID;
    it is removed when the block ends. A marker whose writer is gone (a killed process of this host) is
    stale: it is removed and the claim taken. A live one (or one of another host, which cannot be asked)
    raises :class:`FileExistsError` naming the output, the writer and what to do.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise unwritable(path, err, "folder") from err
    marker = claim_path(path)
    for _ in range(2):
        try:
            fd = os.open(marker, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            break
        except FileExistsError:
            holder = _holder(marker)
            if holder is not None and holder[0] == _host() and not _running(holder[1]):
                log.warning("Removed the claim on %s of a writer that no longer runs (PID %d)", path, holder[1])
                marker.unlink(missing_ok=True)
                continue
            who = f"process {holder[1]} on {holder[0]}" if holder else "another process"
            raise FileExistsError(
                f"{key}={path} is being written by {who} (claimed in {marker.name}); wait for it to finish, or "
                f"choose another {key} (if no such process runs, delete {marker})"
            ) from None
        except OSError as err:
            raise unwritable(path, err, "create") from err
    else:  # pragma: no cover - a stale claim re-created between our removal and retry
        raise FileExistsError(f"{key}={path} is being written by another process; choose another {key}")
    try:
        os.write(fd, f"{_host()} {os.getpid()}\n".encode())
    finally:
        os.close(fd)
    try:
        yield marker
    finally:
        marker.unlink(missing_ok=True)


def _holder(marker: Path) -> tuple[str, int] | None:
    """``(host, pid)`` written in a claim marker, or None if it cannot be read."""
    try:
        host, pid = marker.read_text().split()
        return host, int(pid)
    except (OSError, ValueError):
        return None


@contextmanager
def locked(path: str | os.PathLike, waiting: str = "") -> Iterator[None]:
    """Hold an exclusive advisory lock (``flock``) on the file ``path`` (created if missing) while the block runs;
    another process asking for it waits (logging ``waiting`` once, if given). The system releases the lock when
    its holder exits or dies, so a killed process never leaves it held. Used where several processes of one
    node (DDP ranks) would make the same file: the first makes it, the others wait and then use it."""
    import fcntl

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if waiting:
                log.info(waiting)
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock
