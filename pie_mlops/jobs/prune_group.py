"""Stage `prune`'s pruned jobs: a job's save, size and tracking (`pruned_made`, `track_pruned`), the
registered dense model it starts from (`load_dense`), and jobs computed together: seed-parallel
(prune.seed_parallel), a BiLSTM group's seeds pruned and predicted together, or pooled.

For each pruned group (`os`, unstructured, no recovery), the unfinished seeds' dense models are
copied and pruned one by one: masks are per-seed tensor math and cost milliseconds. The S pruned
models are then stacked (models/bilstm_stack.py), and each predicted split is one pass over the
data for all of them. Only then does each seed go through the same per-seed path as a sequential
job (`track_pruned`, the model-job protocol): its own run, prediction files, logged model (a delta
against its dense version) and version, with the same tags.

No run exists while a group computes, so a crash or a kill there leaves nothing behind for it;
one during tracking leaves the finished seeds registered and the rest to a rerun, which
computes only those, together again (the same rules as seed-parallel training).
"""

from __future__ import annotations

import copy
import tempfile
from pathlib import Path

from pie_mlops.jobs.context import JobContext
from pie_mlops.jobs.protocol import Made, ModelJob, run_job
from pie_mlops.pruning.plan import latency_batch
from pie_mlops.jobs.writer import TrackWriter
from pie_mlops.util.log import get as get_logger

_LOG = get_logger(__name__)


def prune_groups(pending: dict[str, list[ModelJob]], meta: dict, splits: dict, progress: bool,
                 ctx: JobContext, versions: dict, writer: TrackWriter | None = None) -> list:
    """Prune the jobs in `pending` (group -> its unfinished seeds' jobs) group by group, each
    group's seeds together; one record per job (its Future when the `writer` tracks it while the
    next group computes)."""
    from tqdm.auto import tqdm

    from pie_mlops.util.log import progress_disabled

    name = next(iter(pending.values()))[0].model_name
    seeds = sorted({job.seed for jobs in pending.values() for job in jobs})
    dense = {}
    with ctx.compute(), tempfile.TemporaryDirectory(prefix="pie-dense-") as tmp:
        for seed in seeds:  # every seed's dense model, loaded once for all groups
            dense[seed] = load_dense(name, seed, Path(tmp) / f"s{seed}", versions[seed])
            _share_embedding(dense[seed]["model"], dense[seeds[0]]["model"])
    records = []
    for jobs in tqdm(pending.values(), desc="prune groups (seed-parallel)", disable=progress_disabled(progress)):
        records += _prune_group(jobs, meta, splits, ctx, dense, writer)
    return records


def _share_embedding(model, first) -> None:
    """One frozen GloVe matrix (80 MB) for all the group's models instead of one each."""
    from pie_mlops.models.bilstm import GLOVE

    if model is not first and model.embedding_source == first.embedding_source == GLOVE:
        model.embedding = first.embedding


def _prune_group(jobs: list[ModelJob], meta: dict, splits: dict, ctx: JobContext, dense: dict,
                 writer: TrackWriter | None) -> list:
    from pie_mlops.models.bilstm_stack import StackedBiLSTM
    from pie_mlops.compare.predictions import predictions_frame
    from pie_mlops.pruning.apply import prune_model
    from pie_mlops.pruning.plan import predicted_splits
    from pie_mlops.jobs.seed_training import predict_logits_stacked

    task = meta["task"]
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

    records = []
    for i, job in enumerate(jobs):
        def make(run, _model, staging, i=i, job=job) -> Made:
            frames = {split: predictions_frame(splits[split], logits[split][i], split=split, group=job.group,
                                               seed=job.seed, task=task, threshold=outcomes[i].threshold)
                      for split in logits}
            with ctx.compute():
                return pruned_made(run, models[i], staging, outcomes[i], frames, dense[job.seed])

        records.append(_submit(writer, job, make, ctx, meta, splits))
    return records


