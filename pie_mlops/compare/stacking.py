"""Stacking (docs/design.md §3): long per-example prediction rows -> one aligned (models,
examples, classes) array per group, checking the contract on the way (ids, duplicates,
finite logits, gold labels, group names). Pure numpy/pandas, no I/O; `pies` votes on it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from pie_mlops.util.errors import PieError
from pie_mlops.config.vocabulary import check_name


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
    ref = _reference(models, task)
    seen, per_group = set(), {}
    for r in models:
        check_name("group", r.group, r.source)  # group names become path parts downstream
        key = (r.group, r.seed)
        if key in seen:
            raise PieError(f"{r.source}: duplicate (group, seed) = {key}: one set of predictions per model and split")
        seen.add(key)
        per_group.setdefault(r.group, []).append((r.seed, _aligned_logits(r, ref), r.threshold))
    return Stacked(split, task, ref.ids, ref.labels, _group_stacks(per_group, task))


@dataclass
class _Reference:
    """The model every other is aligned to (dense, lowest seed first): its rows in id order."""
    rows: ModelRows
    order: np.ndarray                 # argsort of rows.ids
    ids: np.ndarray                   # rows.ids in that order
    labels: np.ndarray
    width: int                        # number of classes (-1: logits not 2-D)
    in_order: bool                    # rows.ids already sorted: no gather needed


def _reference(models: list[ModelRows], task: str) -> _Reference:
    """The reference model, its ids unique, its logits non-empty and its gold labels valid."""
    ref = min(models, key=lambda r: (r.group != "dense", r.group, r.seed))
    ref_order = np.argsort(ref.ids, kind="stable")
    ref_ids = ref.ids[ref_order]
    width = ref.logits.shape[1] if ref.logits.ndim == 2 else -1
    if len(ref_ids) > 1 and (ref_ids[1:] == ref_ids[:-1]).any():
        dup = ref_ids[1:][ref_ids[1:] == ref_ids[:-1]][0]
        raise PieError(f"{ref.source}: duplicate (group, seed, example_id) = ({ref.group}, {ref.seed}, {dup})")
    ref_labels = ref.labels[ref_order]
    if width == 0:
        raise PieError(f"{ref.source}: {ref.group} s{ref.seed} has empty logits (no classes)")
    _check_labels(ref, ref_labels, ref_ids, width, task)
    # Files in the dataset's order whose ids are already sorted (the loader shares one ids
    # array between them): no row copy at all, instead of a gather per model.
    in_order = bool(np.array_equal(ref_order, np.arange(len(ref_order))))
    return _Reference(ref, ref_order, ref_ids, ref_labels, width, in_order)


def _aligned_logits(r: ModelRows, ref: _Reference) -> np.ndarray:
    """`r`'s logits in the reference's example order, after checking its ids, logit width,
    finite values and gold labels against the reference's."""
    if r.ids is ref.rows.ids:  # same ids array as the reference (the loader shares it): same order
        order, ids = ref.order, ref.ids
    else:
        order = np.argsort(r.ids, kind="stable")
        ids = r.ids[order]
    if ids is not ref.ids and (len(ids) != len(ref.ids) or not np.array_equal(ids, ref.ids)):
        _id_error(r, ids, ref.rows, ref.ids)
    if r.logits.ndim != 2 or r.logits.shape[1] != ref.width:
        raise PieError(f"{r.source}: {r.group} s{r.seed} has logits of width "
                       f"{r.logits.shape[-1] if r.logits.ndim == 2 else 'varying'}, {ref.rows.source} has {ref.width}")
    same = order is ref.order and ref.in_order
    logits = r.logits if same else r.logits[order]
    if not np.isfinite(logits).all():
        row = int(np.flatnonzero(~np.isfinite(logits).all(axis=1))[0])
        raise PieError(f"{r.source}: {r.group} s{r.seed} has NaN or infinite logits "
                       f"(first at example_id {ids[row]}); retrain or drop that model")
    labels = r.labels if same else r.labels[order]
    if not np.array_equal(labels, ref.labels):
        row = int(np.flatnonzero((labels != ref.labels).reshape(len(ids), -1).any(axis=1))[0])
        raise PieError(f"{r.source}: gold label of example_id {ids[row]} differs from {ref.rows.source}; "
                       f"the predictions come from different data")
    return logits


