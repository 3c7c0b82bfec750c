"""Stage `train`'s dense jobs: one seed's configuration and tracking (`train_config`, `track_one`),
and a group's unfinished seeds computed together, then tracked seed by seed.

Two ways (docs/seed-parallel.md):
- `train.seed_parallel`: the seeds as one batched computation in this process
  (pie_mlops/jobs/seed_training.py; BERT/MiniLM through vmap, for a GPU); each seed is built with
  its own seeded initialisation.
- `train.seed_processes: N`: the seeds N at a time in child processes, each computing exactly
  what a seed computes alone (pie_mlops/jobs/seed_pool.py); each is tracked as soon as it is back.

Either way each seed then goes through the same per-seed path as a sequential model
(`track_one`, the model-job protocol): its own run, predictions, logged model and version, with
the same tags. No run exists while a seed computes, so a crash or a kill there leaves nothing
behind for it; one during tracking leaves the finished seeds registered and the rest to a rerun,
which computes only those, together again.
"""

from __future__ import annotations

from pie_mlops.jobs.context import JobContext
from pie_mlops.jobs.protocol import Made, ModelJob, run_job
from pie_mlops.jobs.writer import TrackWriter
from pie_mlops.util.log import get as get_logger

_LOG = get_logger(__name__)

GROUP = "dense"


def train_config(plan: dict, seed: int, progress: bool):
    """The training loop's configuration of one dense seed (the one place it is built from a plan)."""
    from pie_mlops.config.fidelity import option
    from pie_mlops.jobs.training import TrainConfig
    from pie_mlops.models.predict import job_autocast

    return TrainConfig(epochs=int(plan["epochs"]), batch_size=int(plan["batch_size"]), lr=plan["lr"],
                       warmup_ratio=float(plan["warmup_ratio"]), weight_decay=float(plan["weight_decay"]),
                       seed=seed, snapshot_epochs=tuple(plan["snapshot_epochs"]), progress=progress,
                       optimizer=option(plan, "optimizer"), autocast=job_autocast(plan))

def train_group(plan: dict, pending: list[ModelJob], meta: dict, splits: dict, progress: bool,
                ctx: JobContext, writer: TrackWriter | None = None) -> list:
    """Train the seeds of the dense jobs in `pending` as one batched computation; one record per
    seed (the Future of one when a `writer` tracks them, beside what computes next)."""
    import numpy as np

    from pie_mlops.config.fidelity import model_kwargs
    from pie_mlops.models import build_model
    from pie_mlops.compare.predictions import predicted_splits
    from pie_mlops.jobs.seed_training import predict_logits_stacked, train_seeds

    task, n_labels = meta["task"], len(meta["label_names"])
    seeds = [job.seed for job in pending]
    cfg = train_config(plan, 0, progress)
    with ctx.compute():  # a worker's compute slot; else just timing
        models = []
        for seed in seeds:
            models.append(build_model(plan["arch"], n_labels, task, seed=seed, model_path=plan.get("model_path"),
                                      **model_kwargs(plan["arch"], plan, "train")))
            if plan["arch"] == "bilstm":  # one frozen GloVe matrix (80 MB) for the group, not one per seed
                models[-1].embedding = models[0].embedding
        results, stack = train_seeds(models, seeds, splits["train"], splits["validation"], cfg)
        logits = {split: np.stack([r.val_logits for r in results])  # the last epoch's pass: final weights
                  if split == "validation" and all(r.val_logits is not None for r in results) else
                  predict_logits_stacked(stack, splits[split], models[0], cfg.eval_batch_size)
                  for split in predicted_splits(plan)}
    del stack
    track = writer.submit if writer is not None else lambda fn, *args: fn(*args)
    return [track(_track, job, plan, meta, splits, ctx, models[i], results[i], {k: v[i] for k, v in logits.items()})
            for i, job in enumerate(pending)]


