"""Modal votes, PIE flags and per-group metrics (docs/design.md §3): pure numpy/pandas, no I/O.

A group's models vote per example. Single-label: the class with the most votes wins; a tie
goes, under `tie_rule="probability"` (ours, the default), to the tied class with the highest
mean softmax probability over the group, and if that ties too, to the lowest index; under
`tie_rule="paper"`, to the lowest index (the authors' argmax over vote counts; Hooker et al.
took the highest). Each group counts its ties and the PIEs a tie decided.
Multi-label: each label is on when more than half of the models say so (each model
binarises its sigmoid with its own threshold). A PIE is an example whose dense modal label
differs from the pruned group's; for multi-label, any differing label makes a PIE (union).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from pie_mlops.util.errors import PieError
from pie_mlops.compare.stacking import GroupStack, ModelRows, Stacked, stack_models, stack_split  # noqa: F401  (the core's API)

TASKS = ("single_label", "multi_label")
TIE_RULES = ("probability", "paper")


@dataclass
class Modal:
    """A group's modal labels on one split."""
    label: np.ndarray                 # (n,) int64, or (n, C) int8 for multi_label
    votes: np.ndarray                 # (n,) float64: share of the group's models voting the modal label
    ties: np.ndarray                  # (n,) bool: the vote count alone did not decide


@dataclass
class CompareResult:
    """The comparison of every pruned group with dense on one split."""
    stacked: Stacked
    modal: dict[str, Modal]           # "dense" and each pruned group
    flags: dict[str, np.ndarray]      # pruned group -> (n,) bool PIE flags
    pies: pd.DataFrame                # docs/design.md §3 pies.parquet rows
    summary: dict = field(default_factory=dict)  # pruned group -> summary.json numbers
    noise_floor: dict | None = None   # dense vs dense at matched seeds (analysis.group_stats)
    tie_rule: str = "probability"     # how a tied vote was decided (TIE_RULES)


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * z))  # = 1/(1+exp(-z)), with no overflow warnings


def model_predictions(logits: np.ndarray, task: str = "single_label",
                      thresholds: np.ndarray | None = None) -> np.ndarray:
    """Per-model predictions: (m, n) int64 argmax, or (m, n, C) int8 sigmoid >= threshold."""
    logits = np.asarray(logits)
    if task == "multi_label":
        t = np.full(len(logits), 0.5) if thresholds is None else np.asarray(thresholds, dtype=np.float64)
        return (_sigmoid(logits.astype(np.float64)) >= t[:, None, None]).astype(np.int8)
    if logits.shape[-1] == 2 and not np.isnan(logits).any():
        # Binary: one vector comparison, ~10x faster than numpy's argmax over pairs; the same
        # answer (the first maximum: class 0 on equal logits; a NaN row is left to argmax).
        return np.greater(logits[..., 1], logits[..., 0]).astype(np.int64)
    return logits.argmax(axis=-1).astype(np.int64)


