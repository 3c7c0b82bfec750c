"""Accounting for the tracking layer: seconds spent in tracking calls, added to the running
job's `ctx.totals["tracking_s"]` (pie_mlops/jobs/context.py) beside its compute and wait time.

The tracking functions take no context, so the job binds its totals for the block that runs it
(`counting(ctx.totals)`, a context variable: each worker lane is a thread with its own). Outside
such a block nothing is counted. Instrumentation only: nothing reads it to decide what to do.
"""

from __future__ import annotations

from contextlib import contextmanager
from contextvars import ContextVar

# The running job's totals (None: no job counts) and how deep in `spent` blocks this thread is.
_TOTALS: ContextVar[dict | None] = ContextVar("pie_tracking_totals", default=None)
_DEPTH: ContextVar[int] = ContextVar("pie_tracking_depth", default=0)


@contextmanager
def counting(totals: dict):
    """Add the block's tracking time to `totals["tracking_s"]` (a job context's totals)."""
    totals.setdefault("tracking_s", 0.0)
    token = _TOTALS.set(totals)
    try:
        yield totals
    finally:
        _TOTALS.reset(token)


@contextmanager
def spent():
    """Count the block's wall time as tracking time (nested blocks count once)."""
    import time

    totals, depth = _TOTALS.get(), _DEPTH.get()
    token = _DEPTH.set(depth + 1)
    start = time.perf_counter()
    try:
        yield
    finally:
        _DEPTH.reset(token)
        if totals is not None and depth == 0:
            totals["tracking_s"] += time.perf_counter() - start


def timed(fn):
    """Count the wrapped call's wall time as tracking time."""
    import functools

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with spent():
            return fn(*args, **kwargs)
    return wrapper
