"""Console output through `logging`: information on stdout, warnings and errors on stderr.

The CLI calls `setup` once per command with its -q/-v count; as a library, pie-mlops only
emits records on the `pie_mlops` logger and leaves handlers to the caller.
"""

from __future__ import annotations

import logging
import os
import sys

ROOT = "pie_mlops"


class _Console(logging.Handler):
    """Looks sys.stdout/sys.stderr up at each record, so a swapped stream (click's test runner,
    pytest's capture) is honoured."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            prefix = "" if record.levelno < logging.WARNING else f"{record.levelname.lower()}: "
            stream = sys.stdout if record.levelno < logging.WARNING else sys.stderr
            stream.write(prefix + self.format(record) + "\n")
            stream.flush()
        except Exception:  # noqa: BLE001 - logging must never take the command down
            self.handleError(record)


def setup(verbosity: int = 0) -> None:
    """-q (-1): warnings only; default (0): progress lines too; -v (1+): debug details."""
    logger = logging.getLogger(ROOT)
    for h in [h for h in logger.handlers if isinstance(h, _Console)]:
        logger.removeHandler(h)
    logger.addHandler(_Console())
    logger.setLevel(logging.WARNING if verbosity < 0 else logging.INFO if verbosity == 0 else logging.DEBUG)
    logger.propagate = False
    quiet_library_bars(verbosity < 0 or not sys.stderr.isatty())


def quiet_library_bars(quiet: bool) -> None:
    """Our bars turn themselves off in a log file (progress_disabled); the libraries' own
    (Transformers' weight loading, MLflow's artifact transfers) need their switches, set before
    they are imported. A user's own setting wins."""
    if quiet:
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")


def get(name: str) -> logging.Logger:
    return logging.getLogger(name if name.startswith(ROOT) else f"{ROOT}.{name}")


def progress_disabled(progress: bool = True) -> bool | None:
    """tqdm's `disable`: off when asked or under -q; else None, which turns the bars off by
    itself when the output is not a terminal (a log file, CI, DVC's captured output)."""
    return True if not progress or logging.getLogger(ROOT).getEffectiveLevel() > logging.INFO else None
