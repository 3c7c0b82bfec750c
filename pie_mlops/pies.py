"""Modal votes, PIE flags and per-group metrics (DESIGN.md §3): pure numpy/pandas, no I/O.

A group's models vote per example. Single-label: the class with the most votes wins; a tie
goes to the tied class with the highest mean softmax probability over the group, and if
that ties too, to the lowest index. (The paper's argmax over vote counts always took the
lowest index, Hooker et al. the highest; counting the ties shows how often it matters.)
Multi-label: each label is on when more than half of the models say so (each model
binarises its sigmoid with its own threshold). A PIE is an example whose dense modal label
differs from the pruned group's; for multi-label, any differing label makes a PIE (union).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from pie_mlops.errors import PieError

TASKS = ("single_label", "multi_label")


@dataclass
class GroupStack:
    """One group's models on one split, rows aligned to `Stacked.example_ids`."""
    seeds: np.ndarray                 # (m,) int64, ascending
    logits: np.ndarray                # (m, n, C) float32
    thresholds: np.ndarray | None     # (m,) float32 for multi_label (0.5 where absent); None for single_label


@dataclass
class Stacked:
    """Every group's models on one split of one dataset."""
    split: str
    task: str                         # "single_label" | "multi_label"
    example_ids: np.ndarray           # (n,) str, ascending
    labels: np.ndarray                # (n,) int64, or (n, C) int8 multi-hot
    groups: dict[str, GroupStack]     # "dense" and the pruned groups


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
    pies: pd.DataFrame                # DESIGN.md §3 pies.parquet rows
    summary: dict = field(default_factory=dict)  # pruned group -> summary.json numbers
    noise_floor: dict | None = None   # dense vs dense at matched seeds (analysis.group_stats)


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
                 thresholds: np.ndarray | None = None, preds: np.ndarray | None = None) -> Modal:
    """Modal label per example over the m models of `logits` (m, n, C), with DESIGN's tie rule.
    `preds`: `model_predictions` of the same logits, when the caller has them already."""
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
    if ties.any():
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


def compare(stacked: Stacked, min_seeds: int = 3) -> CompareResult:
    """Modal labels, PIE flags, pies.parquet rows and summary.json numbers for every pruned group."""
    if "dense" not in stacked.groups:
        raise PieError(f"no 'dense' group among {sorted(stacked.groups)}: PIEs are defined against dense models")
    for group, stack in sorted(stacked.groups.items()):
        if len(stack.seeds) < min_seeds:
            raise PieError(f"group {group!r} has {len(stack.seeds)} model(s), fewer than --min-seeds {min_seeds}; "
                           f"add seeds or lower --min-seeds")
    task, labels, n = stacked.task, stacked.labels, len(stacked.example_ids)
    dense = stacked.groups["dense"]
    dense_preds = model_predictions(dense.logits, task, dense.thresholds)
    modal = {"dense": modal_labels(dense.logits, task, dense.thresholds, dense_preds)}
    flags, frames, summary = {}, [], {}
    everything = np.ones(n, dtype=bool)
    for group in sorted(g for g in stacked.groups if g != "dense"):
        stack = stacked.groups[group]
        preds = model_predictions(stack.logits, task, stack.thresholds)
        modal[group] = mod = modal_labels(stack.logits, task, stack.thresholds, preds)
        flags[group] = pie = pie_flags(modal["dense"], mod)
        s = {"n_examples": n, "n_pies": int(pie.sum()), "pie_share": float(pie.mean()) if n else 0.0,
             "n_ties_dense": int(modal["dense"].ties.sum()), "n_ties_pruned": int(mod.ties.sum()),
             "n_models": len(stack.seeds), "n_dense_models": len(dense.seeds), "sparsity": group_sparsity(group)}
        for subset, mask in (("all", everything), ("pie", pie), ("nonpie", ~pie)):
            for side, p in (("dense", dense_preds), ("pruned", preds)):
                s[f"{side}_acc_{subset}"], s[f"{side}_acc_{subset}_std"] = _mean_std(model_scores(p, labels, task, mask))
        if task == "multi_label":
            s["n_pies_per_label"] = {str(i): int(v) for i, v in enumerate(per_label_pies(modal["dense"], mod))}
        summary[group] = s
        frames.append(_pies_rows(stacked, group, modal["dense"], mod, pie))
    pies = pd.concat(frames, ignore_index=True) if frames else _pies_rows(stacked, "", modal["dense"],
                                                                         modal["dense"], np.zeros(n, bool)).iloc[0:0]
    return CompareResult(stacked, modal, flags, pies, summary)


def _pies_rows(stacked: Stacked, group: str, dense: Modal, pruned: Modal, pie: np.ndarray) -> pd.DataFrame:
    multi = stacked.task == "multi_label"
    return pd.DataFrame({
        "group": group, "split": stacked.split, "example_id": stacked.example_ids, "is_pie": pie,
        "dense_label": list(dense.label) if multi else dense.label,
        "pruned_label": list(pruned.label) if multi else pruned.label,
        "dense_votes": dense.votes, "pruned_votes": pruned.votes})


# ---------------------------------------------------------------------------------------
# Stacking: long per-example rows -> one aligned (models, examples, classes) array per group
# ---------------------------------------------------------------------------------------
@dataclass
class ModelRows:
    """One model's rows of one split, as arrays (from a pandas frame or straight from Arrow)."""
    group: str
    seed: int
    ids: np.ndarray                   # (n,) str
    labels: np.ndarray                # (n,) int64 or (n, C) int8
    logits: np.ndarray                # (n, C) float32
    threshold: float | None
    source: str                       # for error messages: a file name or "group/seed"


