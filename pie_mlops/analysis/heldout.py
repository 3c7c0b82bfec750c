"""Claim statistics scored on models that did not define the PIEs (docs/claims.md). Pure.

Within one group the dense and pruned modal labels agree on every non-PIE by definition, so
"accuracy drops on PIEs" scored on the models that defined them is an identity. Here the
PIEs come from one half of the seeds and the *other* half (dense and pruned models that did
not vote on them) is scored on those PIEs and on the non-PIEs, over several random splits.
If PIEs were seed noise, the held-out pruned models would do no worse on them than the
held-out dense ones.

Intervals resample test examples with the seed halves fixed (one multinomial weight vector
per replicate, shared by every split), so each point estimate lies inside its interval's
sampling distribution; the seed halves are averaged over, not resampled.
"""

from __future__ import annotations

import numpy as np

from pie_mlops.analysis.stats import percentile_interval
from pie_mlops.compare.pies import GroupStack, modal_labels, model_predictions, pie_flags


def example_weights(n: int, n_boot: int, seed: int) -> np.ndarray:
    """(n_boot, n) bootstrap counts: each row a resample of the n examples with replacement."""
    rng = np.random.default_rng(seed)
    return rng.multinomial(n, np.full(n, 1.0 / n), size=n_boot).astype(np.float64)


def boot_summary(point: float, reps: np.ndarray) -> dict:
    """Point estimate, 95% percentile CI and a two-sided bootstrap p-value for "= 0"."""
    reps = reps[np.isfinite(reps)]
    if not np.isfinite(point) or not len(reps):
        return {"value": None, "ci": [None, None], "p_value": None}
    lo, hi = percentile_interval(reps)
    # Percentile-bootstrap test: how often the resampled statistic lands on the other side of 0.
    p = min(1.0, 2 * min(np.mean(reps <= 0), np.mean(reps >= 0)))
    return {"value": float(point), "ci": [float(lo), float(hi)], "p_value": float(max(p, 1 / len(reps)))}


def correctness(stack: GroupStack, labels: np.ndarray, task: str) -> np.ndarray:
    """(m, n) per-model, per-example score: 1/0 right, or (multi-label) the share of labels right."""
    preds = model_predictions(stack.logits, task, stack.thresholds)
    if task == "multi_label":
        return (preds == labels[None].astype(preds.dtype)).mean(axis=-1)
    return (preds == labels[None]).astype(np.float64)


def half_splits(dense_seeds, pruned_seeds, n_splits: int, seed: int) -> list[tuple]:
    """`n_splits` random halvings: (dense define, dense held out, pruned define, pruned held out)
    index arrays. Seeds both groups have (a pruned model grown from dense seed s) go to the
    same half, so no held-out pruned model descends from a defining dense one."""
    d, p = np.asarray(dense_seeds), np.asarray(pruned_seeds)
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n_splits):
        common = rng.permutation(np.intersect1d(d, p))
        half = set(common[: len(common) // 2].tolist())
        rest = [rng.permutation(s[~np.isin(s, common)]) for s in (d, p)]
        sides = []
        for seeds, extra in zip((d, p), rest):
            define = np.isin(seeds, list(half)) | np.isin(seeds, extra[: len(extra) // 2])
            sides.append((np.flatnonzero(define), np.flatnonzero(~define)))
        out.append((sides[0][0], sides[0][1], sides[1][0], sides[1][1]))
    return out


def _ratio(w: np.ndarray, num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """(replicates,) the weighted ratio per split, averaged over the splits where it is defined
    (a split without PIEs of a class has no drop on them); NaN where none is."""
    with np.errstate(invalid="ignore", divide="ignore"):
        r = (w @ num.T) / (w @ den.T)                    # (replicates, splits)
        ok = np.isfinite(r)
        return np.where(ok, r, 0.0).sum(1) / ok.sum(1)


def half_split(dense: GroupStack, pruned: GroupStack, labels: np.ndarray, task: str, *, n_splits: int = 10,
               n_boot: int = 1000, seed: int = 0, n_classes: int | None = None) -> dict:
    """Claim (a) and (d2) on held-out seeds. Keys: `drop_pie`, `drop_nonpie`, `did` (drop on PIEs
    minus drop on non-PIEs: the test of (a)), `drop_all`, `share` (each a boot_summary), the
    held-out accuracies, and `per_class` (drop on each class's PIEs, single-label). {} with
    fewer than 2 models on a side."""
    if min(len(dense.seeds), len(pruned.seeds)) < 2:
        return {}
    splits = [s for s in half_splits(dense.seeds, pruned.seeds, n_splits, seed) if min(map(len, s)) > 0]
    if not splits:
        return {}
    dc, pc = correctness(dense, labels, task), correctness(pruned, labels, task)
    pies, gap, d_held, p_held = [], [], [], []
    for dd, dh, pd_, ph in splits:
        def sub(stack, idx):
            return modal_labels(stack.logits[idx], task, None if stack.thresholds is None else stack.thresholds[idx])
        pies.append(pie_flags(sub(dense, dd), sub(pruned, pd_)).astype(np.float64))
        d_held.append(dc[dh].mean(0))
        p_held.append(pc[ph].mean(0))
        gap.append(d_held[-1] - p_held[-1])
    pie, gap, d_held, p_held = map(np.array, (pies, gap, d_held, p_held))  # (S, n) each
    n = pie.shape[1]
    w = np.vstack([np.ones(n), example_weights(n, n_boot, seed + 1)])  # row 0: the data as observed
    non = 1.0 - pie
    stats = {"drop_pie": _ratio(w, pie * gap, pie), "drop_nonpie": _ratio(w, non * gap, non),
             "drop_all": _ratio(w, gap, np.ones_like(gap)), "share": _ratio(w, pie, np.ones_like(pie)),
             "dense_acc_pie": _ratio(w, pie * d_held, pie), "pruned_acc_pie": _ratio(w, pie * p_held, pie)}
    stats["did"] = stats["drop_pie"] - stats["drop_nonpie"]
    out = {k: boot_summary(v[0], v[1:]) for k, v in stats.items()}
    out.update(n_splits=len(splits), seeds_per_half=[int(len(splits[0][0])), int(len(splits[0][2]))],
               n_pies_mean=float(pie.sum(1).mean()))
    if task != "multi_label":
        out["per_class"] = _per_class(w, pie, gap, labels, n_classes)
    return out


def _per_class(w, pie, gap, labels, n_classes) -> list[dict]:
    """(d2): per class, the held-out drop on that class's PIEs, with its CI."""
    k = int(n_classes or labels.max() + 1)
    rows = []
    for c in range(k):
        in_c = (labels == c)[None] * pie                    # (S, n)
        v = _ratio(w, in_c * gap, in_c)
        rows.append({"class": c, "n": int((labels == c).sum()), "n_pies_mean": float(in_c.sum(1).mean()),
                     **boot_summary(v[0], v[1:])})
    return rows


def overall_drop(dense: GroupStack, pruned: GroupStack, labels: np.ndarray, task: str, *,
                 n_boot: int = 1000, seed: int = 0) -> dict:
    """(a)'s conjunct: the mean dense minus mean pruned per-model accuracy on all examples, with
    an example-bootstrap CI (every model; no PIE set is involved)."""
    gap = correctness(dense, labels, task).mean(0) - correctness(pruned, labels, task).mean(0)
    w = np.vstack([np.ones(len(gap)), example_weights(len(gap), n_boot, seed + 2)])
    v = (w @ gap) / w.sum(1)
    return boot_summary(v[0], v[1:])
