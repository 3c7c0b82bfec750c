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
from contextlib import ExitStack
from pathlib import Path

from pie_mlops.config.plans import one_arch
from pie_mlops.config.schema import Prune
from pie_mlops.config.vocabulary import check_name
from pie_mlops.jobs.context import JobContext
from pie_mlops.jobs.protocol import Made, ModelJob, finished, identity_tags
from pie_mlops.jobs.prune_group import load_dense, pruned_dir, pruned_made, prune_groups, prune_pooled, track_pruned
from pie_mlops.jobs.prune_quant import quantize_groups
from pie_mlops.jobs.writer import TrackWriter, resolved
from pie_mlops.pruning.plan import SCOPES, format_sparsity, group_name, plan_jobs  # noqa: F401 (the stage's vocabulary)
from pie_mlops.pruning.plan import predicted_splits as _predicted_splits
from pie_mlops.util.errors import PieError
from pie_mlops.util.fingerprint import code_fingerprint
from pie_mlops.util.log import get as get_logger
from pie_mlops.util.log import progress_disabled

_LOG = get_logger(__name__)

# The current seed's registered dense model lives in the job context (`ctx.dense`), which a
# worker's lane keeps across prune() calls: it runs one (group, seed) per call, and reloading
# the same version for every group cost a download and a model build per job. Keyed by the
# version's run id (unique in any store): a new version reloads.
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
    """prune() of one architecture's plan."""
    from tqdm.auto import tqdm

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
    processes = section.seed_processes
    md5, sha = tracking.data_md5(section.data_dir), tracking.git_sha()
    name = tracking.registered_model_name(section.dataset, section.arch)
    ctx = ctx or JobContext()
    if not ctx.in_worker:  # a worker's job: its retry reaps a dead attempt (pie.job tag)
        for run_id in tracking.reap_stale_runs(section.dataset, section.arch):  # left by a killed process
            _LOG.info(f"run {run_id} was left RUNNING by a killed process: marked KILLED, redone below")
    versions = _check_dense(name, seeds, md5)
    epochs = _epochs_per_step(params, jobs, versions)
    meta, splits = read_dataset(data_path)
    splits["train"] = subsample(splits["train"], section.max_train_examples)

    # Seed-major order: every os group of a seed starts from the same registered dense model,
    # downloaded once and kept (one seed at a time) in the context's `dense`.
    records, together = [], {}  # together: the unfinished seed-parallel jobs, by group
    # Each computed model is tracked by the writer while the next one computes (jobs/writer.py).
    with TrackWriter() as writer:
        for group_plan, seed in tqdm([(j, s) for s in seeds for j in jobs], desc="prune",
                                     disable=progress_disabled(progress)):
            job = _model_job(params, hp, group_plan, epochs[seed], seed, (name, md5, sha), parallel)
            plan = job.plan
            with ExitStack() as claim:
                # One process at a time per (model, group, seed) on a SQLite store, from this lookup to
                # its registered version (the writer releases it; tracking/guard.py).
                claim.enter_context(tracking.model_claim(name, job.group, seed))
                found = finished(job, ctx)
                if found:
                    records.append({"group": job.group, "seed": seed, "status": "skipped", "run_id": found})
                    continue
                if plan.get("seed_parallel") or processes > 1:  # computed together below, tracked one by one
                    together.setdefault(job.group if plan.get("seed_parallel") else None, []).append(job)
                    continue
                key = (name, seed, versions[seed].run_id)  # a run id is unique across stores
                records.append(_prune_one(job, meta, splits, progress, ctx, key, versions[seed], writer, claim))
        pooled = together.pop(None, [])
        if len(pooled) > 1:
            records += prune_pooled(pooled, meta, splits, progress, ctx, versions, processes, writer)
        for job in pooled if len(pooled) == 1 else ():  # one job: no process to start
            with ExitStack() as claim:
                claim.enter_context(tracking.model_claim(name, job.group, job.seed))
                if (found := finished(job, ctx)):  # meanwhile, by a duplicate command
                    records.append({"group": job.group, "seed": job.seed, "status": "skipped", "run_id": found})
                    continue
                records.append(_prune_one(job, meta, splits, progress, ctx, (name, job.seed, versions[job.seed].run_id),
                                          versions[job.seed], writer, claim))
        if together:
            records += prune_groups(together, meta, splits, progress, ctx, versions, writer)
    records = resolved(records)
    if section.quantize:  # quant-<method> groups: the same protocol, no pruning (jobs/prune_quant.py)
        records += quantize_groups(params, name, versions, meta, splits, ctx, md5, sha)
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


def _prune_one(job: ModelJob, meta: dict, splits: dict, progress: bool, ctx: JobContext, key: tuple, mv,
               writer: TrackWriter, claim: ExitStack):
    """Compute one pruned job here, then hand its tracking (and `claim`) to the writer: its Future."""
    import tempfile

    from pie_mlops.pruning.apply import prune_model
    from pie_mlops.jobs.training import predict_frames
    from pie_mlops.models.predict import job_autocast

    plan, seed = job.plan, job.seed
    history: list[dict] = []
    # No run exists while it computes: a dense model that does not load, or a crash, makes none.
    with ctx.compute(), tempfile.TemporaryDirectory(prefix="pie-dense-") as tmp:
        model = _start_model(plan, seed, meta, job.model_name, Path(tmp), ctx.dense, key, mv)
        outcome = prune_model(model, plan, seed, splits, task=meta["task"], progress=progress,
                              on_epoch_end=lambda epoch, metrics: history.append(dict(metrics, epoch=epoch)))
        frames = predict_frames(model, splits, _predicted_splits(plan), group=job.group, seed=seed,
                                threshold=outcome.threshold, val_logits=outcome.val_logits,
                                autocast=job_autocast(plan))
    # the os delta's base, as it is now: the next seed's compute replaces ctx.dense meanwhile
    dense = dict(ctx.dense) if plan["schedule"] == "os" else None

    def make(run, _model, staging) -> Made:
        run.log_history(history)  # every epoch's metrics in one request
        return pruned_made(run, model, staging, outcome, frames, dense)

    return writer.submit(track_pruned, job, make, ctx, meta, splits, hold=claim.pop_all())


def _start_model(plan: dict, seed: int, meta: dict, name: str, staging: Path, dense: dict, key: tuple, mv=None):
    """os: a copy of the registered dense model of this seed (`dense` keeps the current seed's
    download, so memory stays one model whatever the seed count); ft/wr/ai: the dense init."""
    import copy

    from pie_mlops.config.fidelity import model_kwargs
    from pie_mlops.models import build_model

    if plan["schedule"] == "os":
        if dense.get("key") != key:
            dense.clear()
            dense.update(load_dense(name, seed, staging / "dense", mv), key=key)
        return copy.deepcopy(dense["model"])
    return build_model(plan["arch"], len(meta["label_names"]), meta["task"], seed=seed,
                       model_path=plan["model_path"] if plan["arch"] == "bert" else None,
                       **model_kwargs(plan["arch"], plan, "prune"))
