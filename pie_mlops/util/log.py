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
    quiet_mlflow(verbosity)


def quiet_mlflow(verbosity: int) -> None:
    """MLflow's own INFO lines (one "Validating input example against model signature" per
    model, "Creating initial MLflow database tables") only under -v: MLflow reads
    MLFLOW_LOGGING_LEVEL when it is imported (lazily, after this), and its logger is set too in
    case it already was. A user's own MLFLOW_LOGGING_LEVEL wins."""
    ours = os.environ.get("MLFLOW_LOGGING_LEVEL") in (None, os.environ.get("PIE_MLOPS_MLFLOW_LEVEL"))
    if ours:  # unset, or set by an earlier setup (a child process, another command in-process)
        os.environ["MLFLOW_LOGGING_LEVEL"] = os.environ["PIE_MLOPS_MLFLOW_LEVEL"] = (
            "INFO" if verbosity > 0 else "WARNING")
    level = os.environ["MLFLOW_LOGGING_LEVEL"]
    if "mlflow" in sys.modules:
        logging.getLogger("mlflow").setLevel(level.upper())


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


class Heartbeat(logging.Handler):
    """In a log file (no terminal, so no progress bars) a silent stretch looks like a hang: after
    `interval` seconds with no line from pie-mlops, say that `label` is still running and what
    its last line was. Attached to the `pie_mlops` logger, it sees every line it lets through."""

    def __init__(self, label: str, interval: float = 30.0):
        import threading
        import time

        super().__init__(logging.INFO)
        self.label, self.interval, self._clock = label, interval, time.monotonic
        self.started = self.last = self._clock()
        self.last_line = ""
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name="pie-mlops-heartbeat", daemon=True)

    def emit(self, record: logging.LogRecord) -> None:
        if record.name != f"{ROOT}.heartbeat":
            self.last, self.last_line = self._clock(), record.getMessage().splitlines()[0][:120]

    def _beat(self) -> None:
        while not self._stop.wait(min(self.interval, max(0.01, self.interval - (self._clock() - self.last)))):
            if self._clock() - self.last >= self.interval:
                last = f"; last: {self.last_line}" if self.last_line else ""
                get("heartbeat").info(f"{self.label}: still running, {self._clock() - self.started:.0f} s{last}")
                self.last = self._clock()

    def start(self) -> "Heartbeat":
        logging.getLogger(ROOT).addHandler(self)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        logging.getLogger(ROOT).removeHandler(self)


def start_heartbeat(label: str, interval: float = 30.0) -> Heartbeat | None:
    """A Heartbeat when the output is a log (stdout not a terminal) and info lines are shown."""
    if sys.stdout.isatty() or logging.getLogger(ROOT).getEffectiveLevel() > logging.INFO:
        return None
    return Heartbeat(label, interval).start()
