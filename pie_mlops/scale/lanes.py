"""Lanes: a worker with several jobs in flight, one of them computing at a time.

A job is compute (build, train or prune, predict) then tracking (uploads, the logged
model, registration: round trips to the MLflow server that leave the CPU or GPU idle).
With `lanes` > 1 the worker runs that many claim loops in threads and the stages wrap
their compute in `compute()`, which holds the worker's single compute slot. So while one
job uploads and registers, the next one is already computing, and still only one job's
model trains or prunes at a time (the memory and the device are those of one job).
Outside a multi-lane worker `compute()` only counts time.
"""

from __future__ import annotations

import threading
import time
from contextlib import contextmanager

_SLOT: threading.Lock | None = None  # the worker's compute slot; None: one lane, no lock
_LOCAL = threading.local()  # per lane: seconds computing and seconds waiting for the slot


def install(lanes: int) -> None:
    """Called by the worker before its lanes start: several lanes share one compute slot."""
    global _SLOT
    _SLOT = threading.Lock() if lanes > 1 else None


def counters() -> dict:
    """This thread's running totals: {"compute_s", "wait_s"}."""
    if not hasattr(_LOCAL, "totals"):
        _LOCAL.totals = {"compute_s": 0.0, "wait_s": 0.0}
    return _LOCAL.totals


@contextmanager
def compute():
    """Hold the compute slot for the block (the lane waits while another job computes)."""
    totals = counters()
    asked = time.perf_counter()
    slot = _SLOT
    if slot is not None:
        slot.acquire()
    start = time.perf_counter()
    totals["wait_s"] += start - asked
    try:
        yield
    finally:
        totals["compute_s"] += time.perf_counter() - start
        if slot is not None:
            slot.release()
