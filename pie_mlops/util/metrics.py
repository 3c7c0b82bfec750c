"""Metrics and the multi-label decision threshold: pure numpy."""

from __future__ import annotations

import numpy as np

THRESHOLDS = np.round(np.arange(0.05, 0.951, 0.05), 2)


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def accuracy(y: np.ndarray, pred: np.ndarray) -> float:
    return float(np.mean(np.asarray(y) == np.asarray(pred))) if len(y) else float("nan")


def macro_f1(y: np.ndarray, pred: np.ndarray) -> float:
    """Macro-F1 over labels of multi-hot arrays (n, k); a label never present nor predicted scores 1."""
    y, pred = np.asarray(y, bool), np.asarray(pred, bool)
    tp = (y & pred).sum(0)
    denom = y.sum(0) + pred.sum(0)
    f1 = np.where(denom > 0, 2 * tp / np.maximum(denom, 1), 1.0)
    return float(f1.mean())


def tune_threshold(y: np.ndarray, probs: np.ndarray, grid: np.ndarray = THRESHOLDS) -> float:
    """The one threshold (per model) that maximises macro-F1 on the data given.

    Call it with VALIDATION labels and probabilities only: tuning on test, as the
    reference code did, leaks the test set into the model. Ties go to the value nearest 0.5.
    """
    scores = np.array([macro_f1(y, probs >= t) for t in grid])
    best = np.flatnonzero(scores == scores.max())
    return float(grid[best[np.argmin(np.abs(grid[best] - 0.5))]])
