"""Stage `prune`'s pruned jobs, as the orchestrator (jobs/orchestrate.py) computes them: one here
(its model a copy of the registered dense model, `load_dense`, or the dense initialisation),
or together: seed-parallel (prune.seed_parallel: a BiLSTM group's seeds pruned and predicted
together) or pooled (prune.seed_processes); and each job's save, size and tracking
(`pruned_made`, `track_pruned`).

For each seed-parallel group (`os`, unstructured, no recovery), the unfinished seeds' dense
models are copied and pruned one by one: masks are per-seed tensor math and cost milliseconds.
The S pruned models are then stacked (models/bilstm_stack.py), and each predicted split is one
pass over the data for all of them. Only then does each seed go through the same per-seed path
as a sequential job (`track_pruned`, the model-job protocol): its own run, prediction files,
logged model (a delta against its dense version) and version, with the same tags.

No run exists while a group computes, so a crash or a kill there leaves nothing behind for it;
one during tracking leaves the finished seeds registered and the rest to a rerun, which
computes only those, together again (the same rules as seed-parallel training).
"""

from __future__ import annotations

import copy
import tempfile
from pathlib import Path

from pie_mlops.jobs.context import JobContext
from pie_mlops.jobs.orchestrate import POOL, STACK, Maker
from pie_mlops.jobs.protocol import Made, ModelJob, run_job
from pie_mlops.pruning.plan import latency_batch
from pie_mlops.util.log import get as get_logger

_LOG = get_logger(__name__)


