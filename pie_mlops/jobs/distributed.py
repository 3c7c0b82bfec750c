"""One training job over several processes: data-parallel (DDP) under `torchrun`.

`torchrun --nproc_per_node N -m pie_mlops.cli train ...` starts N processes with RANK,
WORLD_SIZE and LOCAL_RANK in their environment; `setup()` joins them into one process group
(NCCL with one GPU per local rank when CUDA has enough devices, else Gloo on the CPU).
Without those variables, or with WORLD_SIZE=1, every function here is a no-op (rank 0 of 1)
and training runs exactly as in a single process.

Meaning under DDP (see training.train): every rank draws the same seeded batch order, each
takes a strided share of every *global* batch (batch_size stays the global batch, so the
steps per epoch are unchanged), and the loss is weighted so that DDP's gradient average is
the gradient of the global batch's mean loss. Evaluation and everything tracked or written
happens on rank 0 only; the other ranks train, wait at a barrier and exit 0.
"""

from __future__ import annotations

import os
import sys
from datetime import timedelta

import numpy as np
import torch
from pie_mlops.util.log import get as get_logger

_LOG = get_logger(__name__)

_BACKEND: str | None = None  # set by setup(): "nccl" or "gloo"


def launched() -> bool:
    """True when a launcher (torchrun) started this process as one of several ranks."""
    env = os.environ
    return all(k in env for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK")) and int(env["WORLD_SIZE"]) > 1


def active() -> bool:
    return torch.distributed.is_available() and torch.distributed.is_initialized()


def setup() -> bool:
    """Join the process group if launched by torchrun; True if training is now data-parallel.

    Ranks other than 0 print nothing to stdout from here on (stderr still shows errors), so
    a run's output is said once. PIE_DIST_TIMEOUT_S (default 3600) bounds how long a rank
    waits for the others, e.g. while rank 0 logs and registers a large model.
    """
    global _BACKEND
    if not launched():
        return False
    if active():
        return True
    local, local_world = int(os.environ["LOCAL_RANK"]), int(os.environ.get("LOCAL_WORLD_SIZE", 0))
    use_cuda = torch.cuda.is_available() and torch.cuda.device_count() >= max(local_world, local + 1)
    if torch.cuda.is_available() and not use_cuda and local == 0:
        _LOG.warning(f"{local_world} ranks on this node but {torch.cuda.device_count()} GPU(s): "
                     f"training on the CPU (gloo); start one rank per GPU to train on the GPUs")
    if use_cuda:
        torch.cuda.set_device(local)
    _BACKEND = "nccl" if use_cuda else "gloo"
    torch.distributed.init_process_group(_BACKEND, device_id=torch.device("cuda", local) if use_cuda else None,
                                         timeout=timedelta(seconds=float(os.environ.get("PIE_DIST_TIMEOUT_S", 3600))))
    if rank() != 0:
        sys.stdout = open(os.devnull, "w", encoding="utf-8")  # noqa: SIM115 (for the process's life)
    return True


def rank() -> int:
    return torch.distributed.get_rank() if active() else 0


def world_size() -> int:
    return torch.distributed.get_world_size() if active() else 1


def is_main() -> bool:
    return rank() == 0


def device() -> torch.device:
    """This rank's device: its own GPU under NCCL, else the CPU."""
    if active() and _BACKEND == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def barrier() -> None:
    if active():
        torch.distributed.barrier()


def teardown() -> None:
    global _BACKEND
    if active():
        torch.distributed.destroy_process_group()
    _BACKEND = None


def broadcast(obj):
    """Rank 0's `obj` on every rank (e.g. its decision to skip a finished job)."""
    if not active():
        return obj
    box = [obj]
    torch.distributed.broadcast_object_list(box, src=0)
    return box[0]


def all_sum(values: list[float]) -> list[float]:
    """Elementwise sums over the ranks."""
    if not active():
        return list(values)
    t = torch.tensor(values, dtype=torch.float64, device=device())
    torch.distributed.all_reduce(t)
    return t.cpu().tolist()


def wrap(model: torch.nn.Module) -> torch.nn.Module:
    """`model` in DistributedDataParallel when data-parallel (the module itself otherwise).

    Inputs are already on the rank's device (batch_inputs), so no device_ids: the BiLSTM's
    lengths stay on the CPU as pack_padded_sequence wants. No buffers change in training (no
    BatchNorm), so none are synced before each forward.
    """
    if world_size() == 1:
        return model
    from torch.nn.parallel import DistributedDataParallel

    return DistributedDataParallel(model, forward_sync_buffers=False)


def shard(rows: np.ndarray) -> tuple[np.ndarray, int, float]:
    """This rank's share of one global batch: (rows to run, how many count, loss weight).

    The weight n_rank * world / n_global turns DDP's average of per-rank mean losses into the
    global batch's mean loss, also when shards differ in size. A rank left without rows (a
    last batch smaller than the world) runs one row at weight 0, so it still joins the
    gradient all-reduce.
    """
    world = world_size()
    if world == 1:
        return rows, len(rows), 1.0
    mine = rows[rank()::world]
    if not len(mine):
        return rows[:1], 0, 0.0
    return mine, len(mine), len(mine) * world / len(rows)
