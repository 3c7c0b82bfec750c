"""Stage `worker`: one of any number of parallel workers on the study's grid.

Start as many as you have cores or machines, all with the same profile, the same
MLFLOW_TRACKING_URI (an `mlflow server` on PostgreSQL) and the same Optuna storage URL:

    pie-mlops --profile paper worker --storage postgresql+psycopg://user@db/optuna

Each worker: materializes the data it lacks (byte-deterministic, so every machine has the
same data version), joins the shared tune study (Optuna hands out the trials), then claims
train, prune and compare jobs phase by phase (see pie_mlops/scale/claims.py). Jobs call the
same stage functions as `pie-mlops study` with one (group, seed) each, so their MLflow runs
and registry versions are the ones a single process makes, and finished work is skipped.
Every run a job creates is tagged pie.job, pie.worker and pie.trial.
"""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

from pie_mlops.config.params import DEFAULT_PARAMS
from pie_mlops.config.plans import per_arch, resolve, shrink
from pie_mlops.config.schema import Materialize
from pie_mlops.util.log import get as get_logger

_LOG = get_logger(__name__)


def default_lanes(tracking_uri: str, storage: str) -> int:
    server = tracking_uri.startswith(("http://", "https://"))
    return 2 if server and not str(storage).startswith("sqlite") else 1


def _sections(params_file) -> dict:
    return {name: resolve(name, params_file) for name in ("materialize", "train", "prune", "compare")}


def _materialize_missing(data: Materialize) -> None:
    from pie_mlops.stages.materialize import materialize

    missing = [d for d in data.datasets if not (Path(data.data_dir) / d / "meta.json").is_file()]
    if missing:
        _LOG.info(f"materializing {', '.join(missing)}")
        materialize(data, missing, progress=False)


def worker(params_file: str | Path = DEFAULT_PARAMS, storage: str | None = None, max_jobs: int | None = None,
           tune: bool = True, options: dict | None = None, progress: bool = False) -> dict:
    """Work until the grid is done (or `max_jobs` jobs ran here); returns what this worker did."""
    from pie_mlops import tracking
    from pie_mlops.jobs.context import Worker, lane_context
    from pie_mlops.scale.claims import Budget, Claims, redact_url, run_phase
    from pie_mlops.scale.grid import PHASES, grid_id, plan_grid

    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # one bar per download: noise
    os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")  # a get_run per ended run
    opts = resolve("worker", params_file, options)
    params = _sections(params_file)
    tunes = per_arch("tune", params_file)
    storage = storage or opts.storage or tunes[0].storage
    from pie_mlops.util.credentials import check_no_password

    check_no_password(storage, "--storage, worker.storage or tune.storage")  # before anything logs or claims
    n_lanes = opts.lanes or default_lanes(tracking.tracking_uri(), storage)  # the schema: >= 1
    _materialize_missing(params["materialize"])
    grid = plan_grid(params)  # PieError on bad params, before any claim
    jobs = [j for phase in PHASES for j in grid[phase]]
    gid = grid_id({"data_md5": tracking.data_md5(params["train"].data_dir)}, jobs)
    me = f"{socket.gethostname()}:{os.getpid()}"
    claims = Claims(storage, opts.heartbeat_interval, opts.grace_period, opts.max_retry, opts.poll_seconds)
    done: list[dict] = []  # appended by the lanes (list.append is atomic)
    _LOG.info(f"worker {me}: grid {gid}, {len(jobs)} jobs ({', '.join(f'{len(grid[p])} {p}' for p in PHASES)}), "
         f"{n_lanes} lane(s), storage {redact_url(storage)}, tracking {redact_url(tracking.tracking_uri())}")

    if tune and any(plan.n_trials > 0 for plan in tunes):
        from pie_mlops.stages.tune import tune as run_tune

        run_tune([shrink(plan, storage=storage) for plan in tunes], progress=progress)

    budget = Budget(max_jobs)
    shared = Worker(n_lanes)  # one compute slot and one snapshot of finished runs for all lanes

    def lane() -> None:
        ctx = lane_context(shared)  # this lane's dense cache and counters

        def do_job(job, trial, retried: bool) -> dict:
            return _do_job(job, trial, retried, me, progress, done, ctx)

        for phase in PHASES:
            if grid[phase]:
                run_phase(claims, f"pie-grid-{gid}-{phase}", grid[phase], do_job, budget)
            if not budget.left():
                return

    _run_lanes(lane, n_lanes, budget)
    if max_jobs is not None and len(done) >= max_jobs:
        _LOG.info(f"worker {me}: --max-jobs {max_jobs} reached")
    return {"worker": me, "grid": gid, "jobs": done, "lanes": n_lanes}