class PrunedJobs(Maker):
    """How prune computes one architecture's jobs: `meta`, the `splits`, each seed's registered
    dense version (`versions`) and the jobs' `processes` (seed_processes). The current seed's
    dense model lives in the job context (`ctx.dense`), which a worker's lane keeps across
    prune() calls (one (group, seed) each), keyed by the version's run id (unique in any store)."""

    desc = "prune"

    def __init__(self, meta: dict, splits: dict, progress: bool, ctx: JobContext, versions: dict, processes: int):
        self.meta, self.splits, self.progress, self.ctx = meta, splits, progress, ctx
        self.versions, self.processes = versions, processes

    def key(self, job: ModelJob) -> dict:
        return {"group": job.group, "seed": job.seed}

    def way(self, job: ModelJob):
        if job.plan.get("seed_parallel"):  # computed together, tracked one by one
            return STACK, job.group
        return (POOL, None) if self.processes > 1 else None

    def one(self, job: ModelJob):
        """Compute one pruned job here: its tracking."""
        from pie_mlops.jobs.frames import predict_frames
        from pie_mlops.models.predict import job_autocast
        from pie_mlops.pruning.apply import prune_model
        from pie_mlops.pruning.plan import predicted_splits

        plan, seed, ctx, meta, splits = job.plan, job.seed, self.ctx, self.meta, self.splits
        history: list[dict] = []
        # No run exists while it computes: a dense model that does not load, or a crash, makes none.
        with ctx.compute(), tempfile.TemporaryDirectory(prefix="pie-dense-") as tmp:
            model = self._start(job, Path(tmp))
            outcome = prune_model(model, plan, seed, splits, task=meta["task"], progress=self.progress,
                                  on_epoch_end=lambda epoch, metrics: history.append(dict(metrics, epoch=epoch)))
            frames = predict_frames(model, splits, predicted_splits(plan), group=job.group, seed=seed,
                                    threshold=outcome.threshold, val_logits=outcome.val_logits,
                                    autocast=job_autocast(plan))
        # the os delta's base, as it is now: the next seed's compute replaces ctx.dense meanwhile
        dense = dict(ctx.dense) if plan["schedule"] == "os" else None

        def make(run, _model, staging) -> Made:
            run.log_history(history)  # every epoch's metrics in one request
            return pruned_made(run, model, staging, outcome, frames, dense)

        return lambda: track_pruned(job, make, ctx, meta, splits)

    def _start(self, job: ModelJob, staging: Path):
        """os: a copy of the registered dense model of this seed (`ctx.dense` keeps the current
        seed's download, so memory stays one model whatever the seed count); ft/wr/ai: the dense init."""
        from pie_mlops.config.fidelity import model_kwargs
        from pie_mlops.models import build_model

        plan, seed, dense = job.plan, job.seed, self.ctx.dense
        if plan["schedule"] == "os":
            key = (job.model_name, seed, self.versions[seed].run_id)
            if dense.get("key") != key:
                dense.clear()
                dense.update(load_dense(job.model_name, seed, staging / "dense", self.versions[seed]), key=key)
            return copy.deepcopy(dense["model"])
        return build_model(plan["arch"], len(self.meta["label_names"]), self.meta["task"], seed=seed,
                           model_path=plan["model_path"] if plan["arch"] == "bert" else None,
                           **model_kwargs(plan["arch"], plan, "prune"))

    def _dense(self, jobs: list[ModelJob]) -> dict:
        """seed -> the registered dense model of every seed of `jobs`, loaded once for all their
        groups (one frozen GloVe matrix shared by all)."""
        dense = {}
        with self.ctx.compute(), tempfile.TemporaryDirectory(prefix="pie-dense-") as tmp:
            for seed in sorted({job.seed for job in jobs}):
                dense[seed] = load_dense(jobs[0].model_name, seed, Path(tmp) / f"s{seed}", self.versions[seed])
                _share_embedding(dense[seed]["model"], next(iter(dense.values()))["model"])
        return dense

    def stacks(self, stacks: dict):
        """prune.seed_parallel: group by group, each group's seeds pruned and predicted together."""
        from tqdm.auto import tqdm

        from pie_mlops.jobs.seed_training import predict_logits_stacked
        from pie_mlops.models.bilstm_stack import StackedBiLSTM
        from pie_mlops.pruning.apply import prune_model
        from pie_mlops.pruning.plan import predicted_splits
        from pie_mlops.util.log import progress_disabled

        ctx, task, splits = self.ctx, self.meta["task"], self.splits
        dense = self._dense([job for jobs in stacks.values() for job in jobs])
        for jobs in tqdm(stacks.values(), desc="prune groups (seed-parallel)", disable=progress_disabled(self.progress)):
            with ctx.compute():  # a worker's compute slot; else just timing
                models, outcomes = [], []
                for job in jobs:
                    model = copy.deepcopy(dense[job.seed]["model"])
                    _share_embedding(model, dense[job.seed]["model"])
                    outcomes.append(prune_model(model, job.plan, job.seed, splits, task=task, progress=False))
                    models.append(model)
                stack = StackedBiLSTM(models, [job.seed for job in jobs])
                logits = {split: predict_logits_stacked(stack, splits[split], models[0])
                          for split in predicted_splits(jobs[0].plan)}
                del stack
            for i, job in enumerate(jobs):
                yield job, self._tracking(job, models[i], outcomes[i], {k: v[i] for k, v in logits.items()},
                                          dense[job.seed])

    def pool(self, _key, jobs: list[ModelJob]):
        """prune.seed_processes: the jobs `processes` at a time in child processes (jobs/seed_pool.py),
        each computing what it computes here; each is tracked as soon as it is back. CPU latency is
        timed here, on this process's threads, as for a job pruned here."""
        from tqdm.auto import tqdm

        from pie_mlops.config.fidelity import model_kwargs
        from pie_mlops.jobs.seed_pool import SeedTask, compute_seeds
        from pie_mlops.pruning.apply import cpu_latency_ms
        from pie_mlops.pruning.plan import predicted_splits
        from pie_mlops.util.log import progress_disabled

        task, splits = self.meta["task"], self.splits
        dense = self._dense([job for job in jobs if job.plan["schedule"] == "os"]) if any(
            job.plan["schedule"] == "os" for job in jobs) else {}
        first = next(iter(dense.values()))["model"] if dense else None

        def build(job: ModelJob) -> dict:
            return dict(arch=job.plan["arch"], num_labels=len(self.meta["label_names"]), task=task, seed=job.seed,
                        model_path=job.plan["model_path"] if job.plan["arch"] == "bert" else None,
                        **model_kwargs(job.plan["arch"], job.plan, "prune"))

        tasks = [SeedTask(build(job), splits, predicted_splits(job.plan), plan=job.plan,
                          start=dense[job.seed]["model"] if job.plan["schedule"] == "os" else None) for job in jobs]
        outputs = compute_seeds(tasks, self.processes)
        try:
            for job, out in tqdm(zip(jobs, outputs), total=len(jobs), desc=f"prune ({self.processes} processes)",
                                 disable=progress_disabled(self.progress)):
                if first is not None:
                    _share_embedding(out.model, first)
                batch = splits["test"].head(latency_batch(job.plan))
                out.outcome.accounting["latency_ms"] = cpu_latency_ms(out.model, batch)
                yield job, self._tracking(job, out.model, out.outcome, out.logits,
                                          dense.get(job.seed) if job.plan["schedule"] == "os" else None, out.history)
        finally:
            outputs.close()  # ends the children, also when tracking failed

    def _tracking(self, job: ModelJob, model, outcome, logits: dict, dense: dict | None, history=None):
        """One job computed together, through the model-job protocol; `logits`: split -> its logits;
        `history`: a pooled job's per-epoch metrics."""
        from pie_mlops.compare.predictions import predictions_frame

        def make(run, _model, staging) -> Made:
            if history is not None:
                run.log_history(history)  # every epoch's metrics, in one request
            frames = {split: predictions_frame(self.splits[split], each, split=split, group=job.group, seed=job.seed,
                                               task=self.meta["task"], threshold=outcome.threshold)
                      for split, each in logits.items()}
            with self.ctx.compute():
                return pruned_made(run, model, staging, outcome, frames, dense)

        return lambda: track_pruned(job, make, self.ctx, self.meta, self.splits)


