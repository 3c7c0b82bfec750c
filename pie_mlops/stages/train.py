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
from contextlib import ExitStack
from pathlib import Path

from pie_mlops.compare.predictions import predicted_splits
from pie_mlops.config.plans import best_params_file, one_arch
from pie_mlops.config.schema import Train
from pie_mlops.config.vocabulary import check_name
from pie_mlops.jobs.context import JobContext
from pie_mlops.jobs.protocol import Made, ModelJob, finished, identity_tags
from pie_mlops.jobs.train_group import GROUP, track_one, train_config, train_group, train_pooled
from pie_mlops.jobs.writer import TrackWriter, resolved
from pie_mlops.util.errors import PieError
from pie_mlops.util.fingerprint import code_fingerprint
from pie_mlops.util.log import get as get_logger
from pie_mlops.util.log import progress_disabled

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
    from tqdm.auto import tqdm

    from pie_mlops import tracking
    from pie_mlops.data.contract import read_dataset, read_meta
    from pie_mlops.data.splits import subsample
    from pie_mlops.jobs.distributed import broadcast, is_main
    from pie_mlops.util.seeding import intra_op_threads

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
    reap = is_main() and not ctx.in_worker  # a worker's retry reaps by its pie.job tag instead
    for arch in by_arch if reap else ():  # runs a killed process left RUNNING: mark KILLED, redo
        for run_id in tracking.reap_stale_runs(first.dataset, arch):
            _LOG.info(f"run {run_id} was left RUNNING by a killed process: marked KILLED, redone below")

    processes = {plan["arch"]: seed_processes(by_arch[plan["arch"]], plan) for plan in plans}
    # train.num_threads: the models computed here (not in seed_processes children); runtime only
    threads = {arch: section.num_threads for arch, section in by_arch.items()}
    records, together = [], {}  # together: the unfinished seeds computed together, by arch
    jobs = [(plan, seed) for plan in plans for seed in by_arch[plan["arch"]].seeds]
    longs = [lp for lp in (dense_long_plan(plan, by_arch[plan["arch"]].dense_long_epochs) for plan in plans) if lp]
    jobs += [(lp, seed) for lp in longs for seed in by_arch[lp["arch"]].seeds]  # after dense: prune needs dense first
    # Each computed model is tracked by the writer while the next one computes (jobs/writer.py).
    with TrackWriter() as writer:
        for plan, seed in tqdm(jobs, desc="train seeds", disable=progress_disabled(progress)):
            job = model_job(plan, seed, md5, sha, first.predictions_dir, first.data_dir)
            with ExitStack() as claim:
                # One process at a time per (model, group, seed) on a SQLite store, from this lookup
                # to its registered version (the writer releases it): a duplicate command waits
                # here, then finds the first one's run finished (pie_mlops/tracking/guard.py).
                claim.enter_context(tracking.model_claim(job.model_name, job.group, seed, enabled=is_main()))
                # rank 0 alone reads the store; all ranks must agree on skipping (they train together)
                found = broadcast(finished(job, ctx) if is_main() else None)
                if found:
                    records.append({"arch": plan["arch"], "seed": seed, "status": "skipped", "run_id": found})
                    continue
                data = dict(splits, train=subsample(splits["train"], plan["max_train_examples"]))
                # dense-long: one at a time (the batched and pooled paths make dense models only)
                if job.group == GROUP and (plan.get("seed_parallel") or processes[plan["arch"]] > 1):
                    together.setdefault(plan["arch"], (plan, data, []))[2].append(job)
                    continue
                with intra_op_threads(threads[plan["arch"]]):
                    records.append(_train_one(job, meta, data, progress, ctx, writer, claim))
        for plan, data, pending in together.values():
            if len(pending) > 1 and not plan.get("seed_parallel"):  # then tracked seed by seed as each comes back
                records += train_pooled(plan, pending, meta, data, progress, ctx, processes[plan["arch"]], writer)
                continue
            with intra_op_threads(threads[plan["arch"]]):
                if plan.get("seed_parallel"):
                    records += train_group(plan, pending, meta, data, progress, ctx, writer)
                else:  # one seed: no process to start
                    with ExitStack() as claim:
                        claim.enter_context(tracking.model_claim(pending[0].model_name, GROUP, pending[0].seed))
                        if (found := finished(pending[0], ctx)):  # meanwhile, by a duplicate command
                            records.append({"arch": plan["arch"], "seed": pending[0].seed, "status": "skipped",
                                            "run_id": found})
                            continue
                        records.append(_train_one(pending[0], meta, data, progress, ctx, writer, claim))
    return resolved(records)


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


def _train_one(job: ModelJob, meta: dict, splits: dict, progress: bool, ctx: JobContext, writer: TrackWriter,
               claim: ExitStack):
    """Compute one seed here, then hand its tracking (and `claim`) to the writer: a record, or
    the Future of one."""
    from pie_mlops.jobs.distributed import is_main, rank
    from pie_mlops.config.fidelity import model_kwargs
    from pie_mlops.models import build_model
    from pie_mlops.jobs.training import predict_frames, snapshot_frames
    from pie_mlops.jobs.training import train as fit

    plan, seed = job.plan, job.seed
    task, n_labels = meta["task"], len(meta["label_names"])
    cfg = train_config(plan, seed, progress)
    # No run exists while it computes: a model path that does not load, or a crash, makes none.
    with ctx.compute():  # a worker's compute slot; else just timing
        model = build_model(plan["arch"], n_labels, task, seed=seed, model_path=plan["model_path"],
                            **model_kwargs(plan["arch"], plan, "train"))
        result = fit(model, splits["train"], splits["validation"], cfg)
        if not is_main():  # a DDP rank > 0: train its shares, leave the store and the files to rank 0
            return {"arch": plan["arch"], "seed": seed, "status": "trained", "rank": rank()}
        frames = predict_frames(model, splits, predicted_splits(plan), group=job.group, seed=seed,
                                threshold=result.threshold, batch_size=cfg.eval_batch_size,
                                val_logits=result.val_logits, autocast=cfg.autocast)
        frames.update(snapshot_frames(result, splits["train"], group=job.group, seed=seed, task=task))

    def make(run, _model, _staging) -> Made:
        run.log_history(result.history)  # every epoch's metrics in one request
        return Made(model, frames, threshold=result.threshold, step=int(plan["epochs"]))

    return writer.submit(track_one, job, make, ctx, task, meta["label_names"], splits["test"], hold=claim.pop_all())