def _run_lanes(lane, n_lanes: int, budget) -> None:
    """Run `lane` in n_lanes threads (or here, for one); the first error stops the others
    after their current job and is raised. Ctrl-C reaches this thread, which leaves: the
    lanes are daemons, and their jobs are retried elsewhere once their heartbeats stop."""
    import threading

    if n_lanes == 1:
        lane()
        return
    errors: list[BaseException] = []

    def run() -> None:
        try:
            lane()
        except BaseException as exc:  # noqa: BLE001 -- handed to the main thread
            errors.append(exc)
            budget.stop()

    threads = [threading.Thread(target=run, name=f"lane-{i}", daemon=True) for i in range(n_lanes)]
    for t in threads:
        t.start()
    for t in threads:
        while t.is_alive():
            t.join(0.5)  # a bounded join keeps Ctrl-C deliverable
    if errors:
        raise errors[0]


def _do_job(job, trial, retried: bool, me: str, progress: bool, done: list, lane) -> dict:
    from pie_mlops.tracking import accounting  # a submodule: the lazy table names functions only

    start = time.perf_counter()
    with accounting.counting(lane.totals):  # tracking calls add to the lane's tracking_s
        lane0 = dict(lane.totals)
        record = _job_record(job, trial, retried, me, progress, lane)
    facts = {"worker": me, "status": record.get("status", "compared"), "run_id": record.get("run_id", ""),
             "job_s": round(time.perf_counter() - start, 4),
             **{k: round(v - lane0[k], 4) for k, v in lane.totals.items()}}  # compute_s, wait_s, tracking_s
    done.append({"job": job.key, **facts})
    return facts


def _job_record(job, trial, retried: bool, me: str, progress: bool, lane) -> dict:
    """Run one claimed job in its own context; its record, checked FINISHED and registered."""
    from pie_mlops import tracking
    from pie_mlops.config.plans import for_arch
    from pie_mlops.stages import compare_study, prune, train

    ctx = lane.for_job({"pie.job": job.key, "pie.worker": me, "pie.trial": f"{trial.study.study_name}#{trial.number}"})
    if retried:  # the earlier attempt's worker died, or the job raised
        ctx.finished.forget()  # it may have finished its run before it died
        for run_id in tracking.reap_job_runs(job.key):
            _LOG.info(f"{job.key}: run {run_id} of a dead attempt marked KILLED")
    _LOG.info(f"worker {me}: {job.key} (trial {trial.number})")
    if job.phase == "train":  # the tuned values now: tune finished after the grid was planned
        record = train.train(for_arch(job.plan, job.arch), progress=progress, ctx=ctx)[0]
    elif job.phase == "prune":
        record = prune.prune(for_arch(job.plan, job.arch), progress=progress, ctx=ctx)[0]
    else:
        with ctx.compute():  # reads every model's predictions: one job at a time, all of it
            record = compare_study.compare(job.plan, None, progress=progress, ctx=ctx, models=list(job.models))[0]
    # A job made here is FINISHED and registered by construction (model_run ends it FINISHED
    # only after register() succeeded); one skipped as done elsewhere is checked in the store.
    fresh = record.get("status") in ("trained", "pruned") and record.get("version")
    if job.phase != "compare" and not fresh and not tracking.run_registered(record["run_id"]):
        raise RuntimeError(f"{job.key}: run {record['run_id']} is not FINISHED with a registered version")
    return record