def _share_embedding(model, first) -> None:
    """One frozen GloVe matrix (80 MB) for all the group's models instead of one each."""
    from pie_mlops.models.bilstm import GLOVE

    if model is not first and model.embedding_source == first.embedding_source == GLOVE:
        model.embedding = first.embedding


def pruned_dir(params: dict, arch: str) -> Path:
    """Where the pruned groups' predictions go: predictions/<dataset>/<arch>/pruned/."""
    return Path(params["predictions_dir"]) / params["dataset"] / arch / "pruned"


def pruned_made(run, model, staging: Path, outcome, frames: dict, dense: dict | None) -> Made:
    """What a pruned job made, once computed: its save (a delta for `os`), size and accounting."""
    outcome.accounting["size_mb"], outcome.accounting["model_mb"] = _saved_size_mb(model, staging / "saved", dense)
    run.set_tags({"achieved_sparsity": f"{outcome.accounting['achieved_sparsity']:.6f}"})
    return Made(model, frames, threshold=outcome.threshold, saved=staging / "saved",
                metrics={k: v for k, v in outcome.accounting.items() if isinstance(v, (int, float))},
                documents={"pruning.json": outcome.accounting})


def track_pruned(job: ModelJob, make, ctx: JobContext, meta: dict, splits: dict, start=None) -> dict:
    """One pruned (group, seed) through the model-job protocol (pie_mlops/jobs/protocol.py), then its line."""
    record, made = run_job(job, make, ctx, task=meta["task"], label_names=meta["label_names"],
                           examples=splits["test"], start=start)
    acc = made.documents["pruning.json"]
    _LOG.info(f"{job.model_name} v{record['version']} ({job.group}-s{job.seed}): sparsity {acc['achieved_sparsity']:.4f}, "
              + (f"validation {record['validation_score']:.4f}, " if "validation_score" in record else "")
              + (f"test {record['test_score']:.4f}, " if "test_score" in record else "")
              + f"{acc['latency_ms']:.1f} ms/batch")
    return {"group": job.group, "seed": job.seed, "status": "pruned", **record,
            "achieved_sparsity": acc["achieved_sparsity"]}


def _saved_size_mb(model, path: Path, dense: dict | None = None) -> tuple[float, float]:
    """(size on disk of the model's safetensors save: unstructured zeros packed (models/sparse.py)
    and, for `os`, stored as a delta against the registered dense version it was cut from
    (models/delta.py), when that rebuilds it bit-identically; `model_mb`: the weights file alone
    before any delta, the deployable size compared with quantized versions' (docs/quantization.md))."""
    from pie_mlops.models.common import WEIGHTS_NAME
    from pie_mlops.models.sparse import write_delta

    model.save(path)
    standalone = (path / WEIGHTS_NAME).stat().st_size / 2**20
    if dense and dense.get("ref"):
        write_delta(path / WEIGHTS_NAME, dense["state"], dense["ref"])
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 2**20, standalone


def load_dense(name: str, seed: int, dst: Path, mv=None) -> dict:
    """The registered dense model of `seed` ({model, state, ref}): the model, its weights as
    stored and a reference to them, which an `os` version's delta names as its base."""
    from pie_mlops import tracking
    from pie_mlops.models import load_model
    from pie_mlops.models.common import WEIGHTS_NAME
    from pie_mlops.models.sparse import load_weights

    saved, ref = tracking.version_files(name, f"dense-s{seed}", dst, mv)
    return {"model": load_model(saved), "ref": ref, "state": load_weights(saved / WEIGHTS_NAME)}
