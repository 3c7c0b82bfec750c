"""Stage `train`, seed-parallel (train.seed_parallel): a group's unfinished seeds computed together.

The seeds are built one by one (each its own seeded initialisation), trained and predicted as
one batched computation (pie_mlops/seed_training.py), and only then does each seed go through
the same per-seed path as a sequential model (`track_one`, the model-job protocol): its own run, predictions, logged
model and version, with the same tags. No run exists while the batch computes, so a crash or a
kill there leaves nothing behind for those seeds; one during tracking leaves the finished
seeds registered and the rest to a rerun, which trains only those, together again.
"""

from __future__ import annotations

from pie_mlops.context import JobContext
from pie_mlops.jobs import Made, ModelJob


def train_group(plan: dict, pending: list[ModelJob], meta: dict, splits: dict, progress: bool,
                ctx: JobContext) -> list[dict]:
    """Train the seeds of the dense jobs in `pending` together; one record per seed."""
    from pie_mlops import tracking
    from pie_mlops.jobs import finished
    from pie_mlops.models import build_model
    from pie_mlops.predictions import predictions_frame
    from pie_mlops.seed_training import predict_logits_stacked, train_seeds
    from pie_mlops.predictions import predicted_splits
    from pie_mlops.stages.train import GROUP, track_one
    from pie_mlops.training import TrainConfig, snapshot_frames

    from pie_mlops.errors import PieError
    from pie_mlops.fidelity import model_kwargs

    if plan.get("optimizer", "adamw_warmup") != "adamw_warmup":  # the stacked loop steps one AdamW
        raise PieError(f"train.seed_parallel supports optimizer adamw_warmup only, not {plan['optimizer']!r}: "
                       f"turn seed_parallel off for {plan['arch']} or use adamw_warmup")
    task, n_labels = meta["task"], len(meta["label_names"])
    seeds = [job.seed for job in pending]
    cfg = TrainConfig(epochs=int(plan["epochs"]), batch_size=int(plan["batch_size"]), lr=plan["lr"],
                      warmup_ratio=float(plan["warmup_ratio"]), weight_decay=float(plan["weight_decay"]),
                      snapshot_epochs=tuple(plan["snapshot_epochs"]), progress=progress)
    with ctx.compute():  # a worker's compute slot; else just timing
        models = []
        for seed in seeds:
            models.append(build_model(plan["arch"], n_labels, task, seed=seed,
                                      **model_kwargs(plan["arch"], plan, "train")))
            # one frozen GloVe matrix (80 MB) for the group instead of one per seed
            models[-1].embedding = models[0].embedding
        results, stack = train_seeds(models, seeds, splits["train"], splits["validation"], cfg)
        logits = {split: predict_logits_stacked(stack, splits[split], models[0], cfg.eval_batch_size)
                  for split in predicted_splits(plan)}
    del stack

    records = []
    for i, job in enumerate(pending):
        def make(run, _model, _staging, i=i, seed=job.seed) -> Made:
            for metrics in results[i].history:  # as on_epoch_end logs them in sequential training
                run.log_epoch(metrics["epoch"], metrics)
            frames = {split: predictions_frame(splits[split], logits[split][i], split=split, group=GROUP, seed=seed,
                                               task=task, threshold=results[i].threshold)
                      for split in logits}
            frames.update(snapshot_frames(results[i], splits["train"], group=GROUP, seed=seed, task=task))
            return Made(models[i], frames, threshold=results[i].threshold, step=int(plan["epochs"]))

        # Registered under the per-(model, group, seed) claim, like a sequential seed: a duplicate
        # command that trained the same group meanwhile finds this seed finished and defers.
        with tracking.model_claim(job.model_name, GROUP, job.seed):
            found = finished(job, ctx)
            if found:
                records.append({"arch": plan["arch"], "seed": job.seed, "status": "skipped", "run_id": found})
                continue
            records.append(track_one(job, make, ctx, task, meta["label_names"], splits["test"]))
    return records
