"""The orchestration train and prune share: reap -> claim -> skip if finished -> compute -> track.

A stage plans its model jobs (protocol.py's ModelJob) and says how to compute them, as a `Maker`:
- `one(job)`: here, one at a time; returns the job's tracking (a callable giving its record), or a
  record when there is nothing to track (a DDP rank > 0 leaves the store to rank 0; a job made
  and tracked in place, as a quantized one), or None when the job yields no record (a quantized
  method found not to run here is recorded once, not once per seed);
- `way(job)`: None (here), or (STACK, key) or (POOL, key): computed with the other jobs of that key;
- `stacks({key: jobs})`: each key's seeds as one batched computation (seed_training.py);
- `pool(key, jobs)`: the jobs N at a time in child processes (seed_pool.py).
`stacks` and `pool` yield (job, tracking) pairs as each job is computed, or comes back.

`orchestrate` does the rest, the same way for both stages:
1. reap: runs a killed process left RUNNING are marked KILLED and redone (not in a worker's lane:
   its retry reaps its dead attempt by its pie.job tag instead); then the stage plans its jobs;
2. for each job in planned order (one progress bar), under its claim (tracking.model_claim: one
   process at a time per (model, group, seed) on a SQLite store, from the lookup to the registered
   version): its FINISHED run is looked up (rank 0 reads the store; all ranks agree, as under
   torchrun they train together) and the job skipped, or computed here, or set aside;
3. the pools (a pool of one job starts no process: it is computed here, under a fresh claim and
   a second lookup), then the stacks;
4. tracking, by one writer thread (writer.py) while the next job computes, in order. A job
   computed here hands its claim to the writer, which releases it once the version is registered;
   one computed together is registered under a fresh claim, after a second lookup (a duplicate
   command may have made it meanwhile).
Records come back in the order the jobs were computed (Futures resolved).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Sequence
from contextlib import ExitStack

from pie_mlops.jobs.context import JobContext
from pie_mlops.jobs.protocol import ModelJob, finished
from pie_mlops.jobs.writer import TrackWriter, resolved
from pie_mlops.util.log import get as get_logger

_LOG = get_logger(__name__)

STACK, POOL = "stack", "pool"
Tracking = Callable[[], dict]  # one computed job's tracking (protocol.run_job and its line): its record
Computed = Iterable[tuple[ModelJob, Tracking]]


class Maker:
    """How a stage computes its jobs; `orchestrate` does everything else."""

    desc = "jobs"  # the progress bar's label

    def key(self, job: ModelJob) -> dict:
        """The fields that name a job in its record (train: arch and seed; prune: group and seed)."""
        raise NotImplementedError

    def way(self, job: ModelJob) -> tuple[str, Hashable] | None:
        return None

    def one(self, job: ModelJob) -> Tracking | dict | None:
        raise NotImplementedError

    def stacks(self, stacks: dict[Hashable, list[ModelJob]]) -> Computed:
        raise NotImplementedError

    def pool(self, key: Hashable, jobs: list[ModelJob]) -> Computed:
        raise NotImplementedError


def orchestrate(dataset: str, archs: Sequence[str], plan: Callable[[], tuple[list[ModelJob], Maker]],
                ctx: JobContext, progress: bool) -> list[dict]:
    """Reap (dataset, arch)'s stale runs, then `plan()` the jobs and make them (module docstring);
    one record per job: the maker's, or skipped."""
    from tqdm.auto import tqdm

    from pie_mlops.jobs.distributed import broadcast, is_main
    from pie_mlops.util.log import progress_disabled

    _reap(dataset, archs, ctx)
    jobs, maker = plan()
    records, aside = [], {STACK: {}, POOL: {}}
    with TrackWriter() as writer:
        for job in tqdm(jobs, desc=maker.desc, disable=progress_disabled(progress)):
            with ExitStack() as claim:
                claim.enter_context(_claim(job, enabled=is_main()))
                found = broadcast(finished(job, ctx) if is_main() else None)
                if found:
                    records.append(_skipped(maker, job, found))
                elif (way := maker.way(job)) is not None:
                    aside[way[0]].setdefault(way[1], []).append(job)
                elif (made := _here(maker, job, writer, claim)) is not None:
                    records.append(made)
        for key, pooled in aside[POOL].items():
            if len(pooled) > 1:
                records += _track_each(maker.pool(key, pooled), maker, ctx, writer)
                continue
            with ExitStack() as claim:  # one job: no process to start
                claim.enter_context(_claim(pooled[0]))
                found = finished(pooled[0], ctx)  # meanwhile, by a duplicate command
                records.append(_skipped(maker, pooled[0], found) if found else _here(maker, pooled[0], writer, claim))
        if aside[STACK]:
            records += _track_each(maker.stacks(aside[STACK]), maker, ctx, writer)
    return resolved(records)


def _reap(dataset: str, archs: Sequence[str], ctx: JobContext) -> None:
    from pie_mlops import tracking
    from pie_mlops.jobs.distributed import is_main

    if not is_main() or ctx.in_worker:  # a worker's job: its retry reaps a dead attempt (pie.job tag)
        return
    for arch in archs:
        for run_id in tracking.reap_stale_runs(dataset, arch):  # left by a killed process
            _LOG.info(f"run {run_id} was left RUNNING by a killed process: marked KILLED, redone below")


def _claim(job: ModelJob, enabled: bool = True):
    from pie_mlops import tracking

    return tracking.model_claim(job.model_name, job.group, job.seed, enabled=enabled)


def _skipped(maker: Maker, job: ModelJob, run_id: str) -> dict:
    return {**maker.key(job), "status": "skipped", "run_id": run_id}


def _here(maker: Maker, job: ModelJob, writer: TrackWriter, claim: ExitStack):
    """Compute `job` here, then hand its tracking and its claim to the writer: the record's Future."""
    made = maker.one(job)
    return writer.submit(made, hold=claim.pop_all()) if callable(made) else made


def _track_each(computed: Computed, maker: Maker, ctx: JobContext, writer: TrackWriter) -> list:
    """Each job computed together, tracked by the writer as it comes; the computation is closed
    (a pool's children ended) also when tracking fails."""
    records, computed = [], iter(computed)
    try:
        for job, track in computed:
            records.append(writer.submit(_registered, job, track, maker, ctx))
    finally:
        getattr(computed, "close", lambda: None)()
    return records


def _registered(job: ModelJob, track: Tracking, maker: Maker, ctx: JobContext) -> dict:
    """`track()` under the job's claim, as for a job computed here: a duplicate command that made
    the same job meanwhile is found finished, and this one skipped."""
    with _claim(job):
        found = finished(job, ctx)
        return _skipped(maker, job, found) if found else track()
