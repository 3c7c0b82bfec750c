"""What a model's numbers depend on besides its data and code: one seed for every random stream it
draws from (Python, NumPy, torch and CUDA), and the intra-op threads its float sums are split over.

Its own module so that building a model (pie_mlops/models) seeds it without importing the
training loop."""

from __future__ import annotations

import random
from contextlib import contextmanager

import numpy as np
import torch


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)  # also seeds every CUDA device
    if torch.cuda.is_available():
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = True, False


@contextmanager
def intra_op_threads(n: int | None):
    """torch's intra-op threads at `n` while the block runs, then as they were (None: untouched).

    `num_threads` of tune/train/prune: the models a stage computes in its own process. torch's
    default is a thread per core; a BiLSTM's steps are small, and while other work shares the
    CPU every step's second thread waits for a core: 7x slower or worse (docs/budget.md)."""
    if n is None:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(int(n))
    try:
        yield
    finally:
        torch.set_num_threads(before)
