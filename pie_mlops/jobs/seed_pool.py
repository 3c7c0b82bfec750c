"""Seeds side by side in worker processes (train/prune.seed_processes): the compute of a dense or
pruned seed, without MLflow, in a child process; the parent tracks each as its result comes back.

Why processes: on a 2-core CPU one BiLSTM gains little from a second intra-op thread (its LSTM
steps are small; 1.3x idle, and several times slower once other work wants a core), so one
model keeps one core busy. Two seeds in two
processes, one thread each, train at about twice the rate (docs/seed-parallel.md). Threads would
do the same, but dropout draws from torch's one global generator, so two models in one process
would make each other's masks depend on timing; each process has its own, seeded by its seed as
`training.train` seeds it, so a seed computes what it computes alone on one thread.

Pickle travels only between this process and its own children (the task in, the weights and
logits out, as bytes: copies, never shared storage), never from a store.
"""

from __future__ import annotations

import os
import pickle
import sys
from dataclasses import dataclass, field

import numpy as np


@dataclass
class SeedTask:
    """One model job to compute in a child, dense or pruned: its model (`start`, sent pickled: a
    pruned os job's dense model; else built from `build`, the seed's own initialisation), trained
    (`cfg`: a dense seed) or pruned (`plan`: a pruned job), then the `predict` splits predicted."""

    build: dict                    # build_model's arguments: arch, num_labels, task, seed, model kwargs
    splits: dict                   # train, validation, test DataFrames
    predict: tuple[str, ...]       # the splits to predict after training
    cfg: object = None             # a dense seed: training.TrainConfig (progress off)
    plan: dict | None = None       # a pruned job: its plan (pruning.apply.prune_model)
    start: object = None           # a pruned os job: the dense model it is cut from


@dataclass
class SeedOutput:
    logits: dict                   # split -> [n, labels]
    state: dict | None = None      # dense: the trained weights (frozen ones left out: rebuilt from the seed)
    result: object = None          # dense: training.TrainResult
    model: object = None           # pruned: the model (a BiLSTM pickles without its packaged GloVe)
    outcome: object = None         # pruned: pruning.apply.Outcome
    history: list = field(default_factory=list)  # pruned: per-epoch metrics of a schedule that trains


def _init_worker(threads: int) -> None:
    """A child's start: its intra-op threads, and death with its parent (a SIGKILLed stage leaves
    no orphan computing on)."""
    import torch

    torch.set_num_threads(threads)
    if sys.platform.startswith("linux"):
        import ctypes
        import signal

        try:
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        except OSError:
            pass  # no glibc: the child then ends when its pipe to the parent breaks


def compute_seed(task: SeedTask) -> SeedOutput:
    """Compute one job as the stage computes it in process: a dense seed built, trained and
    predicted (`training.train`, `predict_logits`), or a pruned job pruned and predicted."""
    from pie_mlops.jobs.training import predict_logits, train
    from pie_mlops.models import build_model
    from pie_mlops.pruning.apply import prune_model

    model = task.start if task.start is not None else build_model(**task.build)
    out, batch = SeedOutput({}), ()  # batch: predict_logits' batch size (a pruned job: its default)
    if task.plan is None:
        out.result = done = train(model, task.splits["train"], task.splits["validation"], task.cfg)
        batch = (task.cfg.eval_batch_size,)
        frozen = {name for name, p in model.named_parameters() if not p.requires_grad}
        out.state = {k: v for k, v in model.state_dict().items() if k not in frozen}
    else:
        out.outcome = done = prune_model(model, task.plan, task.build["seed"], task.splits, task=task.build["task"],
                                         progress=False, on_epoch_end=lambda epoch, metrics:
                                         out.history.append(dict(metrics, epoch=epoch)))
        out.model = model
    out.logits = {split: np.asarray(done.val_logits if split == "validation" and done.val_logits is not None
                                    else predict_logits(model, task.splits[split], *batch))
                  for split in task.predict}
    return out


def threads_per_process(processes: int) -> int:
    return max(1, (os.cpu_count() or 1) // max(1, processes))


def _call(blob: bytes) -> bytes:
    """`compute_seed` on a task sent as plain pickle bytes. Handed to the pool as objects, tensors would go
    through torch's multiprocessing reducers, which *share* their storage: a child pruning its
    start model in place would prune the parent's dense model, and the next task's copy too."""
    return pickle.dumps(compute_seed(pickle.loads(blob)), protocol=pickle.HIGHEST_PROTOCOL)


def compute_seeds(tasks: list[SeedTask], processes: int):
    """Yield `compute_seed(task)` for each task in the order of `tasks`, computed `processes` at a time in
    spawned children; the pool is shut down (children ended) when the generator closes."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    pool = ProcessPoolExecutor(processes, mp_context=multiprocessing.get_context("spawn"),
                               initializer=_init_worker, initargs=(threads_per_process(processes),))
    try:
        futures = [pool.submit(_call, pickle.dumps(task)) for task in tasks]
        for future in futures:
            yield pickle.loads(future.result())
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
