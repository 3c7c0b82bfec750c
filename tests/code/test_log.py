"""Console output: information on stdout, warnings on stderr, -q and -v set the level, and the
progress bars follow -q and the terminal."""

from __future__ import annotations

import logging

import pytest
from click.testing import CliRunner

from pie_mlops.util import log


@pytest.fixture(autouse=True)
def _restore():
    yield
    log.setup(0)


@pytest.mark.parametrize("verbosity, shown", [(-1, {"warning"}), (0, {"info", "warning"}),
                                              (1, {"debug", "info", "warning"})])
def test_verbosity_sets_what_is_shown_and_where(capsys, verbosity, shown):
    log.setup(verbosity)
    logger = log.get("stages.train")
    logger.debug("debug line")
    logger.info("info line")
    logger.warning("warning line")
    out, err = capsys.readouterr()
    assert ("info line" in out) == ("info" in shown) and ("debug line" in out) == ("debug" in shown)
    assert "warning: warning line" in err and "warning line" not in out


def test_progress_bars_are_off_under_quiet_and_left_to_the_terminal_otherwise():
    log.setup(-1)
    assert log.progress_disabled(True) is True
    log.setup(0)
    assert log.progress_disabled(True) is None and log.progress_disabled(False) is True


def test_the_cli_takes_q_and_v():
    from pie_mlops.cli import cli

    assert CliRunner().invoke(cli, ["-q", "params", "-s", "report"]).exit_code == 0
    assert logging.getLogger("pie_mlops").level == logging.WARNING
    assert CliRunner().invoke(cli, ["-vv", "params", "-s", "report"]).exit_code == 0
    assert logging.getLogger("pie_mlops").level == logging.DEBUG


def test_mlflow_info_lines_only_under_verbose(monkeypatch, capsys):
    """MLflow's per-model INFO lines ("Validating input example against model signature") are
    hidden by default and -q, shown under -v; a user's own MLFLOW_LOGGING_LEVEL wins."""
    import mlflow  # noqa: F401 - its logger configured as it is at import

    monkeypatch.delenv("MLFLOW_LOGGING_LEVEL", raising=False)
    monkeypatch.delenv("PIE_MLOPS_MLFLOW_LEVEL", raising=False)
    shown = {}
    for verbosity in (-1, 0, 1):
        log.setup(verbosity)
        logging.getLogger("mlflow.pyfunc").info("Validating input example against model signature")
        shown[verbosity] = "Validating input example" in "".join(capsys.readouterr())
    assert shown == {-1: False, 0: False, 1: True}
    monkeypatch.setenv("MLFLOW_LOGGING_LEVEL", "DEBUG")
    log.setup(0)
    assert logging.getLogger("mlflow").level == logging.DEBUG


def test_heartbeat_in_a_log_after_silence_only(capsys):
    """In a non-TTY log, a silent stretch gets a 'still running' line with the last line seen;
    a stretch with lines gets none."""
    import time

    log.setup(0)
    beat = log.Heartbeat("pie-mlops prune", interval=0.2).start()
    try:
        log.get("stages.prune").info("pie-x v3 (magnitude-os@0.90-s0): sparsity 0.9000")
        time.sleep(0.5)
        out = capsys.readouterr().out
        assert "pie-mlops prune: still running" in out and "last: pie-x v3 (magnitude-os@0.90-s0)" in out
        for _ in range(4):  # lines more often than the interval: no heartbeat
            log.get("stages.prune").info("model done")
            time.sleep(0.05)
        assert "still running" not in capsys.readouterr().out
    finally:
        beat.stop()
    log.setup(-1)  # -q: errors and the summary only, no heartbeat either
    assert log.start_heartbeat("x") is None
