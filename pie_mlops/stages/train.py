"""Stage `train`: the dense group, one tracked and registered model per seed (params: train.*).

For every (arch, seed): if a FINISHED run with the same identity tags exists (dataset, arch,
group, seed, data md5, params hash), nothing happens. Otherwise the model is trained, its
validation, test and early-training (`train@epoch<k>`) predictions are written under
`predictions/<dataset>/<arch>/dense/s<seed>/` and logged to the run, and the model is logged
and registered as a version of `pie-<dataset>-<arch>` with the alias `dense-s<seed>`.
Tuned hyperparameters from `params/best_<dataset>_<arch>.yaml` (written by `tune`) win over
the ones here. Every input is checked before the first run starts, so bad input never
leaves a half-written run or version behind.

Under `torchrun --nproc_per_node N` (pie_mlops.jobs.distributed) each model is trained by all N
processes with DDP; only rank 0 reads and writes the MLflow store and the prediction files,
and it tells the others which jobs to skip. The other ranks train, then wait and exit 0.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from pie_mlops.config.plans import best_params_file, one_arch
from pie_mlops.config.schema import Train
from pie_mlops.config.vocabulary import check_name
from pie_mlops.jobs.context import JobContext
from pie_mlops.jobs.orchestrate import orchestrate
from pie_mlops.jobs.protocol import ModelJob, identity_tags
from pie_mlops.jobs.train_group import GROUP, DenseJobs
from pie_mlops.util.errors import PieError
from pie_mlops.util.fingerprint import code_fingerprint
from pie_mlops.util.log import get as get_logger

_LOG = get_logger(__name__)

DENSE_LONG = "dense-long"  # the training-length control (train.dense_long_epochs; docs/claims.md)
HYPERPARAMETERS = ("epochs", "batch_size", "lr", "warmup_ratio", "weight_decay", "max_length")


def job_plan(plan: Train) -> dict:
    """A dense job's plan (its run's logged params and params hash) from one architecture's
    resolved plan (config/plans.py: the tuned and command-line values already applied)."""
    from pie_mlops.config.fidelity import identity_extras, model_kwargs
    from pie_mlops.models.predict import effective_autocast

    values = plan.model_dump()
    best_file = best_params_file(plan)
    # bilstm uses the packaged GloVe. A bert path or hub name is checked by building the
    # model, which happens before its run starts (a missing local path is a PieError there).
    model_kwargs(plan.arch, values, "train")  # a dropout given to bert: an error before any run
    return {"dataset": plan.dataset, "arch": plan.arch, "model_path": plan.model_path if plan.arch == "bert" else None,
            **{k: values[k] for k in HYPERPARAMETERS}, **identity_extras(values),
            "snapshot_epochs": sorted(plan.snapshot_epochs), "predict_train": plan.predict_train,
            "max_train_examples": plan.max_train_examples,
            "best_params_file": str(best_file) if best_file.is_file() else None,
            # only when on: the params hash (skip-on-rerun identity) of sequential models stays as it was
            **({"seed_parallel": True} if seed_parallel(plan) else {}),
            **({"autocast": "bf16"} if effective_autocast(plan.autocast, plan.arch) == "bf16" else {})}


def seed_parallel(plan: Train) -> bool:
    """Whether `plan`'s seeds are trained together (PieError where that is not built)."""
    from pie_mlops.config.plans import seed_parallel as wanted
    from pie_mlops.jobs import distributed

    if wanted(plan) and distributed.world_size() > 1:  # DDP splits one model's batches instead
        _LOG.info("train.seed_parallel is off under torchrun: the ranks share one seed's batches")
        return False
    return wanted(plan)


def train(plans: Train | Sequence[Train], progress: bool = True, ctx: JobContext | None = None) -> list[dict]:
    """Train the dense group of each plan (one per architecture, config/plans.py); returns one
    record per (arch, seed): trained or skipped. `ctx` is the job's context (a worker's lane;
    default: this command alone, pie_mlops/jobs/context.py).
    """
    from pie_mlops.jobs import distributed

    plans = one_arch(plans, "train")
    distributed.setup()  # no-op unless launched by torchrun
    try:
        records = _train_all(plans, progress and distributed.is_main(), ctx or JobContext())
        distributed.barrier()  # ranks > 0 wait here until rank 0 has logged and registered
    finally:
        distributed.teardown()
    return records


