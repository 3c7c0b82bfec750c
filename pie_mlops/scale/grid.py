"""The study's grid as jobs for parallel workers (pure: no I/O, no tracking).

A job is one unit a worker claims: `train:<arch>:s<seed>`, `prune:<arch>:<group>:s<seed>` or
`compare:<arch>`. Jobs come in phases that must finish in order (train -> prune -> compare):
a pruned group needs its dense seed registered, and compare needs every model. Each job
carries the params section its stage function runs with, restricted to that one job, so
the stage's identity tags (dataset, arch, group, seed, data md5, params hash) are exactly
those of a single-process `pie-mlops study`: a job finished by any worker, or by a plain
`pie-mlops train`, is found and skipped by every other.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field

from pie_mlops.config.plans import archs, for_arch, shrink
from pie_mlops.config.schema import Compare, Prune, Section, Train

PHASES = ("train", "prune", "compare")


@dataclass(frozen=True)
class Job:
    phase: str
    arch: str
    key: str
    # The stage's plan for this job alone (config/plans.py), resolved for its architecture. The
    # tuned values are applied when the job runs (plans.for_arch): tune may finish after the grid is planned.
    plan: Section = field(hash=False, compare=False)
    group: str = "dense"
    seed: int | None = None
    models: tuple = field(default=(), hash=False, compare=False)  # compare: the grid's own (group, seed) models


def train_jobs(train: Train) -> list[Job]:
    jobs = []
    for arch in archs(train):
        one = for_arch(train, arch, tuned=False)
        for seed in one.seeds:
            jobs.append(Job("train", arch, f"train:{arch}:s{seed}", shrink(one, seeds=[seed]), "dense", seed))
    return jobs


def prune_jobs(prune: Prune) -> list[Job]:
    from pie_mlops.pruning.plan import plan_jobs

    jobs = []
    for arch in archs(prune):
        one = for_arch(prune, arch, tuned=False)
        for seed in one.seeds:
            for plan in plan_jobs(one.model_dump()):  # checks every value: bad params fail before any claim
                # methods + one sparsity select exactly this group; the stage's params hash
                # covers the group's own values only, so it matches a whole-grid run.
                method = f"{plan['criterion']}-{plan['schedule']}"
                if plan["threshold"] != one.threshold:  # a whole group of prune.methods (`-layer@<s>`)
                    method = plan["group"]
                sub = shrink(one, methods=[method], sparsities=[plan["sparsity"]], seeds=[seed], quantize=[])
                jobs.append(Job("prune", arch, f"prune:{arch}:{plan['group']}:s{seed}", sub, plan["group"], seed))
            for method in one.quantize:  # quant-<method>: a job each, no pruned group
                sub = shrink(one, sparsities=[], seeds=[seed], quantize=[method])
                jobs.append(Job("prune", arch, f"prune:{arch}:quant-{method}:s{seed}", sub, f"quant-{method}", seed))
    return jobs


def compare_jobs(compare: Compare, models: dict[str, set[tuple[str, int]]]) -> list[Job]:
    """One compare job per architecture, restricted to the grid's own (group, seed) models."""
    return [Job("compare", arch, f"compare:{arch}", shrink(compare, arch=arch, predictions_dir=None),
                models=tuple(sorted(models.get(arch, ()))))
            for arch in archs(compare)]


def plan_grid(plans: dict[str, Section]) -> dict[str, list[Job]]:
    """Every job of the study, by phase, from the train, prune and compare plans; PieError on
    bad params (nothing claimed yet)."""
    train = train_jobs(plans["train"])
    prune = prune_jobs(plans["prune"])
    models: dict[str, set[tuple[str, int]]] = {}
    for job in train + prune:
        models.setdefault(job.arch, set()).add((job.group, int(job.seed)))
    return {"train": train, "prune": prune, "compare": compare_jobs(plans["compare"], models)}


def grid_id(params: dict, jobs: list[Job]) -> str:
    """A short id of this exact grid: the same profile and data give the same shared studies,
    a changed one gets new ones (so old claims never mask new work)."""
    blob = json.dumps({"jobs": [(j.key, _identity(j)) for j in jobs]}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:10]


def _identity(job: Job) -> dict:
    """What a job's grid identity holds: its plan's values (and a compare job's models)."""
    return {**job.plan.model_dump(), **({"models": [list(m) for m in job.models]} if job.phase == "compare" else {})}


@dataclass
class PhaseState:
    """Where a phase stands, from its trials: what is done, running, waiting, to retry."""

    done: set[str]
    running: set[str]
    waiting: int
    unvisited: int
    retry: list[int]  # trial numbers of failed attempts with no successor and retries left
    dead: dict[str, str]  # job -> last error, retries exhausted

    def complete(self, keys: list[str]) -> bool:
        return set(keys) <= self.done


def phase_state(trials: list[dict], keys: list[str], max_retry: int) -> PhaseState:
    """Fold trials ({number, state, job, retry_history, error, duplicate}) into a PhaseState.

    A failed attempt is retried (Optuna's RetryHeartbeatStaleTrialCallback semantics:
    retry_history grows by one per attempt) until `max_retry` retries are used up. A
    duplicate (a claim that deferred to another attempt and did no work) is COMPLETE in
    Optuna but never makes its job done: the attempt it deferred to may still be running.
    """
    done, running, waiting, seen = set(), set(), 0, set()
    # A failed attempt counts as retried once a successor exists; a duplicate successor did no
    # work (it deferred to an attempt that then failed), so it does not count.
    succeeded_from = {h for t in trials if not t.get("duplicate") for h in (t.get("retry_history") or [])}
    retry, dead = [], {}
    for t in trials:
        job, state = t.get("job"), t["state"]
        if job is not None:
            seen.add(job)
        if state == "COMPLETE" and not t.get("duplicate"):
            done.add(job)
        elif state == "RUNNING":
            running.add(job)
        elif state == "WAITING":
            waiting += 1
    for t in trials:
        if t["state"] != "FAIL" or t.get("job") in done or t.get("job") is None:
            continue
        if t["number"] in succeeded_from:
            continue  # already retried
        if len(t.get("retry_history") or []) >= max_retry:
            dead[t["job"]] = t.get("error") or "failed"
        else:
            retry.append(t["number"])
    dead = {k: v for k, v in dead.items() if k not in running}
    return PhaseState(done, running, waiting, len(set(keys) - seen), retry, dead)
