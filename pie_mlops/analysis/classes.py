"""Which classes PIEs come from, and per-class accuracy of the dense and pruned groups.

Single-label only: multi-label classes are not mutually exclusive, so a class distribution
and its chi-square test are not defined the same way.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats as _st


def _labels(labels: np.ndarray, n_classes: int | None) -> tuple[np.ndarray, int]:
    y = np.asarray(labels)
    if y.ndim != 1:
        raise ValueError("single-label class indices (n,) expected; multi-label is not supported here")
    if len(y) and y.min() < 0:
        raise ValueError("labels must be non-negative class indices")
    k = int(y.max()) + 1 if len(y) else 0
    if n_classes is not None:
        if k > n_classes:
            raise ValueError(f"label {k - 1} out of range for n_classes={n_classes}")
        k = n_classes
    return y.astype(np.int64), k


def class_distribution_test(labels: np.ndarray, is_pie: np.ndarray, n_classes: int | None = None,
                            method: str = "contingency") -> dict:
    """Is the PIEs' class distribution different from the data's? Chi-square, no continuity correction.

    method="contingency" (default): `scipy.stats.chi2_contingency` on the 2 × K table
        [PIE counts; non-PIE counts]. PIEs are a subset of the data, so comparing PIEs with
        the disjoint non-PIEs is the test whose null (class independent of PIE status) is
        well posed; Yates' correction is off so 2 and K classes are treated alike.
    method="goodness": `scipy.stats.chisquare` of PIE counts against n_pies × the data's
        class shares (the literal "PIE vs data distribution" comparison).
    Zero-count classes: a class with NO examples has expected count 0 in both tests and
    cannot hold PIEs, so it is dropped (listed in `dropped`); a class with examples but no
    PIEs stays in (observed 0 is valid). `min_expected` < 5 flags an unreliable
    approximation. With no PIEs, fewer than two classes left, or all examples PIEs
    (contingency), stat and p are NaN.
    Returns a dict: table (per class: n, data_share, n_pies, pie_share = share of the PIEs,
    pie_rate = share of the class that are PIEs), stat, p_value, dof, method, dropped,
    min_expected.
    """
    if method not in ("contingency", "goodness"):
        raise ValueError("method must be 'contingency' or 'goodness'")
    y, k = _labels(labels, n_classes)
    pie = np.asarray(is_pie, dtype=bool)
    if pie.shape != y.shape:
        raise ValueError("labels and is_pie must have the same length")
    n_all = np.bincount(y, minlength=k)
    n_pie = np.bincount(y[pie], minlength=k)
    n = len(y)
    total_pies = int(n_pie.sum())
    table = pd.DataFrame({
        "class": np.arange(k), "n": n_all, "data_share": n_all / n if n else np.nan,
        "n_pies": n_pie, "pie_share": n_pie / total_pies if total_pies else np.nan,
        "pie_rate": np.divide(n_pie, n_all, out=np.full(k, np.nan), where=n_all > 0)})
    keep = n_all > 0
    out = {"table": table, "method": method, "dropped": [int(c) for c in np.flatnonzero(~keep)],
           "stat": float("nan"), "p_value": float("nan"), "dof": 0, "min_expected": float("nan")}
    if keep.sum() < 2 or total_pies == 0:
        return out
    if method == "goodness":
        expected = total_pies * n_all[keep] / n
        res = _st.chisquare(n_pie[keep], f_exp=expected)
        out.update(stat=float(res.statistic), p_value=float(res.pvalue), dof=int(keep.sum()) - 1,
                   min_expected=float(expected.min()))
    else:
        obs = np.vstack([n_pie[keep], n_all[keep] - n_pie[keep]])
        if obs[1].sum() == 0:  # every example a PIE: the non-PIE row is all zero
            return out
        res = _st.chi2_contingency(obs, correction=False)
        out.update(stat=float(res.statistic), p_value=float(res.pvalue), dof=int(res.dof),
                   min_expected=float(res.expected_freq.min()))
    return out


def _acc_by_class(correct: np.ndarray, onehot: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and std over models of each model's per-class accuracy; NaN for empty classes."""
    counts = onehot.sum(axis=0)
    hits = correct.astype(float) @ onehot                   # (n_models, K) correct per class
    with np.errstate(invalid="ignore", divide="ignore"):
        acc = hits / counts
    acc[:, counts == 0] = np.nan
    if acc.shape[0] == 0:
        return np.full(acc.shape[1], np.nan), np.full(acc.shape[1], np.nan)
    # ddof=0: the spread of the models we have, not an estimate for unseen seeds.
    return acc.mean(axis=0), acc.std(axis=0)