def _train_all(sections: list[Train], progress: bool, ctx: JobContext) -> list[dict]:
    """Every (arch, seed) job of the plans, dense then dense-long, made by the orchestrator
    (jobs/orchestrate.py: reap, claim, skip if finished, compute, track)."""
    from pie_mlops import tracking
    from pie_mlops.data.contract import read_dataset, read_meta

    first = sections[0]
    if len({(p.dataset, p.data_dir, p.predictions_dir) for p in sections}) > 1:
        raise PieError("train: the plans of one call share their dataset, data_dir and predictions_dir")
    data_path = Path(first.data_dir) / check_name("dataset", first.dataset, "study.dataset (or --dataset)")
    read_meta(data_path)  # PieError telling how to materialize a missing dataset
    # every input checked before any run
    plans = [job_plan(section) for section in sections]
    by_arch = {section.arch: section for section in sections}
    meta, splits = read_dataset(data_path)
    md5, sha = tracking.data_md5(first.data_dir), tracking.git_sha()
    longs = [lp for lp in (dense_long_plan(plan, by_arch[plan["arch"]].dense_long_epochs) for plan in plans) if lp]
    jobs = [model_job(plan, seed, md5, sha, first.predictions_dir, first.data_dir)
            for plan in plans + longs for seed in by_arch[plan["arch"]].seeds]  # dense-long after dense: prune needs dense first
    processes = {plan["arch"]: seed_processes(by_arch[plan["arch"]], plan) for plan in plans}
    # train.num_threads: the models computed here (not in seed_processes children); runtime only
    maker = DenseJobs(meta, splits, progress, ctx, processes, {arch: s.num_threads for arch, s in by_arch.items()})
    return orchestrate(first.dataset, list(by_arch), lambda: (jobs, maker), ctx, progress)


def dense_long_plan(plan: dict, epochs: int | str | None) -> dict | None:
    """The `dense-long` group's plan: dense models trained for `train.dense_long_epochs` (the ft/wr
    length, 4E), so a pruned ft/wr group can be compared with dense models trained as long.
    No early snapshots or train-split predictions (EL2N uses the dense group). None when off."""
    if epochs is None:
        return None
    if epochs == "4E":  # E tuned on validation: the ft/wr length follows it (prune.epochs_per_step: dense)
        epochs = 4 * int(plan["epochs"])
    return dict(plan, epochs=int(epochs), snapshot_epochs=[], predict_train=False, group=DENSE_LONG)


def seed_processes(section: Train, plan: dict) -> int:
    """How many of `plan`'s seeds compute at a time in child processes (1: here, one by one)."""
    from pie_mlops.jobs import distributed

    if plan.get("seed_parallel") or distributed.world_size() > 1:  # one batched group, or DDP's ranks
        return 1
    return section.seed_processes


def model_job(plan: dict, seed: int, md5: str, sha: str, predictions_dir: str, data_dir: str) -> ModelJob:
    """The dense (or dense-long) job of one (arch, seed). dense-long predictions go under the dense
    directory (`dense/dense-long/s<seed>`), so DVC's train output covers them."""
    from pie_mlops import tracking

    group = plan.get("group", GROUP)
    out = Path(predictions_dir) / plan["dataset"] / plan["arch"] / GROUP
    tags = identity_tags("train", plan, group, seed, data_md5=md5, git_sha=sha,
                         fingerprint=code_fingerprint(__name__),  # a code fix retrains
                         criterion="none", schedule="none", scope="none", sparsity="0.0", achieved_sparsity="0.0")
    return ModelJob(plan=plan, group=group, seed=seed, tags=tags,
                    out_dir=(out if group == GROUP else out / group) / f"s{seed}",
                    model_name=tracking.registered_model_name(plan["dataset"], plan["arch"]), alias=f"{group}-s{seed}",
                    data_dir=str(data_dir))
