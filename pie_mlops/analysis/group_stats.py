"""Per-group statistics beside the per-model means of summary.json (docs/design.md §3 "Claims and
statistics"): modal-label accuracies (the paper's), bootstrap CIs over seeds, collapse, and
the dense-vs-dense noise floor at matched seeds. Pure: arrays in, dicts out.

- **Modal-label accuracy.** The paper scores the group's modal label, not each model: with
  few seeds the two differ (a modal label is right more often than an average model).
- **Bootstrap over seeds.** Each replicate resamples the dense and the pruned models with
  replacement, recomputes both modal labels, the PIE set and every accuracy on it. With 3-5
  seeds a resample repeats models, so the interval is wide: it says "more seeds", honestly.
- **Collapse.** A group whose models each give one class (one label set, multi-label) to
  more than 95% of the examples is `collapsed`: its "PIEs" are the other classes, not
  pruning-identified exemplars, and it never supports a claim.
- **Noise floor.** PIEs between two disjoint draws of k dense models each, k = the groups'
  models per side; with fewer than 2k dense models, the largest k possible (`matched` false).
"""

from __future__ import annotations

import numpy as np

from pie_mlops.analysis.stats import clears_floor, percentile_interval
from pie_mlops.pies import CompareResult, GroupStack, Modal, modal_labels, model_predictions, model_scores, pie_flags

COLLAPSE_SHARE = 0.95  # above this majority-prediction share a group is collapsed
SUBSETS = ("all", "pie", "nonpie")


def majority_pred_share(preds: np.ndarray, task: str) -> float:
    """Mean over models of the share of examples given that model's most frequent prediction
    (class, or whole label set for multi_label). 1.0 = every model predicts one thing."""
    m, n = preds.shape[0], preds.shape[1]
    if n == 0 or m == 0:
        return float("nan")
    shares = []
    for p in preds:
        if task == "multi_label":
            _, counts = np.unique(p.reshape(n, -1), axis=0, return_counts=True)
        else:
            counts = np.bincount(p)
        shares.append(counts.max() / n)
    return float(np.mean(shares))


def modal_scores(modal: Modal, labels: np.ndarray, task: str, pie: np.ndarray) -> dict[str, float | None]:
    """Accuracy (macro-F1 multi-label) of the modal label on all, PIE and non-PIE examples."""
    out = {}
    for subset, mask in zip(SUBSETS, (np.ones_like(pie), pie, ~pie)):
        v = model_scores(modal.label[None], labels, task, mask)[0]
        out[subset] = None if np.isnan(v) else float(v)
    return out


def _numbers(dense: tuple, pruned: tuple, labels: np.ndarray, task: str) -> dict[str, float]:
    """pie_share and every accuracy for one (dense, pruned) choice of models.
    Each side is `_side()`: (logits, task, thresholds, preds) of the chosen models."""
    dm, pm = modal_labels(*dense), modal_labels(*pruned)
    pie = pie_flags(dm, pm)
    out = {"pie_share": float(pie.mean()) if len(pie) else float("nan")}
    for side, preds, modal in (("dense", dense[3], dm), ("pruned", pruned[3], pm)):
        modal_acc = modal_scores(modal, labels, task, pie)
        for subset, mask in zip(SUBSETS, (np.ones_like(pie), pie, ~pie)):
            out[f"{side}_acc_{subset}"] = float(np.mean(model_scores(preds, labels, task, mask)))
            out[f"{side}_modal_acc_{subset}"] = np.nan if modal_acc[subset] is None else modal_acc[subset]
    return out


def _side(stack: GroupStack, preds: np.ndarray, task: str, idx: np.ndarray) -> tuple:
    thr = None if stack.thresholds is None else stack.thresholds[idx]
    return stack.logits[idx], task, thr, preds[idx]


