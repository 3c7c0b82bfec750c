"""Console output: information on stdout, warnings on stderr, -q and -v set the level, and the
progress bars follow -q and the terminal."""

from __future__ import annotations

import logging

import pytest
from click.testing import CliRunner

from pie_mlops import log


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
