"""Stage `prune`: the pruned groups, criteria x schedules x sparsities x seeds (params: prune.*).

Each (group, seed) is one tracked run and one registered version of `pie-<dataset>-<arch>`
with the alias `<group>-s<seed>` (made MLflow-legal: `magnitude-ft-0_50-s0`), its accounting
(achieved sparsity overall and per layer, non-zero parameters, size on disk, CPU latency on a
fixed batch) and its per-example predictions under `predictions/<dataset>/<arch>/pruned/<group>/s<seed>/`
(beside `dense/`, so DVC can track the dense and the pruned outputs as separate stage outputs).

- `ft`, `wr`, `ai` start from the same initialisation as the dense model of that seed.
- `os` prunes the registered dense model `dense-s<seed>` and optionally fine-tunes it for
  `recovery_steps` steps; with `scope: structured` (bert only) whole heads and FFN neurons go.

Like `train`, finished (group, seed) pairs are found by their tags and skipped, and every
input is checked before the first run starts, so bad input registers nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from pie_mlops.config.plans import one_arch
from pie_mlops.config.schema import Prune
from pie_mlops.config.vocabulary import check_name
from pie_mlops.jobs.context import JobContext
from pie_mlops.jobs.orchestrate import orchestrate
from pie_mlops.jobs.protocol import ModelJob, identity_tags
from pie_mlops.jobs.prune_group import PrunedJobs, pruned_dir
from pie_mlops.jobs.prune_quant import QuantJobs, quant_jobs
from pie_mlops.pruning.plan import SCOPES, format_sparsity, group_name, plan_jobs  # noqa: F401 (the stage's vocabulary)
from pie_mlops.util.errors import PieError
from pie_mlops.util.fingerprint import code_fingerprint
from pie_mlops.util.log import get as get_logger

_LOG = get_logger(__name__)

# ft/wr/ai's and the os recovery's hyperparameters: the plan's, the tuned ones applied (config/plans.py)
HYPERPARAMETERS = ("batch_size", "lr", "warmup_ratio", "weight_decay", "max_length")


def _epochs_per_step(params: dict, jobs: list[dict], versions: dict) -> dict:
    """seed -> E; `dense`: the epochs its dense run logged (the paper ties E to them)."""
    from pie_mlops import tracking
    from pie_mlops.pruning.schedules import resolve_epochs_per_step

    value = params["epochs_per_step"]
    if value == "dense" and all(j["schedule"] == "os" for j in jobs):
        value = 1  # os trains no schedule: no need to look the dense epochs up
    return {seed: resolve_epochs_per_step(value, tracking.run_param(mv.run_id, "epochs") if value == "dense" else None)
            for seed, mv in versions.items()}


def _check_dense(name: str, seeds: list[int], md5: str) -> dict:
    """The dense version of every seed, which must exist and be trained on the current data."""
    from pie_mlops import tracking

    found = {}
    for seed in seeds:
        mv = tracking.version_by_alias(name, f"dense-s{seed}")
        if mv is None:
            raise PieError(f"dense seed {seed} is not in the registry ({name}@dense-s{seed}); "
                           f"run `pie-mlops train --seeds {seed}` first")
        if mv.tags.get("data_md5") not in (md5, None):
            raise PieError(f"{name}@dense-s{seed} was trained on data {mv.tags.get('data_md5')}, the data is now "
                           f"{md5}; re-run `pie-mlops train` for the current data")
        found[seed] = mv
    return found


def prune(plans: Prune | Sequence[Prune], progress: bool = True, ctx: JobContext | None = None) -> list[dict]:
    """Run every pruned (group, seed) of each plan (one per architecture, config/plans.py, each
    pruned in turn); returns one record each: pruned or skipped. `ctx`: the job's context (a
    worker's lane; default: this command alone, pie_mlops/jobs/context.py)."""
    from pie_mlops.util.seeding import intra_op_threads

    records = []
    for plan in one_arch(plans, "prune"):
        with intra_op_threads(plan.num_threads):  # the jobs computed here; runtime only
            records += _prune_arch(plan, progress, ctx)
    return records


