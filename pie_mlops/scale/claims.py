"""Claiming jobs through Optuna's RDB storage: no home-made scheduler.

Each phase of the grid is one Optuna study whose `GridSampler` has a single categorical
parameter, `job`. A worker claims a job by starting a trial (the database hands out trial
numbers, and GridSampler gives trial n grid point n, so concurrent claims never collide);
the trial's heartbeat tells the other workers it is alive. When a worker dies,
`fail_stale_trials` fails its trial after `grace_period` and
`RetryHeartbeatStaleTrialCallback` enqueues a retry with the same grid point. A job that
raised is retried the same way, up to `max_retry` times. Duplicates (a rare race when the
grid runs out) are caught before any work: an attempt defers to an earlier attempt of the
same job that is running or complete.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from pie_mlops.config.schema import Worker
from pie_mlops.util.credentials import check_no_password, redact_url  # noqa: F401  (redact_url: callers import it here)
from pie_mlops.util.compat import frozen_trial, grid_order, set_grid_order
from pie_mlops.util.errors import JobFailedError
from pie_mlops.util.log import get as get_logger
from pie_mlops.scale.grid import Job, PhaseState, phase_state

_LOG = get_logger(__name__)


class Budget:
    """A worker's --max-jobs, shared by its lanes (threads): a job slot is taken before a claim.
    `stop()` ends every lane after its current job (one lane failed)."""

    def __init__(self, max_jobs: int | None = None):
        import threading

        self.max_jobs, self.taken, self.stopped = max_jobs, 0, False
        self._lock = threading.Lock()

    def left(self) -> bool:
        with self._lock:
            return not self.stopped and (self.max_jobs is None or self.taken < self.max_jobs)

    def take(self) -> bool:
        with self._lock:
            if self.stopped or (self.max_jobs is not None and self.taken >= self.max_jobs):
                return False
            self.taken += 1
            return True

    def give_back(self) -> None:
        with self._lock:
            self.taken -= 1

    def stop(self) -> None:
        with self._lock:
            self.stopped = True


WORKER = Worker()


@dataclass
class Claims:
    storage_url: str
    heartbeat_interval: int = WORKER.heartbeat_interval  # worker.*: the schema's defaults
    grace_period: int = WORKER.grace_period
    max_retry: int = WORKER.max_retry
    poll_seconds: float = WORKER.poll_seconds

    def storage(self):
        from optuna.storages import RetryHeartbeatStaleTrialCallback

        return rdb_storage(self.storage_url, heartbeat_interval=self.heartbeat_interval,
                           grace_period=self.grace_period,
                           heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(max_retry=self.max_retry))

    def open(self, name: str, jobs: list[Job]):
        """The phase's study (created by whichever worker comes first)."""
        import optuna

        sampler = optuna.samplers.GridSampler({"job": [j.key for j in jobs]}, seed=0)
        # Grid point n goes to trial n. GridSampler shuffles its grid; the planned order is
        # (arch, seed)-major, so consecutive claims reuse the dense model a worker holds
        # instead of downloading another for nearly every prune job.
        set_grid_order(sampler, [(j.key,) for j in jobs])
        return optuna.create_study(study_name=name, storage=self.storage(), sampler=sampler,
                                   direction="minimize", load_if_exists=True)


def quiet_experimental() -> None:
    """Heartbeats, fail_stale_trials and the retry callback are stable in practice but still
    flagged experimental: one warning per call would drown the worker's log."""
    import warnings

    import optuna

    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)


def rdb_storage(url: str, attempts: int = 6, **kwargs):
    """Optuna's RDBStorage, tolerant of workers that start together on an empty database:
    each creates the schema, and all but one lose that race with an integrity error."""
    import optuna
    from optuna.storages import RDBStorage
    from sqlalchemy.exc import DBAPIError

    check_no_password(url, "Optuna storage")  # the last gate: every storage is opened here
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    quiet_experimental()
    engine = {"pool_pre_ping": True} if url.startswith("postgresql") else {}
    for attempt in range(attempts):
        try:
            return RDBStorage(url, engine_kwargs=engine, **kwargs)
        except DBAPIError:
            if attempt == attempts - 1:
                raise
            time.sleep(0.5 * (attempt + 1))


def _job_of(trial, sampler) -> str | None:
    """The job a trial claimed, as soon as it can be known: a trial's params and grid_id are
    written a moment after the trial itself, and a claim checked in that moment must not miss it."""
    if "job" in trial.params:
        return trial.params["job"]
    fixed = trial.system_attrs.get("fixed_params")  # an enqueued retry
    if fixed and "job" in fixed:
        return fixed["job"]
    grid = trial.system_attrs.get("grid_id")
    if grid is None and trial.number < len(grid_order(sampler)):
        grid = trial.number  # GridSampler's rule for a trial that was not enqueued
    return grid_order(sampler)[grid][0] if grid is not None else None


