"""Many command lines of the entry points at the cost of one interpreter start: import once, fork per line.

``python -m tests.forked_cli JOBS.json OUT_DIR`` (from the repository root): JOBS maps a name to
``{"argv": [module, *args], "env": {...}}``. After importing every module named there, this process
forks one child per job (at most ``--parallel`` at a time); the child runs the module as
``python -m module args`` would from then on (``sys.argv``, ``__main__``, the environment, its exit
status, its stdout and stderr), so a test sees what a user would see, less the seconds of
interpreter start and imports. Each job's status and output land in OUT_DIR/<name>.rc, .out and .err.

Only the start differs from a real command line: tests that must see that too run a real subprocess.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import runpy
import sys
import threading
import traceback
from pathlib import Path


def run_child(name: str, job: dict, out_dir: Path) -> int:
    """The job's module as ``__main__`` in this (forked) process; its exit status as Python would give it."""
    for stream, suffix in ((1, "out"), (2, "err")):
        os.dup2(os.open(out_dir / f"{name}.{suffix}", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644), stream)
    os.environ.update(job.get("env") or {})
    module, *args = job["argv"]
    sys.argv = [importlib.util.find_spec(module).origin, *args]
    try:
        runpy.run_module(module, run_name="__main__", alter_sys=True)
        return 0
    except SystemExit as exit_:
        if exit_.code is None or isinstance(exit_.code, int):
            return exit_.code or 0
        print(exit_.code, file=sys.stderr)
        return 1
    except BaseException:  # noqa: BLE001 - printed as the interpreter would
        traceback.print_exc()
        return 1
    finally:
        sys.stdout.flush()
        sys.stderr.flush()


def main(argv: list[str]) -> None:
    jobs_file, out_dir, *rest = argv
    parallel = int(rest[rest.index("--parallel") + 1]) if "--parallel" in rest else 4
    jobs = json.loads(Path(jobs_file).read_text())
    out_dir = Path(out_dir)
    for module in sorted({job["argv"][0] for job in jobs.values()}):
        importlib.import_module(module)
    if threading.active_count() != 1:
        raise RuntimeError(f"{threading.active_count()} threads after the imports: forking would be unsafe")
    running: dict[int, str] = {}

    def reap() -> None:
        pid, status = os.wait()
        (out_dir / f"{running.pop(pid)}.rc").write_text(str(os.waitstatus_to_exitcode(status)))

    for name, job in jobs.items():
        while len(running) >= parallel:
            reap()
        pid = os.fork()
        if pid == 0:
            os._exit(run_child(name, job, out_dir))
        running[pid] = name
    while running:
        reap()


if __name__ == "__main__":
    main(sys.argv[1:])