def noise_floor_at(dense: GroupStack, task: str, per_side: int, n_boot: int = 200, seed: int = 0) -> dict:
    """Dense against dense: the PIE share between two disjoint draws of k dense models each,
    over `n_boot` random draws; k = `per_side`, or the largest k with 2k <= dense models."""
    m = len(dense.seeds)
    k = min(int(per_side), m // 2)
    out = {"share": None, "ci": [None, None], "seeds_per_side": int(k), "groups_seeds_per_side": int(per_side),
           "matched": bool(k == per_side), "n_dense_models": int(m)}
    if k < 1:
        out["note"] = f"one dense model: no noise floor (train at least {2 * per_side} dense seeds)"
        return out
    preds = model_predictions(dense.logits, task, dense.thresholds)
    rng = np.random.default_rng(seed)
    shares = np.empty(n_boot)
    for b in range(n_boot):
        perm = rng.permutation(m)
        shares[b] = pie_flags(modal_labels(*_side(dense, preds, task, perm[:k])),
                              modal_labels(*_side(dense, preds, task, perm[k:2 * k]))).mean()
    lo, hi = percentile_interval(shares)
    out.update(share=float(shares.mean()), ci=[float(lo), float(hi)])
    if k < per_side:
        # Fewer models per side make noisier modal labels, so this floor is if anything too high.
        out["note"] = (f"{m} dense models: floor at {k} vs {k} seeds, groups use {per_side}; "
                       f"train {2 * per_side} dense seeds for a matched floor")
    return out


def group_statistics(result: CompareResult, n_boot: int = 200, seed: int = 0) -> tuple[dict, dict]:
    """({group: the keys to add to its summary}, the noise_floor dict) for a compare result."""
    stacked = result.stacked
    task, labels = stacked.task, stacked.labels
    dense = stacked.groups["dense"]
    groups = sorted(result.flags)
    per_side = min((len(stacked.groups[g].seeds) for g in groups), default=len(dense.seeds))
    floor = noise_floor_at(dense, task, per_side, n_boot, seed)
    d_preds = model_predictions(dense.logits, task, dense.thresholds)
    # A dense group that itself predicts one class makes every comparison with it meaningless.
    floor["dense_majority_pred_share"] = majority_pred_share(d_preds, task)
    floor["dense_collapsed"] = bool(floor["dense_majority_pred_share"] > COLLAPSE_SHARE)
    rng = np.random.default_rng(seed + 1)
    md = len(dense.seeds)
    # One dense resample per replicate, shared by every group (the groups are compared with
    # the same dense models, so their replicates should be too).
    d_draws = [rng.integers(0, md, md) for _ in range(n_boot)]
    out = {}
    for group in groups:
        stack = stacked.groups[group]
        preds = model_predictions(stack.logits, task, stack.thresholds)
        mp = len(stack.seeds)
        pie = result.flags[group]
        s = {f"dense_modal_acc_{k}": v for k, v in modal_scores(result.modal["dense"], labels, task, pie).items()}
        s.update({f"pruned_modal_acc_{k}": v for k, v in modal_scores(result.modal[group], labels, task, pie).items()})
        reps = [_numbers(_side(dense, d_preds, task, d), _side(stack, preds, task, rng.integers(0, mp, mp)),
                         labels, task) for d in d_draws]
        for key in reps[0] if reps else ():
            values = np.array([r[key] for r in reps], dtype=float)
            if np.isnan(values).all():
                s[f"{key}_ci"] = [None, None]
                continue
            lo, hi = percentile_interval(values)
            s[f"{key}_ci"] = [float(lo), float(hi)]
        share = majority_pred_share(preds, task)
        s.update(majority_pred_share=share, collapsed=bool(share > COLLAPSE_SHARE),
                 above_floor=clears_floor(s.get("pie_share_ci"), floor))
        out[group] = s
    return out, floor


def add_statistics(result: CompareResult, n_boot: int = 200, seed: int = 0) -> CompareResult:
    """The result with each group's summary extended and `noise_floor` set (in place)."""
    extra, floor = group_statistics(result, n_boot, seed)
    for group, s in extra.items():
        result.summary[group].update(s)
    result.noise_floor = floor
    return result