def stack_models(models: list[ModelRows], split: str, task: str) -> Stacked:
    """Align every model's rows by example id and stack them per group, checking the contract."""
    if not models:
        raise PieError(f"no predictions of split {split!r}")
    ref = min(models, key=lambda r: (r.group != "dense", r.group, r.seed))
    ref_order = np.argsort(ref.ids, kind="stable")
    ref_ids = ref.ids[ref_order]
    width = ref.logits.shape[1] if ref.logits.ndim == 2 else -1
    if len(ref_ids) > 1 and (ref_ids[1:] == ref_ids[:-1]).any():
        dup = ref_ids[1:][ref_ids[1:] == ref_ids[:-1]][0]
        raise PieError(f"{ref.source}: duplicate (group, seed, example_id) = ({ref.group}, {ref.seed}, {dup})")
    ref_labels = ref.labels[ref_order]
    # Files in the dataset's order whose ids are already sorted (the loader shares one ids
    # array between them): no row copy at all, instead of a gather per model.
    in_order = bool(np.array_equal(ref_order, np.arange(len(ref_order))))
    seen, per_group = set(), {}
    for r in models:
        key = (r.group, r.seed)
        if key in seen:
            raise PieError(f"{r.source}: duplicate (group, seed) = {key}: one set of predictions per model and split")
        seen.add(key)
        if r.ids is ref.ids:  # same ids array as the reference (the loader shares it): same order
            order, ids = ref_order, ref_ids
        else:
            order = np.argsort(r.ids, kind="stable")
            ids = r.ids[order]
        if ids is not ref_ids and (len(ids) != len(ref_ids) or not np.array_equal(ids, ref_ids)):
            _id_error(r, ids, ref, ref_ids)
        if r.logits.ndim != 2 or r.logits.shape[1] != width:
            raise PieError(f"{r.source}: {r.group} s{r.seed} has logits of width "
                           f"{r.logits.shape[-1] if r.logits.ndim == 2 else 'varying'}, {ref.source} has {width}")
        same = order is ref_order and in_order
        logits = r.logits if same else r.logits[order]
        if not np.isfinite(logits).all():
            row = int(np.flatnonzero(~np.isfinite(logits).all(axis=1))[0])
            raise PieError(f"{r.source}: {r.group} s{r.seed} has NaN or infinite logits "
                           f"(first at example_id {ids[row]}); retrain or drop that model")
        labels = r.labels if same else r.labels[order]
        if not np.array_equal(labels, ref_labels):
            row = int(np.flatnonzero((labels != ref_labels).reshape(len(ids), -1).any(axis=1))[0])
            raise PieError(f"{r.source}: gold label of example_id {ids[row]} differs from {ref.source}; "
                           f"the predictions come from different data")
        per_group.setdefault(r.group, []).append((r.seed, logits, r.threshold))
    groups = {}
    for group, items in per_group.items():
        items.sort(key=lambda t: t[0])
        thresholds = None
        if task == "multi_label":
            thresholds = np.array([0.5 if t is None else t for _, _, t in items], dtype=np.float32)
        groups[group] = GroupStack(np.array([s for s, _, _ in items], dtype=np.int64),
                                   np.stack([lg for _, lg, _ in items]).astype(np.float32, copy=False), thresholds)
    return Stacked(split, task, ref_ids, ref_labels, groups)


def _id_error(r: ModelRows, ids: np.ndarray, ref: ModelRows, ref_ids: np.ndarray) -> None:
    if len(ids) > 1 and (ids[1:] == ids[:-1]).any():
        dup = ids[1:][ids[1:] == ids[:-1]][0]
        raise PieError(f"{r.source}: duplicate (group, seed, example_id) = ({r.group}, {r.seed}, {dup})")
    extra = np.setdiff1d(ids, ref_ids)
    missing = np.setdiff1d(ref_ids, ids)
    what = f"has example_id {extra[0]} that {ref.source} lacks" if len(extra) else f"lacks example_id {missing[0]}"
    raise PieError(f"{r.source}: example ids differ between models of one split: {r.group} s{r.seed} {what} "
                   f"({len(ids)} vs {len(ref_ids)} examples)")


def stack_split(frame: pd.DataFrame, split: str) -> Stacked:
    """Stack a long predictions frame (DESIGN.md §3 contract) for one split."""
    f = frame[frame["split"] == split]
    if f.empty:
        raise PieError(f"no predictions of split {split!r} (splits present: {sorted(set(frame['split']))})")
    has_single = "label" in f and f["label"].notna().any()
    has_multi = "labels" in f and f["labels"].notna().any()
    if has_single and has_multi:
        raise PieError("mixed single-label (label) and multi-label (labels) predictions in one comparison")
    task = "multi_label" if has_multi else "single_label"
    models = []
    for (group, seed), df in f.groupby(["group", "seed"], sort=True):
        lens = np.fromiter((len(v) for v in df["logits"]), dtype=np.int64, count=len(df))
        if len(set(lens.tolist())) > 1:
            raise PieError(f"{group}/s{seed}: logits of differing lengths {sorted(set(lens.tolist()))}")
        logits = np.stack(df["logits"].to_numpy()).astype(np.float32) if len(df) else np.zeros((0, 0), np.float32)
        if task == "multi_label":
            labels = np.stack(df["labels"].to_numpy()).astype(np.int8)
            thr = df["threshold"].iloc[0] if "threshold" in df and df["threshold"].notna().any() else None
        else:
            labels, thr = df["label"].to_numpy(dtype=np.int64), None
        models.append(ModelRows(str(group), int(seed), df["example_id"].astype(str).to_numpy(), labels, logits,
                                None if thr is None else float(thr), f"{group}/s{seed}"))
    return stack_models(models, split, task)