def _prune_arch(section: Prune, progress: bool, ctx: JobContext | None) -> list[dict]:
    """prune() of one architecture's plan: its pruned jobs made by the orchestrator
    (jobs/orchestrate.py: reap, claim, skip if finished, compute, track), then its quantized groups."""
    from pie_mlops import tracking
    from pie_mlops.config.plans import seed_parallel
    from pie_mlops.data.contract import read_dataset, read_meta
    from pie_mlops.data.splits import subsample

    params = section.model_dump()  # the pure pruning plan (pruning/plan.py) reads a mapping
    data_path = Path(section.data_dir) / check_name("dataset", section.dataset, "study.dataset (or --dataset)")
    read_meta(data_path)  # PieError telling how to materialize a missing dataset
    quant_only = bool(section.quantize) and not section.sparsities  # quantized groups alone
    jobs, seeds = ([] if quant_only else plan_jobs(params)), section.seeds
    hp = {k: params[k] for k in HYPERPARAMETERS}
    parallel = seed_parallel(section)
    md5, sha = tracking.data_md5(section.data_dir), tracking.git_sha()
    name = tracking.registered_model_name(section.dataset, section.arch)
    ctx = ctx or JobContext()
    made = []  # the maker plan() makes: its dense versions and data serve the quantized groups too

    def plan() -> tuple[list[ModelJob], PrunedJobs]:  # after the reap: a killed train's version is gone
        versions = _check_dense(name, seeds, md5)
        epochs = _epochs_per_step(params, jobs, versions)
        meta, splits = read_dataset(data_path)
        splits["train"] = subsample(splits["train"], section.max_train_examples)
        made.append(PrunedJobs(meta, splits, progress, ctx, versions, section.seed_processes))
        # Seed-major order: every os group of a seed starts from the same registered dense model,
        # downloaded once and kept (one seed at a time) in the context's `dense`.
        return [_model_job(params, hp, group_plan, epochs[seed], seed, (name, md5, sha), parallel)
                for seed in seeds for group_plan in jobs], made[0]

    records = orchestrate(section.dataset, [section.arch], plan, ctx, progress)
    if section.quantize:  # quant-<method> groups: the same protocol, no pruning (jobs/prune_quant.py)
        pruned = made[0]
        records += orchestrate(section.dataset, [section.arch], lambda: (
            quant_jobs(params, name, list(pruned.versions), md5, sha),
            QuantJobs(params, pruned.versions, pruned.meta, pruned.splits, ctx)), ctx, progress)
    return records


def _model_job(params: dict, hp: dict, group_plan: dict, epochs_per_step: int, seed: int, store: tuple,
               parallel: bool) -> ModelJob:
    """One pruned (group, seed) job: its plan (the section's keys, then the hyperparameters, the
    group's own keys and its E), output folder, alias and identity tags; `store`: (registered
    model name, data md5, git sha)."""
    from pie_mlops import tracking
    from pie_mlops.config.fidelity import identity_extras
    from pie_mlops.models.predict import effective_autocast

    name, md5, sha = store
    plan = {k: params[k] for k in ("dataset", "arch", "model_path", "include", "exclude", "epochs_per_step",
                                   "steps", "recovery_steps", "impact_batches", "impact_batch_size",
                                   "predict_train", "predict_validation", "predict_test",
                                   "max_train_examples")}
    plan.update(hp, **identity_extras(params), **group_plan, epochs_per_step=epochs_per_step)
    if plan["schedule"] != "os":
        plan.pop("recovery_steps")
    if parallel and stackable(plan):  # only when on: sequential models keep their params hash
        plan["seed_parallel"] = True
    if effective_autocast(params["autocast"], plan["arch"]) == "bf16":  # CUDA only: CPU hashes as before
        plan["autocast"] = "bf16"
    return ModelJob(plan=plan, group=plan["group"], seed=seed, model_name=name, data_dir=str(params["data_dir"]),
                    out_dir=pruned_dir(params, plan["arch"]) / plan["group"] / f"s{seed}",
                    alias=tracking.alias_for(plan["group"], seed),
                    tags=identity_tags("prune", plan, plan["group"], seed, data_md5=md5, git_sha=sha,
                                       fingerprint=code_fingerprint(__name__),  # a code fix retrains
                                       criterion=plan["criterion"], schedule=plan["schedule"], scope=plan["scope"],
                                       threshold=plan["threshold"], sparsity=format_sparsity(plan["sparsity"])))

def stackable(plan: dict) -> bool:
    """Jobs the stacked BiLSTM serves: one-shot unstructured pruning with no recovery training
    (ft/wr/ai and a recovery fine-tune train, one model at a time)."""
    return (plan["arch"] == "bilstm" and plan["schedule"] == "os" and plan["scope"] == "unstructured"
            and not int(plan.get("recovery_steps") or 0))