def _group_stacks(per_group: dict[str, list], task: str) -> dict[str, GroupStack]:
    """Each group's (seed, logits, threshold) items as one GroupStack, seeds ascending."""
    groups = {}
    for group, items in per_group.items():
        items.sort(key=lambda t: t[0])
        thresholds = None
        if task == "multi_label":
            thresholds = np.array([0.5 if t is None else t for _, _, t in items], dtype=np.float32)
        groups[group] = GroupStack(np.array([s for s, _, _ in items], dtype=np.int64),
                                   np.stack([lg for _, lg, _ in items]).astype(np.float32, copy=False), thresholds)
    return groups


def gold_labels(values, ids: np.ndarray, source: str) -> np.ndarray:
    """A single-label `label` column as int64, or PieError naming the first null or fractional
    label (a cast would turn them into wrong classes without a word)."""
    arr = np.asarray(values)
    if arr.dtype.kind in "iu":
        return arr.astype(np.int64, copy=False)
    if arr.dtype.kind == "f":  # an int column with nulls arrives as floats with NaN
        num = arr.astype(np.float64, copy=False)
    else:
        num = pd.to_numeric(pd.Series(arr, dtype=object), errors="coerce").to_numpy(dtype=np.float64)
    bad = np.isnan(num) | (num != np.round(num))
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        orig = getattr(arr[row], "item", lambda: arr[row])()  # a Python scalar for the message
        value = "null" if orig is None or (isinstance(orig, float) and np.isnan(orig)) else repr(orig)
        raise PieError(f"{source}: row {row}: column 'label' holds {value} (example_id {ids[row]}); "
                       f"gold labels are whole class indices")
    return num.astype(np.int64)


def _check_labels(ref: ModelRows, labels: np.ndarray, ids: np.ndarray, width: int, task: str) -> None:
    """Gold labels that index the logits: 0 <= label < number of classes (0/1 per class, multi-label)."""
    if task == "multi_label":
        if labels.ndim != 2 or labels.shape[1] != width or ((labels != 0) & (labels != 1)).any():
            raise PieError(f"{ref.source}: column 'labels' must be 0/1 lists of the logits' width {width}")
        return
    bad = (labels < 0) | (labels >= width)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise PieError(f"{ref.source}: column 'label' holds {int(labels[row])} at example_id {ids[row]}: "
                       f"not a class of the {width} logits (0..{width - 1})")


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
    """Stack a long predictions frame (docs/design.md §3 contract) for one split."""
    f = frame[frame["split"] == split]
    if f.empty:
        raise PieError(f"no predictions of split {split!r} (splits present: {sorted(set(frame['split']))})")
    has_single = "label" in f and f["label"].notna().any()
    has_multi = "labels" in f and f["labels"].notna().any()
    if has_single and has_multi:
        raise PieError("mixed single-label (label) and multi-label (labels) predictions in one comparison")
    task = "multi_label" if has_multi else "single_label"
    if f["example_id"].isna().any():
        raise PieError(f"row {int(np.flatnonzero(f['example_id'].isna())[0])} of split {split!r}: null example_id")
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
            labels, thr = gold_labels(df["label"].to_numpy(), df["example_id"].to_numpy(), f"{group}/s{seed}"), None
        models.append(ModelRows(str(group), int(seed), df["example_id"].astype(str).to_numpy(), labels, logits,
                                None if thr is None else float(thr), f"{group}/s{seed}"))
    return stack_models(models, split, task)
