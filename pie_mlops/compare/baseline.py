"""The trivial baseline a model must beat to count as having learned: pure numpy/pandas, no I/O.

A model that predicts the majority class for every example scores the majority share; on
a 67/33 split that looks like a fair 0.67. PIEs and champions computed from such a model
are noise, so the comparison gates on it (pie_mlops/data/prediction_quality.py) and the
train stage warns about it.

- single-label: accuracy, against always predicting the split's most frequent class;
- multi-label: micro-F1, against predicting no label at all (micro-F1 0).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from pie_mlops.compare.pies import model_predictions


def baseline_name(task: str) -> str:
    return "predicting no label (micro-F1)" if task == "multi_label" else "the majority class (accuracy)"


def trivial_baseline(labels, task: str) -> float:
    """The score of the best constant prediction on `labels` ((n,) ints, or (n, C) multi-hot)."""
    if task == "multi_label":
        return 0.0  # predicting nothing has no true positives
    y = np.asarray(labels, dtype=np.int64)
    return float(np.bincount(y).max() / len(y)) if len(y) else float("nan")


def micro_f1(y: np.ndarray, pred: np.ndarray) -> float:
    """Micro-F1 over all (example, label) cells of multi-hot arrays; 0 when nothing is predicted."""
    y, pred = np.asarray(y, bool), np.asarray(pred, bool)
    denom = int(y.sum() + pred.sum())
    return 2.0 * int((y & pred).sum()) / denom if denom else 0.0


def score(labels, preds, task: str) -> float:
    """One model's score on the baseline's scale: accuracy, or micro-F1 for multi-label."""
    if task == "multi_label":
        return micro_f1(np.asarray(labels), np.asarray(preds))
    y = np.asarray(labels, dtype=np.int64)
    return float(np.mean(y == np.asarray(preds, dtype=np.int64))) if len(y) else float("nan")


def frame_scores(frame: pd.DataFrame, task: str, group: str = "dense") -> dict[str, float]:
    """Each model of `group` in a long predictions frame (docs/design.md §3), keyed "dense/s<seed>":
    its score from its own logits. NaN for a model whose logits cannot be scored (ragged or
    non-finite: the other prediction checks name those)."""
    col = "labels" if task == "multi_label" else "label"
    out = {}
    for seed, df in frame[frame["group"] == group].groupby("seed", sort=True):
        key = f"{group}/s{int(seed)}"
        try:
            logits = np.stack(df["logits"].to_numpy()).astype(np.float64)[None]
        except ValueError:  # ragged logits
            out[key] = float("nan")
            continue
        if not np.isfinite(logits).all():
            out[key] = float("nan")
            continue
        thr = None
        if task == "multi_label" and "threshold" in df and df["threshold"].notna().any():
            thr = np.array([float(df["threshold"].dropna().iloc[0])])
        preds = model_predictions(logits, task, thr)[0]
        labels = np.stack(df[col].to_numpy()) if task == "multi_label" else df[col].to_numpy()
        out[key] = score(labels, preds, task)
    return out



def at_baseline(frame: pd.DataFrame, task: str) -> tuple[float, float] | None:
    """(score, baseline) when the one model of a predictions frame (with its `pred` column)
    does no better than the trivial baseline on that frame's examples; None when it does."""
    if task == "multi_label":
        labels, preds = np.stack(frame["labels"].to_numpy()), np.stack(frame["pred"].to_numpy())
    else:
        labels, preds = frame["label"].to_numpy(), frame["pred"].to_numpy()
    got, base = score(labels, preds, task), trivial_baseline(labels, task)
    return (got, base) if got <= base + 1e-12 else None
