"""Stage `train`'s dense jobs, as the orchestrator (jobs/orchestrate.py) computes them: one seed
here, a group's unfinished seeds together, each then tracked seed by seed (`track_one`).

Two ways to compute seeds together (docs/seed-parallel.md):
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
from pie_mlops.jobs.orchestrate import POOL, STACK, Maker
from pie_mlops.jobs.protocol import Made, ModelJob, run_job
from pie_mlops.util.log import get as get_logger

_LOG = get_logger(__name__)

GROUP = "dense"


class DenseJobs(Maker):
    """How train computes its jobs: `meta` and the dataset's `splits`; per architecture, the
    seeds' `processes` (seed_processes) and the intra-op `threads` of what computes here."""

    desc = "train seeds"

    def __init__(self, meta: dict, splits: dict, progress: bool, ctx: JobContext, processes: dict, threads: dict):
        self.meta, self.splits, self.progress, self.ctx = meta, splits, progress, ctx
        self.processes, self.threads = processes, threads

    def key(self, job: ModelJob) -> dict:
        return {"arch": job.plan["arch"], "seed": job.seed}

    def way(self, job: ModelJob):
        arch = job.plan["arch"]
        if job.group != GROUP:  # dense-long: one at a time (stacks and pools make dense models only)
            return None
        if job.plan.get("seed_parallel"):
            return STACK, arch
        return (POOL, arch) if self.processes[arch] > 1 else None

    def data(self, plan: dict) -> dict:
        """The splits a plan trains on (its max_train_examples: a fixed subsample)."""
        from pie_mlops.data.splits import subsample

        return dict(self.splits, train=subsample(self.splits["train"], plan["max_train_examples"]))

    def one(self, job: ModelJob):
        """Compute one seed here: its tracking, or a DDP rank > 0's record (rank 0 tracks)."""
        from pie_mlops.compare.predictions import predicted_splits
        from pie_mlops.config.fidelity import model_kwargs
        from pie_mlops.jobs.distributed import is_main, rank
        from pie_mlops.jobs.frames import predict_frames, snapshot_frames
        from pie_mlops.jobs.training import job_config
        from pie_mlops.jobs.training import train as fit
        from pie_mlops.models import build_model
        from pie_mlops.util.seeding import intra_op_threads

        plan, seed, meta, splits = job.plan, job.seed, self.meta, self.data(job.plan)
        cfg = job_config(plan, seed, self.progress)
        # No run exists while it computes: a model path that does not load, or a crash, makes none.
        with intra_op_threads(self.threads[plan["arch"]]), self.ctx.compute():  # a worker's slot; else timing
            model = build_model(plan["arch"], len(meta["label_names"]), meta["task"], seed=seed,
                                model_path=plan["model_path"], **model_kwargs(plan["arch"], plan, "train"))
            result = fit(model, splits["train"], splits["validation"], cfg)
            if not is_main():  # a DDP rank > 0: train its shares, leave the store and the files to rank 0
                return {"arch": plan["arch"], "seed": seed, "status": "trained", "rank": rank()}
            frames = predict_frames(model, splits, predicted_splits(plan), group=job.group, seed=seed,
                                    threshold=result.threshold, batch_size=cfg.eval_batch_size,
                                    val_logits=result.val_logits, autocast=cfg.autocast)
            frames.update(snapshot_frames(result, splits["train"], group=job.group, seed=seed, task=meta["task"]))

        def make(run, _model, _staging) -> Made:
            run.log_history(result.history)  # every epoch's metrics in one request
            return Made(model, frames, threshold=result.threshold, step=int(plan["epochs"]))

        return lambda: track_one(job, make, self.ctx, meta["task"], meta["label_names"], splits["test"])

    def stacks(self, stacks: dict):
        """train.seed_parallel: each architecture's seeds trained as one batched computation."""
        import numpy as np

        from pie_mlops.compare.predictions import predicted_splits
        from pie_mlops.config.fidelity import model_kwargs
        from pie_mlops.jobs.seed_training import predict_logits_stacked, train_seeds
        from pie_mlops.jobs.training import job_config
        from pie_mlops.models import build_model
        from pie_mlops.util.seeding import intra_op_threads

        task, n_labels = self.meta["task"], len(self.meta["label_names"])
        for arch, pending in stacks.items():
            plan = pending[0].plan
            splits, seeds = self.data(plan), [job.seed for job in pending]
            with intra_op_threads(self.threads[arch]), self.ctx.compute():  # a worker's slot; else timing
                models = []
                for seed in seeds:
                    models.append(build_model(arch, n_labels, task, seed=seed, model_path=plan.get("model_path"),
                                              **model_kwargs(arch, plan, "train")))
                    if arch == "bilstm":  # one frozen GloVe matrix (80 MB) for the group, not one per seed
                        models[-1].embedding = models[0].embedding
                cfg = job_config(plan, 0, self.progress)
                results, stack = train_seeds(models, seeds, splits["train"], splits["validation"], cfg)
                logits = {split: np.stack([r.val_logits for r in results])  # the last epoch's pass: final weights
                          if split == "validation" and all(r.val_logits is not None for r in results) else
                          predict_logits_stacked(stack, splits[split], models[0], cfg.eval_batch_size)
                          for split in predicted_splits(plan)}
            del stack
            for i, job in enumerate(pending):
                yield job, self._tracking(job, splits, models[i], results[i], {k: v[i] for k, v in logits.items()})

    def pool(self, arch: str, pending: list[ModelJob]):
        """train.seed_processes: the seeds `processes` at a time in child processes, each tracked
        as soon as it is back."""
        from tqdm.auto import tqdm

        from pie_mlops.compare.predictions import predicted_splits
        from pie_mlops.config.fidelity import model_kwargs
        from pie_mlops.jobs.seed_pool import SeedTask, compute_seeds
        from pie_mlops.jobs.training import job_config
        from pie_mlops.models import build_model
        from pie_mlops.util.log import progress_disabled

        plan, processes, splits = pending[0].plan, self.processes[arch], self.data(pending[0].plan)
        build = dict(arch=arch, num_labels=len(self.meta["label_names"]), task=self.meta["task"],
                     model_path=plan["model_path"], **model_kwargs(arch, plan, "train"))
        tasks = [SeedTask(dict(build, seed=job.seed), splits, predicted_splits(plan),
                          cfg=job_config(plan, job.seed, False)) for job in pending]
        outputs = compute_seeds(tasks, processes)
        try:
            for job, out in tqdm(zip(pending, outputs), total=len(pending), desc=f"train seeds ({processes} processes)",
                                 disable=progress_disabled(self.progress)):
                # the same model, rebuilt here from its seed (frozen weights) and the child's weights
                model = build_model(**dict(build, seed=job.seed))
                model.load_state_dict(out.state, strict=False)
                yield job, self._tracking(job, splits, model, out.result, out.logits)
        finally:
            outputs.close()  # ends the children, also when tracking failed

    def _tracking(self, job: ModelJob, splits: dict, model, result, logits: dict):
        """One seed computed together, through the model-job protocol; `logits`: split -> its logits."""
        from pie_mlops.compare.predictions import predictions_frame
        from pie_mlops.jobs.frames import snapshot_frames

        task = self.meta["task"]

        def make(run, _model, _staging) -> Made:
            run.log_history(result.history)  # every epoch's metrics, in one request
            frames = {split: predictions_frame(splits[split], each, split=split, group=GROUP, seed=job.seed,
                                               task=task, threshold=result.threshold)
                      for split, each in logits.items()}
            frames.update(snapshot_frames(result, splits["train"], group=GROUP, seed=job.seed, task=task))
            return Made(model, frames, threshold=result.threshold, step=int(job.plan["epochs"]))

        return lambda: track_one(job, make, self.ctx, task, self.meta["label_names"], splits["test"])


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
                     f"on compare.split (docs/gates.md). Tune it (tune.space, tune.n_trials) or train longer")
    return {"arch": job.plan["arch"], "seed": job.seed, "status": "trained", **record}
