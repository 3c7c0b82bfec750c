"""The tracking writer: finished models tracked by one thread beside the compute loop (issue 27).

A stage computes a model, then hands its tracking (run, params, metrics, prediction file, logged
model, version, alias: the model-job protocol) to the writer and computes the next model while
the writer tracks the last. Tracking costs ~0.2 s per model on SQLite and ~1 s on a server; on
an accelerator a model computes in about that time, so done in line it would set the pace.

- **Bounded.** At most `depth` models wait (each holds its model and predictions in memory);
  `submit` blocks while the queue is full, so compute runs at most `depth` + 1 models ahead.
- **In order.** One thread, first in first out; `submit` returns a Future and `resolved` turns a
  list of records and Futures into records, in the order the jobs were planned.
- **Claims travel.** `submit(..., hold=stack)`: the job's claim (tracking.model_claim, taken in
  the compute loop before its finished-run lookup) is released after its tracking, so a duplicate
  command still waits from the lookup to the registered version, as in line.
- **Faults.** The first failure stops the writer: nothing queued after it runs (those models
  made no run; their claims are released), and the next `submit` or `close` raises the same error
  in the compute loop, which stops there: one line, exit 2 for a PieError, as in line. The failed
  model's run and version are undone by run_job, the finished ones stay registered, and a rerun
  skips them. A compute error drains the writer first (the models computed before it are
  tracked), then propagates; Ctrl-C drops the queue and waits only for the model in flight.
- **Accounting.** Each task runs in a copy of the submitter's context variables (the job's
  tracking seconds, tracking/accounting.py).
"""

from __future__ import annotations

import contextvars
import queue
import threading
from concurrent.futures import Future
from contextlib import ExitStack
from typing import Any, Callable

_STOP = object()


class TrackWriter:
    """One background thread tracking finished models in order; use as a context manager."""

    def __init__(self, depth: int = 1):
        self._queue: queue.Queue = queue.Queue(maxsize=max(1, depth))
        self._error: BaseException | None = None
        self._thread: threading.Thread | None = None

    def __enter__(self) -> TrackWriter:
        return self

    def __exit__(self, kind, exc, tb) -> None:
        if kind is None:
            self.close()
        elif issubclass(kind, Exception):  # compute failed: track what was computed, then its error
            try:
                self.close()
            except Exception:
                pass  # the compute error is the one to report
        else:  # KeyboardInterrupt, SystemExit: the model in flight only
            self.close(drop=True)

    def submit(self, fn: Callable[..., Any], *args, hold: ExitStack | None = None) -> Future:
        """Queue `fn(*args)` (one model's tracking); its Future gives the record. `hold` is closed
        after it runs (or at once if it never will)."""
        future: Future = Future()
        if self._error is not None:
            if hold is not None:
                hold.close()
            raise self._error
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="pie-track-writer", daemon=True)
            self._thread.start()
        self._queue.put((future, contextvars.copy_context(), fn, args, hold))
        return future

    def close(self, drop: bool = False) -> None:
        """Wait until every queued model is tracked (`drop`: only the one in flight); raise the
        writer's first error."""
        if self._thread is not None:
            if drop:
                self._drain_unrun()
            self._queue.put(_STOP)
            self._thread.join()
            self._thread = None
        if self._error is not None:
            raise self._error

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            future, context, fn, args, hold = item
            with hold or ExitStack():
                if self._error is not None:  # an earlier model failed: this one never starts
                    future.cancel()
                    continue
                try:
                    future.set_result(context.run(fn, *args))
                except BaseException as exc:  # noqa: BLE001 -- handed to the compute loop
                    self._error = exc
                    future.set_exception(exc)

    def _drain_unrun(self) -> None:
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return
            if item is not _STOP:
                item[0].cancel()
                if item[4] is not None:
                    item[4].close()


def resolved(records: list) -> list[dict]:
    """Records in planned order: each Future replaced by its result (after the writer closed)."""
    return [r.result() if isinstance(r, Future) else r for r in records]