def train_pooled(plan: dict, pending: list[ModelJob], meta: dict, splits: dict, progress: bool,
                 ctx: JobContext, processes: int, writer: TrackWriter | None = None) -> list:
    """Train the seeds of `pending` `processes` at a time in child processes; track each in turn
    (by the `writer`, if given: records are then Futures)."""
    from tqdm.auto import tqdm

    from pie_mlops.config.fidelity import model_kwargs
    from pie_mlops.util.log import progress_disabled
    from pie_mlops.models import build_model
    from pie_mlops.compare.predictions import predicted_splits
    from pie_mlops.jobs.seed_pool import SeedTask, compute_seeds

    task, n_labels = meta["task"], len(meta["label_names"])
    kwargs = dict(model_kwargs(plan["arch"], plan, "train"), model_path=plan["model_path"])
    tasks = [SeedTask(plan["arch"], n_labels, task, job.seed, kwargs, train_config(plan, job.seed, False), splits,
                      predicted_splits(plan)) for job in pending]
    records = []
    outputs = compute_seeds(tasks, processes)
    try:
        bar = tqdm(zip(pending, outputs), total=len(pending), desc=f"train seeds ({processes} processes)",
                   disable=progress_disabled(progress))
        for job, out in bar:
            # the same model, rebuilt here from its seed (frozen weights) and the child's weights
            model = build_model(plan["arch"], n_labels, task, seed=job.seed, **kwargs)
            model.load_state_dict(out.state, strict=False)
            args = (job, plan, meta, splits, ctx, model, out.result, out.logits)
            records.append(writer.submit(_track, *args) if writer is not None else _track(*args))
    finally:
        outputs.close()  # ends the children, also when tracking failed
    return records


def _track(job: ModelJob, plan: dict, meta: dict, splits: dict, ctx: JobContext, model, result, logits: dict) -> dict:
    """One computed seed through the model-job protocol; `logits`: split -> this seed's logits."""
    from pie_mlops import tracking
    from pie_mlops.jobs.protocol import finished
    from pie_mlops.compare.predictions import predictions_frame
    from pie_mlops.jobs.training import snapshot_frames

    task = meta["task"]

    def make(run, _model, _staging) -> Made:
        run.log_history(result.history)  # every epoch's metrics, in one request
        frames = {split: predictions_frame(splits[split], each, split=split, group=GROUP, seed=job.seed, task=task,
                                           threshold=result.threshold)
                  for split, each in logits.items()}
        frames.update(snapshot_frames(result, splits["train"], group=GROUP, seed=job.seed, task=task))
        return Made(model, frames, threshold=result.threshold, step=int(plan["epochs"]))

    # Registered under the per-(model, group, seed) claim, like a sequential seed: a duplicate
    # command that trained the same group meanwhile finds this seed finished and defers.
    with tracking.model_claim(job.model_name, GROUP, job.seed):
        found = finished(job, ctx)
        if found:
            return {"arch": plan["arch"], "seed": job.seed, "status": "skipped", "run_id": found}
        return track_one(job, make, ctx, task, meta["label_names"], splits["test"])


def track_one(job: ModelJob, make, ctx: JobContext, task: str, label_names: list, examples) -> dict:
    """One dense seed through the model-job protocol (pie_mlops/jobs/protocol.py), then its line and,
    when it learned nothing, a warning now rather than at compare."""
    record, made = run_job(job, make, ctx, task=task, label_names=label_names, examples=examples)
    _LOG.info(f"{job.model_name} v{record['version']} ({job.alias}): validation {record['validation_score']:.4f}, "
              f"test {record['test_score']:.4f} -> {job.out_dir}")
    from pie_mlops.compare.baseline import at_baseline, baseline_name

    if (weak := at_baseline(made.frames["validation"], task)) is not None:  # it learned nothing: say so now
        arch = job.plan["arch"]
        _LOG.warning(f"{job.model_name} {job.alias} ends at the trivial baseline on validation: {weak[0]:.4f} vs "
                     f"{baseline_name(task)} {weak[1]:.4f}. Training goes on; compare will stop {arch} (no PIEs, "
                     f"no champion) if a dense model does not beat that baseline by compare.min_gain_over_baseline "
                     f"on compare.split (docs/gates.md). Tune it (tune.arch) or train longer")
    return {"arch": job.plan["arch"], "seed": job.seed, "status": "trained", **record}