def per_class_accuracy(labels: np.ndarray, dense_preds: np.ndarray, pruned_preds: np.ndarray,
                       is_pie: np.ndarray | None = None, n_classes: int | None = None) -> pd.DataFrame:
    """Per class: accuracy of each dense and each pruned model, mean (and std) over models.

    dense_preds (n_dense, n) and pruned_preds (n_pruned, n) are per-model predicted classes.
    Columns: class, n, dense_acc, dense_acc_std, pruned_acc, pruned_acc_std, delta (pruned −
    dense). With `is_pie`, also n_pies, dense_acc_pie, pruned_acc_pie (same means over
    models, on the class's PIEs only; NaN where a class has none).
    """
    y, k = _labels(labels, n_classes)
    dp = np.atleast_2d(np.asarray(dense_preds))
    pp = np.atleast_2d(np.asarray(pruned_preds))
    if dp.shape[1] != len(y) or pp.shape[1] != len(y):
        raise ValueError("predictions must be (n_models, n) with n = len(labels)")
    k = max(k, int(max(dp.max(initial=-1), pp.max(initial=-1))) + 1) if n_classes is None else k
    onehot = np.eye(k)[y]                                     # (n, K)
    d_mean, d_std = _acc_by_class(dp == y, onehot)
    p_mean, p_std = _acc_by_class(pp == y, onehot)
    out = pd.DataFrame({"class": np.arange(k), "n": onehot.sum(0).astype(np.int64),
                        "dense_acc": d_mean, "dense_acc_std": d_std,
                        "pruned_acc": p_mean, "pruned_acc_std": p_std, "delta": p_mean - d_mean})
    if is_pie is not None:
        pie = np.asarray(is_pie, dtype=bool)
        if pie.shape != y.shape:
            raise ValueError("is_pie must have the same length as labels")
        on_pie = onehot * pie[:, None]
        out["n_pies"] = on_pie.sum(0).astype(np.int64)
        out["dense_acc_pie"] = _acc_by_class(dp == y, on_pie)[0]
        out["pruned_acc_pie"] = _acc_by_class(pp == y, on_pie)[0]
    return out


def per_label_f1(labels: np.ndarray, preds: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Multi-label: (mean, std) over models of each model's F1 on each label, (C,) each.

    labels (n, C) multi-hot, preds (n_models, n, C) 0/1. F1 rather than accuracy: a rare
    label is absent from most examples, so "predict it never" scores a high accuracy and
    hides exactly the per-class damage being measured. A label neither present nor
    predicted scores 1 (nothing to get wrong), as in metrics.macro_f1."""
    y = np.asarray(labels).astype(bool)[None]
    p = np.asarray(preds).astype(bool)
    if p.ndim != 3 or p.shape[1:] != y.shape[1:]:
        raise ValueError(f"preds must be (n_models, {y.shape[1]}, {y.shape[2]}), got {p.shape}")
    tp = (y & p).sum(axis=1)
    denom = y.sum(axis=1) + p.sum(axis=1)
    f1 = np.where(denom > 0, 2 * tp / np.maximum(denom, 1), 1.0)          # (n_models, C)
    return f1.mean(axis=0), f1.std(axis=0)


def cramers_v(labels: np.ndarray, is_pie: np.ndarray, n_classes: int | None = None, n_boot: int = 1000,
              seed: int = 0) -> dict:
    """(d1): Cramér's V of the 2 x K table PIE x class, sqrt(chi2 / n) (min(2, K) - 1 = 1), with an
    example-bootstrap 95% CI (PIE flags fixed). 0: PIEs spread over the classes in proportion to
    them; 1: each class all PIEs or none. None without PIEs or with fewer than two classes."""
    y, k = _labels(labels, n_classes)
    pie = np.asarray(is_pie, dtype=bool)
    n = len(y)
    out = {"value": None, "ci": [None, None], "n_boot": int(n_boot)}
    if n == 0 or not pie.any() or pie.all() or len(np.unique(y)) < 2:
        return out
    onehot = np.eye(k)[y]
    rng = np.random.default_rng(seed)
    w = np.vstack([np.ones(n), rng.multinomial(n, np.full(n, 1.0 / n), size=n_boot)]).astype(np.float64)
    col = w @ onehot                                  # (B, K) examples per class
    top = w @ (onehot * pie[:, None])                 # (B, K) PIEs per class
    obs = np.stack([top, col - top], axis=1)          # (B, 2, K)
    total = obs.sum(axis=(1, 2))[:, None, None]
    expected = obs.sum(axis=2, keepdims=True) * obs.sum(axis=1, keepdims=True) / total
    with np.errstate(invalid="ignore", divide="ignore"):
        chi2 = np.where(expected > 0, (obs - expected) ** 2 / expected, 0.0).sum(axis=(1, 2))
    v = np.sqrt(chi2 / total[:, 0, 0])
    lo, hi = np.quantile(v[1:], [0.025, 0.975])
    out.update(value=float(v[0]), ci=[float(lo), float(hi)])
    return out
