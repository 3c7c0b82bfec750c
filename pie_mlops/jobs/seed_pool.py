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
    """One dense seed to compute: what `build_model` and `training.train` need, and the splits."""

    arch: str
    n_labels: int
    task: str
    seed: int
    model_kwargs: dict
    cfg: object                    # training.TrainConfig (progress off)
    splits: dict                   # train, validation, test DataFrames
    predict: tuple[str, ...]       # the splits to predict after training


@dataclass
class SeedOutput:
    seed: int
    state: dict                    # the trained weights (frozen ones left out: rebuilt from the seed)
    result: object                 # training.TrainResult
    logits: dict = field(default_factory=dict)  # split -> [n, labels]


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
    """Build, train and predict one seed, as `training.train` and `predict_logits` do alone."""
    from pie_mlops.models import build_model
    from pie_mlops.jobs.training import predict_logits, train

    model = build_model(task.arch, task.n_labels, task.task, seed=task.seed, **task.model_kwargs)
    result = train(model, task.splits["train"], task.splits["validation"], task.cfg)
    logits = {split: result.val_logits if split == "validation" and result.val_logits is not None
              else predict_logits(model, task.splits[split], task.cfg.eval_batch_size)
              for split in task.predict}
    frozen = {name for name, p in model.named_parameters() if not p.requires_grad}
    state = {k: v for k, v in model.state_dict().items() if k not in frozen}
    return SeedOutput(task.seed, state, result, {k: np.asarray(v) for k, v in logits.items()})


def threads_per_process(processes: int) -> int:
    return max(1, (os.cpu_count() or 1) // max(1, processes))


@dataclass
class PruneTask:
    """One pruned (group, seed) to compute: `start` (os: the dense model, sent pickled; else None:
    built from the seed, the dense initialisation) pruned as `plan` says, then predicted."""

    build: dict                    # build_model's arguments: arch, num_labels, task, seed, model kwargs
    plan: dict
    seed: int
    start: object
    splits: dict
    predict: tuple[str, ...]


@dataclass
class PrunedOutput:
    model: object                  # the pruned model (a BiLSTM pickles without its packaged GloVe)
    outcome: object                # pruning.apply.Outcome
    logits: dict
    history: list = field(default_factory=list)  # per-epoch metrics of a schedule that trains


def prune_seed(task: PruneTask) -> PrunedOutput:
    """Prune and predict one (group, seed), as the prune stage does it in process."""
    from pie_mlops.models import build_model
    from pie_mlops.pruning.apply import prune_model
    from pie_mlops.jobs.training import predict_logits

    model = task.start if task.start is not None else build_model(**task.build)
    history = []
    outcome = prune_model(model, task.plan, task.seed, task.splits, task=task.build["task"], progress=False,
                          on_epoch_end=lambda epoch, metrics: history.append(dict(metrics, epoch=epoch)))
    logits = {split: outcome.val_logits if split == "validation" and outcome.val_logits is not None
              else predict_logits(model, task.splits[split]) for split in task.predict}
    return PrunedOutput(model, outcome, {k: np.asarray(v) for k, v in logits.items()}, history)


def _call(fn, blob: bytes) -> bytes:
    """`fn` on a task sent as plain pickle bytes. Handed to the pool as objects, tensors would go
    through torch's multiprocessing reducers, which *share* their storage: a child pruning its
    start model in place would prune the parent's dense model, and the next task's copy too."""
    return pickle.dumps(fn(pickle.loads(blob)), protocol=pickle.HIGHEST_PROTOCOL)


def compute_seeds(tasks: list, processes: int, fn=compute_seed):
    """Yield `fn(task)` for each task in the order of `tasks`, computed `processes` at a time in
    spawned children; the pool is shut down (children ended) when the generator closes."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    pool = ProcessPoolExecutor(processes, mp_context=multiprocessing.get_context("spawn"),
                               initializer=_init_worker, initargs=(threads_per_process(processes),))
    try:
        futures = [pool.submit(_call, fn, pickle.dumps(task)) for task in tasks]
        for future in futures:
            yield pickle.loads(future.result())
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