def state_of(study, jobs: list[Job], max_retry: int) -> PhaseState:
    rows = [{"number": t.number, "state": t.state.name, "job": _job_of(t, study.sampler),
             "retry_history": t.system_attrs.get("retry_history"), "error": t.user_attrs.get("error"),
             "duplicate": _duplicate(t)}
            for t in study.get_trials(deepcopy=False)]
    return phase_state(rows, [j.key for j in jobs], max_retry)


def _duplicate(trial) -> bool:
    """A claim that deferred to another attempt of its job (see run_phase): no work done."""
    return str(trial.user_attrs.get("outcome", "")).startswith("duplicate")


def earlier_attempt(study, trial_number: int, key: str, patience: float = 10.0) -> str | None:
    """'complete' or 'running' when an earlier trial of the same job makes this one a duplicate
    (duplicates themselves never count: they did no work). An earlier running trial whose job
    is not written yet (beyond the grid, GridSampler picks it a moment later) is waited for."""
    deadline = time.monotonic() + patience
    while True:
        unknown = False
        for t in study.get_trials(deepcopy=False):
            if t.number == trial_number or _duplicate(t):
                continue
            job = _job_of(t, study.sampler)
            if job is None and t.state.name == "RUNNING" and t.number < trial_number:
                unknown = True
            if job != key:
                continue
            if t.state.name == "COMPLETE":
                return "complete"
            if t.state.name == "RUNNING" and t.number < trial_number:
                return "running"
        if not unknown or time.monotonic() > deadline:
            return None
        time.sleep(0.1)


def run_phase(claims: Claims, name: str, jobs: list[Job], do_job, budget, log=_LOG.info) -> int:
    """Work on the phase until every job is COMPLETE (whoever ran it); returns jobs run here.

    `do_job(job, trial, retried) -> dict` runs one job and returns facts to keep as trial user attrs;
    `budget` (a Budget) counts this worker's jobs against --max-jobs, across its lanes. Raises
    JobFailedError when a job failed on every retry."""
    from optuna.storages import RetryHeartbeatStaleTrialCallback as Retry
    from optuna.storages import fail_stale_trials

    study = claims.open(name, jobs)
    by_key = {j.key: j for j in jobs}
    ran = 0

    polled = {"s": 0.0}  # the bookkeeping queries before this claim (fail_stale, state)

    def objective(trial) -> float:
        nonlocal ran
        key = trial.suggest_categorical("job", [j.key for j in jobs])
        dup = earlier_attempt(study, trial.number, key)
        if dup:  # another attempt owns this job: no work, no run
            budget.give_back()
            trial.set_user_attr("outcome", f"duplicate of a {dup} attempt")
            return 0.0
        frozen = frozen_trial(study, trial)  # Trial has no system_attrs in Optuna 5
        retried = bool(frozen.system_attrs.get("retry_history"))
        try:
            facts = do_job(by_key[key], trial, retried)
        except BaseException as exc:
            trial.set_user_attr("error", f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"[:500])
            raise
        # One write: every user attr is a round trip to the database.
        trial.set_user_attr("facts", {**facts, "poll_s": round(polled["s"], 4)})
        ran += 1
        return 0.0

    idle_since = None
    while True:
        start = time.perf_counter()
        fail_stale_trials(study)  # a dead worker's trial: FAIL, and its retry enqueued
        state = state_of(study, jobs, claims.max_retry)
        polled["s"] = time.perf_counter() - start
        if state.complete(list(by_key)):
            return ran
        if state.dead and not state.running and not state.waiting and not state.unvisited:
            lines = "; ".join(f"{k}: {v}" for k, v in sorted(state.dead.items()))
            raise JobFailedError(f"phase {name}: job(s) failed {claims.max_retry + 1} times: {lines}")
        if not budget.left():
            return ran
        trials = {t.number: t for t in study.get_trials(deepcopy=False)}
        for number in state.retry:  # a job that raised: retried like a dead worker's
            Retry(max_retry=claims.max_retry)(study, trials[number])
        if state.retry or state.waiting or state.unvisited:
            if not budget.take():
                return ran
            idle_since = None
            study.optimize(objective, n_trials=1, catch=(Exception,), gc_after_trial=False)
            continue
        if idle_since is None:  # everything is claimed: wait for the running jobs
            idle_since = time.time()
            log(f"waiting for {len(state.running)} running job(s) of {name} on other workers")
        time.sleep(claims.poll_seconds)