def argmax_classes(scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(argmax, max) over the classes of class-major `scores` (C, n): int64 and scores' dtype.

    The same answer as `scores.argmax(axis=0)` (the first maximum; a NaN counts as the
    maximum), by a loop over the few classes, one vector op over the n examples each: numpy's
    reductions over a handful of values per example cost more than the arithmetic."""
    n = scores.shape[1]
    if np.issubdtype(scores.dtype, np.floating) and np.isnan(scores).any():
        pred = scores.argmax(axis=0).astype(np.int64)
        return pred, scores[pred, np.arange(n)]
    pred = np.zeros(n, np.int64)
    top = scores[0].copy()
    for k in range(1, len(scores)):
        np.copyto(pred, k, where=scores[k] > top)
        np.maximum(top, scores[k], out=top)
    return pred, top


def modal_labels(logits: np.ndarray, task: str = "single_label",
                 thresholds: np.ndarray | None = None, preds: np.ndarray | None = None,
                 tie_rule: str = "probability") -> Modal:
    """Modal label per example over the m models of `logits` (m, n, C), with `tie_rule`
    (docs/design.md §3). `preds`: `model_predictions` of the same logits, when the caller has them."""
    logits = np.asarray(logits)
    m, n, c = logits.shape
    if preds is None:
        preds = model_predictions(logits, task, thresholds)
    if task == "multi_label":
        on = preds.sum(axis=0, dtype=np.int64)                       # (n, C) models voting "on"
        label = (2 * on > m).astype(np.int8)                         # strict majority
        agree = np.where(label == 1, on, m - on) / m
        return Modal(label, agree.mean(axis=1) if c else np.ones(n), (2 * on == m).any(axis=1))
    if 0 < c <= 8:
        # Few classes: vote counts class-major (C, n), each a vector sum over the models.
        counts = np.stack([np.count_nonzero(preds == k, axis=0) for k in range(c)])
        label, top = argmax_classes(counts)
        is_top = (counts == top).T
    else:
        # Vote counts per (example, class) in one bincount: no loop over examples.
        flat = (preds + c * np.arange(n, dtype=np.int64)[None, :]).ravel()
        counts = np.bincount(flat, minlength=n * c).reshape(n, c)
        top = counts.max(axis=1)
        is_top = counts == top[:, None]
        label = counts.argmax(axis=1).astype(np.int64)
    ties = is_top.sum(axis=1) > 1
    if ties.any() and tie_rule == "probability":
        # Only tied examples pay for softmax; argmax picks the lowest index on equal means.
        z = logits[:, ties, :].astype(np.float64)
        p = np.exp(z - z.max(axis=-1, keepdims=True))
        p /= p.sum(axis=-1, keepdims=True)
        mean = np.where(is_top[ties], p.mean(axis=0), -np.inf)
        label[ties] = mean.argmax(axis=1)
    return Modal(label, top / m, ties)


def pie_flags(dense: Modal, pruned: Modal) -> np.ndarray:
    """(n,) bool: the modal labels differ (any label, for multi_label)."""
    diff = dense.label != pruned.label
    return diff.any(axis=1) if diff.ndim == 2 else diff


def per_label_pies(dense: Modal, pruned: Modal) -> np.ndarray:
    """(C,) int64: examples whose modal decision differs on each label (multi_label)."""
    return (dense.label != pruned.label).sum(axis=0).astype(np.int64)


def model_scores(preds: np.ndarray, labels: np.ndarray, task: str, mask: np.ndarray) -> np.ndarray:
    """(m,) each model's accuracy (macro-F1 for multi_label) on the examples in `mask`;
    NaN when the mask is empty."""
    m = len(preds)
    if not mask.any():
        return np.full(m, np.nan)
    if task == "multi_label":
        y = labels[mask].astype(bool)[None]                          # (1, k, C)
        p = preds[:, mask].astype(bool)                              # (m, k, C)
        tp = (y & p).sum(axis=1)
        denom = y.sum(axis=1) + p.sum(axis=1)
        # A label neither present nor predicted scores 1, as in metrics.macro_f1.
        return np.where(denom > 0, 2 * tp / np.maximum(denom, 1), 1.0).mean(axis=1)
    # Integer hit counts over the mask (or over its complement, when that is smaller) divided
    # by its size: the same floats as a mean of the masked hits, without gathering (m, k) ints.
    correct = preds == labels[None, :]
    k = int(np.count_nonzero(mask))
    if 2 * k >= len(mask):
        hits = np.count_nonzero(correct, axis=1) - np.count_nonzero(correct[:, ~mask], axis=1)
    else:
        hits = np.count_nonzero(correct[:, mask], axis=1)
    return hits / k


def _mean_std(scores: np.ndarray) -> tuple[float | None, float | None]:
    if np.isnan(scores).all():
        return None, None
    return float(scores.mean()), float(scores.std())


def group_sparsity(group: str) -> float | None:
    """The target sparsity in a group name (`magnitude-os@0.50` -> 0.5); None for dense."""
    try:
        return float(group.rsplit("@", 1)[1]) if "@" in group else None
    except ValueError:
        return None


def pie_outcomes(dense: Modal, pruned: Modal, labels: np.ndarray, pie: np.ndarray) -> dict:
    """Each PIE is pruned-right (the pruned modal label is gold), dense-right, or both-wrong
    (multi-label: right = the whole label set); counts and shares of the PIEs, as the authors'
    notebooks split them. Plus the PIEs a tied vote decided (on either side)."""
    def right(modal: Modal) -> np.ndarray:
        eq = modal.label == labels
        return eq.all(axis=1) if eq.ndim == 2 else eq

    k = int(pie.sum())
    counts = {"pruned_right": int((pie & right(pruned)).sum()), "dense_right": int((pie & right(dense)).sum())}
    counts["both_wrong"] = k - counts["pruned_right"] - counts["dense_right"]
    out = {f"n_pies_{key}": v for key, v in counts.items()}
    out.update({f"pie_{key}_share": (v / k if k else None) for key, v in counts.items()})
    out["n_pies_tie_decided"] = int((pie & (dense.ties | pruned.ties)).sum())
    return out


def compare(stacked: Stacked, min_seeds: int = 3, tie_rule: str = "probability") -> CompareResult:
    """Modal labels, PIE flags, pies.parquet rows and summary.json numbers for every pruned group."""
    if tie_rule not in TIE_RULES:
        raise PieError(f"compare.tie_rule {tie_rule!r}: use one of {', '.join(TIE_RULES)}")
    if "dense" not in stacked.groups:
        raise PieError(f"no 'dense' group among {sorted(stacked.groups)}: PIEs are defined against dense models")
    for group, stack in sorted(stacked.groups.items()):
        if len(stack.seeds) < min_seeds:
            raise PieError(f"group {group!r} has {len(stack.seeds)} model(s), fewer than --min-seeds {min_seeds}; "
                           f"add seeds or lower --min-seeds")
    task, labels, n = stacked.task, stacked.labels, len(stacked.example_ids)
    dense = stacked.groups["dense"]
    dense_preds = model_predictions(dense.logits, task, dense.thresholds)
    modal = {"dense": modal_labels(dense.logits, task, dense.thresholds, dense_preds, tie_rule)}
    flags, frames, summary = {}, [], {}
    everything = np.ones(n, dtype=bool)
    for group in sorted(g for g in stacked.groups if g != "dense"):
        stack = stacked.groups[group]
        preds = model_predictions(stack.logits, task, stack.thresholds)
        modal[group] = mod = modal_labels(stack.logits, task, stack.thresholds, preds, tie_rule)
        flags[group] = pie = pie_flags(modal["dense"], mod)
        s = {"n_examples": n, "n_pies": int(pie.sum()), "pie_share": float(pie.mean()) if n else 0.0,
             "n_ties_dense": int(modal["dense"].ties.sum()), "n_ties_pruned": int(mod.ties.sum()),
             "n_models": len(stack.seeds), "n_dense_models": len(dense.seeds), "sparsity": group_sparsity(group),
             "tie_rule": tie_rule, **pie_outcomes(modal["dense"], mod, labels, pie)}
        for subset, mask in (("all", everything), ("pie", pie), ("nonpie", ~pie)):
            for side, p in (("dense", dense_preds), ("pruned", preds)):
                s[f"{side}_acc_{subset}"], s[f"{side}_acc_{subset}_std"] = _mean_std(model_scores(p, labels, task, mask))
        if task == "multi_label":
            s["n_pies_per_label"] = {str(i): int(v) for i, v in enumerate(per_label_pies(modal["dense"], mod))}
        summary[group] = s
        frames.append(_pies_rows(stacked, group, modal["dense"], mod, pie))
    pies = pd.concat(frames, ignore_index=True) if frames else _pies_rows(stacked, "", modal["dense"],
                                                                         modal["dense"], np.zeros(n, bool)).iloc[0:0]
    return CompareResult(stacked, modal, flags, pies, summary, tie_rule=tie_rule)


def _pies_rows(stacked: Stacked, group: str, dense: Modal, pruned: Modal, pie: np.ndarray) -> pd.DataFrame:
    multi = stacked.task == "multi_label"
    return pd.DataFrame({
        "group": group, "split": stacked.split, "example_id": stacked.example_ids, "is_pie": pie,
        "dense_label": list(dense.label) if multi else dense.label,
        "pruned_label": list(pruned.label) if multi else pruned.label,
        "dense_votes": dense.votes, "pruned_votes": pruned.votes})
