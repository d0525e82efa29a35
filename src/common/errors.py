"""Errors in the user's input or config, and how the command-line entry points report them.

:class:`InputError` is a problem the user can fix: a file, a value or a setting. Its message names
the file or config key, the problem, what was expected and, where there is one, the fix, written
as a valid override of the command where it can occur (``data.batch_size=200``). It subclasses
``ValueError``, so ``except ValueError`` and ``pytest.raises(ValueError)`` keep working.

:func:`cli_errors` wraps a Hydra task function (``src.train``, ``src.eval``, ``src.predict``):

- an :class:`InputError`, or a ``FileNotFoundError``, ``FileExistsError``, ``IsADirectoryError``,
  ``NotADirectoryError`` or ``PermissionError`` (a missing input, an output that would be replaced or
  cannot be written), prints ``error: <message>`` to stderr, with no traceback, and exits with status 1;
- in a multirun, any failing job (input error or bug) is handed to ``on_job_failure`` (which records it
  in the job's folder) and the sweep goes on with the next job; a bug's traceback is still logged;
- ``HYDRA_FULL_ERROR=1`` re-raises everything, so Hydra prints the full traceback;
- any other exception (a bug) propagates, and Hydra prints its traceback as usual.
"""

from __future__ import annotations

import functools
import logging
import os
import sys
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

FULL_ERROR = "HYDRA_FULL_ERROR"


class InputError(ValueError):
    """Bad input or config: the message names the file or key, the problem, what was expected and the fix."""


class NoRoomError(OSError):
    """An output that does not fit: a full disk, a file over the size limit (``ulimit -f``) or a quota."""


USER_ERRORS = (InputError, FileNotFoundError, FileExistsError, IsADirectoryError, NotADirectoryError, PermissionError,
               NoRoomError)


def full_error_asked() -> bool:
    """True when the user asked for full tracebacks (``HYDRA_FULL_ERROR=1``, as Hydra reads it)."""
    return os.environ.get(FULL_ERROR) == "1"


def user_error(err: BaseException) -> BaseException | None:
    """The user error behind ``err``: ``err`` itself, or the cause of the exception Hydra raises when a
    constructor (``_target_``) refuses its arguments; None for anything else (a bug)."""
    seen = 0
    while err is not None and seen < 5:
        if isinstance(err, USER_ERRORS):
            return err
        if type(err).__name__ != "InstantiationException":
            return None
        err, seen = err.__cause__, seen + 1
    return None


def error_message(err: BaseException) -> str:
    """What the user reads: the message of a user error; type and message of anything else."""
    if isinstance(err, USER_ERRORS) and str(err):
        return str(err)
    return f"{type(err).__name__}: {err}"


def report_error(message: str) -> None:
    """Print ``error: <message>`` to stderr (extra DDP ranks say which they are) and write it to the
    run's log files, if logging goes to any."""
    rank = os.environ.get("LOCAL_RANK", "0")
    prefix = "error" if rank == "0" else f"error (process {rank})"
    for handler in logging.getLogger().handlers:  # the run's train.log / eval.log, not the console twice
        if isinstance(handler, logging.FileHandler):
            handler.handle(log.makeRecord(log.name, logging.ERROR, __file__, 0, message, (), None))
    sys.stderr.flush()
    sys.stdout.flush()
    print(f"{prefix}: {message}", file=sys.stderr, flush=True)


def in_multirun() -> bool:
    """True inside a job of a Hydra multirun (a sweep)."""
    try:
        from hydra.core.hydra_config import HydraConfig
        from hydra.types import RunMode
    except ImportError:  # pragma: no cover - hydra is a dependency
        return False
    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


def failed_job_value() -> float:
    """What a failed job of a sweep returns to the sweeper: the worst value of the optimised metric
    (``inf``, or ``-inf`` when an Optuna sweep maximises), so a search counts it as a bad trial and goes on.
    Hydra's basic sweeper ignores return values."""
    from hydra.core.hydra_config import HydraConfig

    direction = HydraConfig.get().sweeper.get("direction", "minimize") if HydraConfig.initialized() else "minimize"
    return -float("inf") if str(direction).lower() in ("maximize", "direction.maximize") else float("inf")


def cli_errors(on_job_failure: Callable[[Any, BaseException, str], None] | None = None):
    """Decorate a Hydra task function (put it under ``@hydra.main``) so that user errors print one message.

    ``on_job_failure(cfg, error, message)`` records a failed job of a multirun (e.g. in its run folder);
    the job then returns :func:`failed_job_value` and the sweep goes on.
    """

    def decorate(task: Callable[[Any], Any]) -> Callable[[Any], Any]:
        @functools.wraps(task)
        def wrapper(cfg):
            try:
                return task(cfg)
            except Exception as err:
                if full_error_asked():
                    raise
                known = user_error(err)
                if in_multirun() and on_job_failure is not None:
                    message = error_message(known or err)
                    if known is None:  # a bug: its traceback still goes to the console and the job's log
                        log.exception("The job failed")
                    report_error(message)
                    on_job_failure(cfg, known or err, message)
                    return failed_job_value()
                if known is None:
                    raise
                report_error(error_message(known))
                sys.exit(1)

        return wrapper

    return decorate
