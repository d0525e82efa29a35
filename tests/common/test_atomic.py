"""atomic_path: files appear only when complete, temporary files of killed writers are removed by the next
writer of the same file, and errors name the final path, not the hidden temporary one."""

import errno
import logging
import os
import signal
import subprocess
import sys
import time

import pytest

from src.common.atomic import _host, atomic_path, stale_temporaries

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def names(folder):
    return sorted(p.name for p in folder.iterdir())


def dead_pid() -> int:
    """The PID of a process that has ended (and been reaped)."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_the_file_appears_only_when_the_block_succeeds_under_a_name_with_host_and_pid(tmp_path):
    target = tmp_path / "out.txt"
    with atomic_path(target) as tmp:
        assert tmp.parent == tmp_path and tmp.exists() and not target.exists()
        assert tmp.name.startswith(f".out.txt.{_host()}.{os.getpid()}-") and tmp.name.endswith(".tmp")
        tmp.write_text("done")
    assert target.read_text() == "done" and names(tmp_path) == ["out.txt"]


def test_a_failing_block_removes_the_temporary_file_and_keeps_the_earlier_file(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("before")
    with pytest.raises(RuntimeError, match="boom"):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("boom")
    assert target.read_text() == "before" and names(tmp_path) == ["out.txt"]


def test_concurrent_writers_of_one_target_do_not_touch_each_others_temporary_files(tmp_path):
    target = tmp_path / "out.txt"
    with atomic_path(target) as first, atomic_path(target) as second:  # e.g. two DDP ranks of this process
        assert first != second and first.exists() and second.exists()
        first.write_text("1")
        second.write_text("2")
    assert target.read_text() == "1" and names(tmp_path) == ["out.txt"]  # the outer block renamed last


def test_temporary_files_of_dead_writers_of_this_host_are_removed_and_no_others(tmp_path, caplog):
    target = tmp_path / "big.h5ad"
    dead = dead_pid()
    alive = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        host = _host()
        stale = tmp_path / f".big.h5ad.{host}.{dead}-0123abcd.tmp"
        kept = [
            f".big.h5ad.{host}.{alive.pid}-0123abcd.tmp",  # a running writer (another rank) is left alone
            f".big.h5ad.{host}.{os.getpid()}-0123abcd.tmp",  # ours
            f".big.h5ad.{host}x.{dead}-0123abcd.tmp",  # another host on a shared file system
            f".big.h5ad.other-node.{dead}-0123abcd.tmp",
            f".other.h5ad.{host}.{dead}-0123abcd.tmp",  # another target
            f".big.h5ad.x.{host}.{dead}-0123abcd.tmp",  # the temporary of big.h5ad.x
            ".big.h5ad.957656c6.tmp",  # the old name, whose writer is unknown
        ]
        for name in [stale.name, *kept]:
            (tmp_path / name).write_bytes(b"partial")
        assert stale_temporaries(target) == [stale]
        with caplog.at_level(logging.WARNING, logger="src.common.atomic"):
            with atomic_path(target) as tmp:
                tmp.write_text("complete")
        assert names(tmp_path) == sorted(["big.h5ad", *kept])
        lines = [r.getMessage() for r in caplog.records if r.name == "src.common.atomic"]
        assert len(lines) == 1 and stale.name in lines[0] and str(target) in lines[0] and "killed" in lines[0]
    finally:
        alive.kill()
        alive.wait()


WRITER = """
import sys, time
from src.common.atomic import atomic_path
with atomic_path(sys.argv[1]) as tmp, open(tmp, "wb") as f:
    while True:
        f.write(b"x" * 65536)
        f.flush()
        time.sleep(0.01)
"""


def test_a_writer_killed_with_sigkill_leaves_a_temporary_file_that_the_next_writer_removes(tmp_path):
    target = tmp_path / "big.bin"
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(target)], cwd=REPO)
    try:
        deadline = time.monotonic() + 10
        while not [p for p in tmp_path.glob(".big.bin.*.tmp") if p.stat().st_size > 0] and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    (left,) = tmp_path.glob(".big.bin.*.tmp")
    assert f".{proc.pid}-" in left.name and left.stat().st_size > 0 and not target.exists()
    with atomic_path(target) as tmp:
        tmp.write_text("complete")
    assert names(tmp_path) == ["big.bin"] and target.read_text() == "complete"


def test_a_folder_that_is_a_file_names_the_output_not_the_temporary_file(tmp_path):
    (tmp_path / "file").write_text("x")
    target = tmp_path / "file" / "sub" / "out.txt"
    with pytest.raises(NotADirectoryError) as err:
        with atomic_path(target):
            pass
    assert str(err.value) == f"cannot write {target}: {tmp_path / 'file'} is not a directory"


def test_a_folder_where_no_file_can_be_created_names_the_output_even_as_root():
    target = "/proc/out.txt"  # /proc refuses new files, whoever asks
    with pytest.raises(OSError) as err:
        with atomic_path(target):
            pass
    assert str(err.value).startswith(f"cannot write {target}: cannot create a file in /proc (") and ".tmp" not in str(err.value)


def test_a_target_that_is_a_directory_names_it_and_leaves_no_temporary_file(tmp_path):
    target = tmp_path / "out"
    (target / "inside").mkdir(parents=True)
    with pytest.raises(OSError, match=rf"^cannot write {target}: it is a directory$"):
        with atomic_path(target) as tmp:
            tmp.write_text("x")
    assert names(tmp_path) == ["out"]


def test_an_os_error_naming_the_temporary_file_is_raised_again_naming_the_output(tmp_path):
    target = tmp_path / "out.h5"
    with pytest.raises(OSError) as err:
        with atomic_path(target) as tmp:
            raise OSError(errno.ENOSPC, "No space left on device", str(tmp))
    message = str(err.value)
    assert message.startswith(f"cannot write {target}: No space left on device (while writing its temporary file .out.h5.")
    assert err.value.errno == errno.ENOSPC and names(tmp_path) == []
    with pytest.raises(OSError, match="^unrelated$"):  # errors about other files pass unchanged
        with atomic_path(target):
            raise OSError("unrelated")


@pytest.mark.parametrize("raised", [OSError(errno.ENOSPC, "No space left on device"),
                                    OSError(errno.EFBIG, "File too large"),
                                    RuntimeError("Can't close dataset (file write failed: errno = 28, error message = "
                                                 "'No space left on device')")])
def test_a_full_disk_inside_the_block_is_one_error_naming_the_output(tmp_path, raised):
    """Whatever file of the block the system names (or none; h5py says it in a RuntimeError), a full disk, a
    file over the size limit or a quota is a NoRoomError naming the output, and no temporary file is left."""
    from src.common.errors import USER_ERRORS, NoRoomError

    target = tmp_path / "out.h5ad"
    with pytest.raises(NoRoomError, match=rf"cannot write {target}: ") as caught:
        with atomic_path(target):
            raise raised
    assert isinstance(caught.value, USER_ERRORS) and caught.value.errno in (errno.ENOSPC, errno.EFBIG)
    assert list(tmp_path.iterdir()) == []
