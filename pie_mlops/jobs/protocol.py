"""One model job: the protocol every trained and pruned model goes through, in one place.

A job is one (registered model, group, seed): dense seeds from `train` (one at a time or
seed-parallel) and pruned ones from `prune` (in a stage or a worker's lane). The stages compute;
this module does the rest, the same way for all of them:

- `identity_tags`: the tags that identify the job's run (skip-on-rerun);
- `finished`: a FINISHED run with those tags, whose predictions are put back in place;
- `run_job`: staging directory -> run -> compute (the stage's `make`) -> prediction files ->
  logged predictions (one file, every split: compare/predictions.py's BUNDLE) -> logged model (before the final metrics: MLflow 3's log_model reads the
  metric history back) -> final metrics -> registered version under the job's alias -> the
  predictions moved into place. Anything that fails undoes the run and the version
  (tracking.model_run) and removes the staging directory: nothing half-registered or
  half-written, ever.

The orchestrator (orchestrate.py) holds `tracking.model_claim` around `finished` and `run_job`,
so two processes never make the same (model, group, seed) on a SQLite store. Both take the job's context
(pie_mlops/jobs/context.py): a worker's tags, compute slot and snapshot of finished runs.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from pie_mlops.util.atomic import staging_dir
from pie_mlops.jobs.context import JobContext
from pie_mlops.compare.predictions import BUNDLE, publish_predictions, split_score, write_bundle


@dataclass
class ModelJob:
    """One (registered model, group, seed) to make."""

    plan: dict              # the run's logged params (dataset, arch, hyperparameters, ...)
    group: str              # dense, or <criterion>-<schedule>@<sparsity>
    seed: int
    tags: dict              # identity_tags(...)
    out_dir: Path           # predictions/<dataset>/<arch>/<dense|pruned/<group>>/s<seed>/
    model_name: str         # pie-<dataset>-<arch>
    alias: str              # dense-s0, magnitude-ft-0_50-s0
    data_dir: str           # where its dataset lives: the run's dataset inputs are read from there

    @property
    def run_name(self) -> str:
        return f"{self.plan['dataset']}-{self.plan['arch']}-{self.group}-s{self.seed}"


@dataclass
class Made:
    """What a job's computation produced: the model and its prediction frames, plus extras."""

    model: Any
    frames: dict            # split (or train@epoch<k>) -> predictions frame
    threshold: float | None = None
    metrics: dict = field(default_factory=dict)    # scalars beside the <split>_score ones
    documents: dict = field(default_factory=dict)  # artifact file -> dict, logged as JSON
    saved: Path | None = None                      # the model's safetensors save, if made already
    step: int = 0                                  # the final metrics' step (train: its epochs)


def identity_tags(stage: str, plan: dict, group: str, seed: int, *, data_md5: str, git_sha: str,
                  fingerprint: str, **extra) -> dict:
    """The tags a job's run is found by: what was made (stage, dataset, arch, group, seed and the
    stage's `extra`), from what (data md5, params hash) and by which code (fingerprint)."""
    from pie_mlops import tracking

    return {"stage": stage, "dataset": plan["dataset"], "arch": plan["arch"], "group": group, **extra,
            "seed": seed, "data_md5": data_md5, "git_sha": git_sha, "params_hash": tracking.params_hash(plan),
            "code_fingerprint": fingerprint}


def finished(job: ModelJob, ctx: JobContext) -> str | None:
    """The id of the job's FINISHED run, with its predictions restored in place; else None."""
    from pie_mlops import tracking
    from pie_mlops.tracking.restore import restore_predictions

    found = tracking.find_finished_run({k: str(v) for k, v in job.tags.items()}, snapshot=ctx.finished)
    if found:
        restore_predictions(found, job.out_dir)
    return found


def run_job(job: ModelJob, make: Callable[..., Made], ctx: JobContext, *, task: str, label_names: list, examples,
            start: Callable[[Path], Any] | None = None) -> tuple[dict, Made]:
    """Make one job: `start(staging)` builds the model before any run exists (a model that does
    not load makes no run), then `make(run, model, staging)` computes inside the run. Returns
    ({run_id, version, <split>_score..., threshold?}, what `make` made)."""
    from pie_mlops import tracking
    from pie_mlops.compare.predictions import write_predictions

    job.out_dir.parent.mkdir(parents=True, exist_ok=True)
    # Predictions are staged beside their final place and moved in only once the version is
    # registered, so predictions/ never holds the output of a failed run.
    staging = staging_dir(job.out_dir)  # sweeps what a killed earlier run left there
    try:
        model = None
        if start is not None:
            with ctx.compute():  # a worker's compute slot; else just timing
                model = start(staging)
        with tracking.model_run(job.run_name, job.tags, {**job.plan, "seed": job.seed, "group": job.group},
                                job_tags=ctx.tags, data_dir=job.data_dir) as run:
            made = make(run, model, staging)
            with ctx.compute():  # tracking below runs outside it, beside the next job's compute
                files = [write_predictions(frame, staging / "out" / f"{split}.parquet")
                         for split, frame in made.frames.items()]
                bundle = write_bundle(files, staging / "bundle" / BUNDLE)  # one upload, not one per split
            run.log_artifacts([bundle], "predictions")
            final = {f"{split}_score": split_score(task, frame) for split, frame in made.frames.items()
                     if "@" not in split}  # train@epoch<k> snapshots are EL2N inputs, not scores
            if made.threshold is not None:
                final["threshold"] = made.threshold
            for name, document in made.documents.items():
                run.log_dict(document, name)
            run.log_model(made.model, saved=made.saved, label_names=label_names, examples=examples,
                          threshold=made.threshold)
            run.log_metrics({**final, **made.metrics}, step=made.step)
            version = run.register(job.model_name, job.alias)
            publish_predictions(staging / "out", job.out_dir)  # last: a failure here still unregisters
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return {"run_id": run.run_id, "version": version, **final}, made
