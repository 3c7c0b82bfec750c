"""Stage `prune`, seed-parallel (prune.seed_parallel): a BiLSTM group's seeds pruned and predicted together.

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

from pie_mlops.context import JobContext
from pie_mlops.jobs import Made, ModelJob


def prune_groups(pending: dict[str, list[ModelJob]], meta: dict, splits: dict, progress: bool,
                 ctx: JobContext, versions: dict) -> list[dict]:
    """Prune the jobs in `pending` (group -> its unfinished seeds' jobs) group by group, each
    group's seeds together; one record per job."""
    from tqdm.auto import tqdm

    from pie_mlops.log import progress_disabled
    from pie_mlops.stages.prune import load_dense

    name = next(iter(pending.values()))[0].model_name
    seeds = sorted({job.seed for jobs in pending.values() for job in jobs})
    dense = {}
    with ctx.compute(), tempfile.TemporaryDirectory(prefix="pie-dense-") as tmp:
        for seed in seeds:  # every seed's dense model, loaded once for all groups
            dense[seed] = load_dense(name, seed, Path(tmp) / f"s{seed}", versions[seed])
            _share_embedding(dense[seed]["model"], dense[seeds[0]]["model"])
    records = []
    for jobs in tqdm(pending.values(), desc="prune groups (seed-parallel)", disable=progress_disabled(progress)):
        records += _prune_group(jobs, meta, splits, ctx, dense)
    return records


def _share_embedding(model, first) -> None:
    """One frozen GloVe matrix (80 MB) for all the group's models instead of one each."""
    from pie_mlops.models.bilstm import GLOVE

    if model is not first and model.embedding_source == first.embedding_source == GLOVE:
        model.embedding = first.embedding


def _prune_group(jobs: list[ModelJob], meta: dict, splits: dict, ctx: JobContext, dense: dict) -> list[dict]:
    from pie_mlops import tracking
    from pie_mlops.jobs import finished
    from pie_mlops.models.bilstm_stack import StackedBiLSTM
    from pie_mlops.predictions import predictions_frame
    from pie_mlops.pruning.apply import prune_model
    from pie_mlops.pruning.plan import predicted_splits
    from pie_mlops.seed_training import predict_logits_stacked
    from pie_mlops.stages.prune import pruned_made, track_pruned

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

        # Registered under the per-(model, group, seed) claim, like a sequential job: a duplicate
        # command that pruned the same group meanwhile finds this seed finished and defers.
        with tracking.model_claim(job.model_name, job.group, job.seed):
            found = finished(job, ctx)
            if found:
                records.append({"group": job.group, "seed": job.seed, "status": "skipped", "run_id": found})
                continue
            records.append(track_pruned(job, make, ctx, meta, splits))
    return records
