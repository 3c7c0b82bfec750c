"""One seed for every random stream a model draws from: Python, NumPy, torch (and CUDA).

Its own module so that building a model (pie_mlops/models) seeds it without importing the
training loop."""

from __future__ import annotations

import random

import numpy as np
import torch


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)  # also seeds every CUDA device
    if torch.cuda.is_available():
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = True, False
