"""cli_errors: one message and status 1 for user errors, tracebacks for bugs and on request, sweeps go on."""

import pytest

from src.common import errors
from src.common.errors import InputError, cli_errors, user_error


def failing(exc):
    def task(cfg):
        raise exc

    return task


@pytest.fixture
def single_run(monkeypatch):
    monkeypatch.delenv("HYDRA_FULL_ERROR", raising=False)
    monkeypatch.setattr(errors, "in_multirun", lambda: False)


@pytest.mark.parametrize("exc", [InputError("data.batch_size=abc: expected a positive integer"),
                                 FileNotFoundError("in.gctx: no such file"), FileExistsError("out.h5ad exists")])
def test_a_user_error_prints_one_message_and_exits_1(single_run, capsys, exc):
    with pytest.raises(SystemExit) as exit_:
        cli_errors()(failing(exc))(None)
    assert exit_.value.code == 1
    assert capsys.readouterr().err == f"error: {exc}\n"


def test_input_errors_are_value_errors():
    from src.data.io.base import MatrixFormatError
    from src.data.io.gctx import GCTXError

    assert issubclass(InputError, ValueError) and issubclass(MatrixFormatError, InputError)
    assert issubclass(GCTXError, InputError)


def test_a_bug_keeps_its_traceback(single_run):
    with pytest.raises(ZeroDivisionError):
        cli_errors()(failing(ZeroDivisionError("division by zero")))(None)


def test_hydra_full_error_re_raises(monkeypatch):
    monkeypatch.setenv("HYDRA_FULL_ERROR", "1")
    with pytest.raises(InputError):
        cli_errors()(failing(InputError("bad")))(None)


def test_a_constructor_refusing_its_arguments_is_a_user_error(single_run, capsys):
    from hydra.errors import InstantiationException

    cause = InputError("model.loss=foo: unknown loss 'foo'")
    wrapped = InstantiationException("Error in call to target 'src.models.egex.EGEX'")
    wrapped.__cause__ = cause
    assert user_error(wrapped) is cause
    with pytest.raises(SystemExit):
        cli_errors()(failing(wrapped))(None)
    assert capsys.readouterr().err == "error: model.loss=foo: unknown loss 'foo'\n"


def test_a_failed_job_of_a_sweep_is_recorded_and_returns_the_worst_value(monkeypatch, capsys):
    monkeypatch.delenv("HYDRA_FULL_ERROR", raising=False)
    monkeypatch.setattr(errors, "in_multirun", lambda: True)
    monkeypatch.setattr(errors, "failed_job_value", lambda: float("inf"))
    recorded = []
    task = cli_errors(on_job_failure=lambda cfg, err, message: recorded.append((cfg, type(err), message)))
    assert task(failing(InputError("data.batch_size=0: expected a positive integer")))("cfg") == float("inf")
    assert task(failing(RuntimeError("CUDA out of memory")))("cfg") == float("inf")  # a bug: recorded too, with its type
    assert recorded == [("cfg", InputError, "data.batch_size=0: expected a positive integer"),
                        ("cfg", RuntimeError, "RuntimeError: CUDA out of memory")]
    assert "error: data.batch_size=0" in capsys.readouterr().err
