"""The job context: what a model job gets from whoever runs it, passed in explicitly.

`train()`, `prune()` and `compare()` take one (`ctx`); the default, `JobContext()`, is the
single-process command: no extra tags, no shared compute slot, a store search per skip check.
A worker (pie_mlops/stages/worker.py) builds one `Worker` and, per lane, a `JobContext` from
it for each job: the job's tags (pie.job, pie.worker, pie.trial) go on every run the job
creates, the lanes share one compute slot and one snapshot of finished runs, and each lane
keeps its own dense-model cache and its own seconds computing, waiting and tracking.

Nothing here is module state: two contexts never see each other's tags, slot or caches. What
stays module-level is memoization keyed by everything that determines it (experiment ids and
registered names per store, encoded datasets per tokenizer and split): it saves round trips
and never changes what a job does.
"""

from __future__ import annotations

import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field


class FinishedRuns:
    """A worker's snapshot of FINISHED runs per (store, dataset, arch): identity -> run id.

    A per-job search is the dearest request a job makes and grows with the runs table (the
    paper grid has ~10,000). Taken once per worker, it can only miss a run finished after it
    by another attempt of the same job, and Optuna's claims see to that: an earlier running or
    complete attempt makes a claim a duplicate (no work), and a retry of a dead one calls
    `forget()` first. Shared by a worker's lanes, hence the lock."""

    def __init__(self) -> None:
        self._runs: dict[tuple, dict[tuple, str]] = {}
        self._lock = threading.Lock()

    def get(self, key: tuple, load) -> dict[tuple, str]:
        """The snapshot for `key`, taken with `load()` the first time."""
        with self._lock:
            if key not in self._runs:
                self._runs[key] = load()
            return self._runs[key]

    def forget(self) -> None:
        with self._lock:
            self._runs.clear()


@dataclass
class Worker:
    """What a worker's lanes share: one compute slot (None for one lane) and one snapshot."""

    lanes: int = 1
    finished: FinishedRuns = field(default_factory=FinishedRuns)
    slot: threading.Lock | None = None

    def __post_init__(self) -> None:
        if self.slot is None and self.lanes > 1:
            self.slot = threading.Lock()


@dataclass
class JobContext:
    """One job's context. `tags` empty: not a worker job (the stage reaps runs a killed process
    left RUNNING itself; in a worker the retry of a dead attempt does, by its pie.job tag)."""

    tags: dict = field(default_factory=dict)
    slot: threading.Lock | None = None          # the worker's compute slot; None: no lock
    finished: FinishedRuns | None = None        # None: one store search per skip check
    dense: dict = field(default_factory=dict)   # prune: the current seed's dense model (one at a time)
    # seconds computing, waiting for the slot, and in tracking calls (tracking/accounting.py)
    totals: dict = field(default_factory=lambda: {"compute_s": 0.0, "wait_s": 0.0, "tracking_s": 0.0})

    @property
    def in_worker(self) -> bool:
        return bool(self.tags)

    def for_job(self, tags: dict) -> JobContext:
        """The same lane (slot, snapshot, dense cache, counters) running the job tagged `tags`."""
        return JobContext({k: str(v) for k, v in tags.items()}, self.slot, self.finished, self.dense, self.totals)

    @contextmanager
    def compute(self):
        """Hold the compute slot for the block: while one lane uploads and registers, the next
        computes, and only one job's model trains or prunes at a time (the memory and the
        device are one job's). Without a slot it only counts time."""
        asked = time.perf_counter()
        if self.slot is not None:
            self.slot.acquire()
        start = time.perf_counter()
        self.totals["wait_s"] += start - asked
        try:
            yield
        finally:
            self.totals["compute_s"] += time.perf_counter() - start
            if self.slot is not None:
                self.slot.release()


def lane_context(worker: Worker) -> JobContext:
    """A lane's context: the worker's slot and snapshot, its own dense cache and counters."""
    return JobContext(slot=worker.slot, finished=worker.finished)
