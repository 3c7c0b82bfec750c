"""Per-thread accounting for the tracking layer: seconds spent in tracking calls. A worker's
lanes are threads; each counts its own. Instrumentation only: nothing reads it to decide what
to do (the job's context, pie_mlops/jobs/context.py, carries what does).
"""

from __future__ import annotations

import threading
from contextlib import contextmanager

# Seconds spent in tracking calls (runs, artifacts, registry): the per-job tracking time a
# worker reports (bench/scale_workers.sh).
_LOCAL = threading.local()


def _spent_state() -> dict:
    if not hasattr(_LOCAL, "spent"):
        _LOCAL.spent = {"seconds": 0.0, "depth": 0}
    return _LOCAL.spent


def spent_seconds() -> float:
    """Seconds this thread has spent in tracking calls so far."""
    return _spent_state()["seconds"]


@contextmanager
def spent():
    """Count the block's wall time as tracking time (nested blocks count once)."""
    import time

    state = _spent_state()
    start = time.perf_counter()
    state["depth"] += 1
    try:
        yield
    finally:
        state["depth"] -= 1
        if state["depth"] == 0:
            state["seconds"] += time.perf_counter() - start


def timed(fn):
    """Count the wrapped call's wall time as tracking time."""
    import functools

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with spent():
            return fn(*args, **kwargs)
    return wrapper