def prune_pooled(jobs: list[ModelJob], meta: dict, splits: dict, progress: bool, ctx: JobContext,
                 versions: dict, processes: int, writer: TrackWriter | None = None) -> list:
    """prune.seed_processes: the jobs `processes` at a time in child processes (pie_mlops/jobs/seed_pool.py),
    each computing what it computes in process; each is tracked here as soon as it is back. CPU
    latency is timed here, on this process's threads, as for a job pruned in process."""
    from tqdm.auto import tqdm

    from pie_mlops.config.fidelity import model_kwargs
    from pie_mlops.util.log import progress_disabled
    from pie_mlops.compare.predictions import predictions_frame
    from pie_mlops.pruning.apply import cpu_latency_ms
    from pie_mlops.pruning.plan import predicted_splits
    from pie_mlops.jobs.seed_pool import PruneTask, compute_seeds, prune_seed

    name, task = jobs[0].model_name, meta["task"]
    dense, first = {}, None
    with ctx.compute(), tempfile.TemporaryDirectory(prefix="pie-dense-") as tmp:
        for seed in sorted({job.seed for job in jobs if job.plan["schedule"] == "os"}):
            dense[seed] = load_dense(name, seed, Path(tmp) / f"s{seed}", versions[seed])
            first = first or dense[seed]["model"]
            _share_embedding(dense[seed]["model"], first)

    def build(job: ModelJob) -> dict:
        return dict(arch=job.plan["arch"], num_labels=len(meta["label_names"]), task=task, seed=job.seed,
                    model_path=job.plan["model_path"] if job.plan["arch"] == "bert" else None,
                    **model_kwargs(job.plan["arch"], job.plan, "prune"))

    tasks = [PruneTask(build(job), job.plan, job.seed, dense[job.seed]["model"] if job.seed in dense and
                       job.plan["schedule"] == "os" else None, splits, predicted_splits(job.plan)) for job in jobs]
    records = []
    outputs = compute_seeds(tasks, processes, prune_seed)
    try:
        for job, out in tqdm(zip(jobs, outputs), total=len(jobs), desc=f"prune ({processes} processes)",
                             disable=progress_disabled(progress)):
            if first is not None:
                _share_embedding(out.model, first)
            batch = splits["test"].head(latency_batch(job.plan))
            out.outcome.accounting["latency_ms"] = cpu_latency_ms(out.model, batch)

            def make(run, _model, staging, job=job, out=out) -> Made:
                run.log_history(out.history)  # every epoch's metrics, in one request
                frames = {split: predictions_frame(splits[split], logits, split=split, group=job.group, seed=job.seed,
                                                   task=task, threshold=out.outcome.threshold)
                          for split, logits in out.logits.items()}
                with ctx.compute():
                    return pruned_made(run, out.model, staging, out.outcome, frames,
                                       dense.get(job.seed) if job.plan["schedule"] == "os" else None)

            records.append(_submit(writer, job, make, ctx, meta, splits))
    finally:
        outputs.close()  # ends the children, also when tracking failed
    return records


def _submit(writer: TrackWriter | None, *args):
    """`_track(*args)` by the writer (its Future), or here when there is none."""
    return writer.submit(_track, *args) if writer is not None else _track(*args)


def _track(job: ModelJob, make, ctx: JobContext, meta: dict, splits: dict) -> dict:
    """Registered under the per-(model, group, seed) claim, like a job pruned in process: a duplicate
    command that pruned the same job meanwhile finds it finished and defers."""
    from pie_mlops import tracking
    from pie_mlops.jobs.protocol import finished

    with tracking.model_claim(job.model_name, job.group, job.seed):
        found = finished(job, ctx)
        if found:
            return {"group": job.group, "seed": job.seed, "status": "skipped", "run_id": found}
        return track_pruned(job, make, ctx, meta, splits)


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
