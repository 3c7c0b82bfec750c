"""Per-group statistics beside the per-model means of summary.json (docs/design.md §3 "Claims and
statistics"): modal-label accuracies (the paper's), intervals, collapse, the test against the
noise floor and the dense-vs-dense floor itself. Pure: arrays in, dicts out.

- **Modal-label accuracy.** The paper scores the group's modal label, not each model: with
  few seeds the two differ (a modal label is right more often than an average model).
- **Intervals of the estimator reported** (`*_ci`): the seeds fixed, the test examples
  resampled with replacement. The point estimate is a mean (or ratio of means) over examples
  at these seeds, so it lies inside its own interval; the interval says "another test set".
- **Seed uncertainty, apart** (`pie_share_half`, `pie_share_half_ci`): k = m/2 dense and k
  pruned models of different seeds, drawn without replacement, beside the floor at the same
  k (`floor_half`, `floor_half_ci`: k dense vs k other dense).
- **Test against the floor** (`floor_test`, `above_floor`): a permutation test per group
  (analysis.permutation), Holm across the comparison's groups, `above_floor` when the
  Holm-adjusted p is below `compare.alpha`.
- **Collapse.** A group whose models each give one class (one label set, multi-label) to
  more than 95% of the examples is `collapsed`: its "PIEs" are the other classes, not
  pruning-identified exemplars, and it never supports a claim.
- **Noise floor** (`noise_floor`, the report beside the test): PIEs between two disjoint
  draws of k dense models each, k = the groups' models per side; with fewer than 2k dense
  models, the largest k possible (`matched` false).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pie_mlops.analysis import permutation as pm
from pie_mlops.analysis.stats import holm, percentile_interval
from pie_mlops.compare.pies import CompareResult, GroupStack, Modal, model_predictions, model_scores

COLLAPSE_SHARE = 0.95  # above this majority-prediction share a group is collapsed
SUBSETS = ("all", "pie", "nonpie")


@dataclass
class StatOptions:
    """compare.* keys of the statistics (their defaults live in pie_mlops/config/schema.py)."""
    n_boot: int        # noise-floor draws
    n_perm: int        # permutations per floor test
    n_resample: int    # example-bootstrap replicates
    n_half: int        # seed half-sampling draws
    alpha: float       # above_floor: Holm-adjusted p below this
    seed: int = 0

    @classmethod
    def from_params(cls, params: dict | None = None, **given) -> StatOptions:
        from pie_mlops.config.schema import defaults

        p = {**defaults("compare"), **(params or {}), **given}
        return cls(int(p["n_boot"]), int(p["n_perm"]), int(p["n_resample"]), int(p["n_half"]), float(p["alpha"]),
                   int(p["seed"]))


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


def _f1_resampled(w: np.ndarray, mask: np.ndarray, labels: np.ndarray, preds: np.ndarray) -> np.ndarray:
    """(B,) mean over models of macro-F1 on the `mask` examples, each replicate weighting the
    examples by `w` (B, n); a label neither present nor predicted scores 1 (metrics.macro_f1)."""
    m, n, c = preds.shape
    y = (labels * mask[:, None]).astype(np.float64)                        # (n, C)
    p = (preds * mask[None, :, None]).astype(np.float64)                   # (m, n, C)
    tp = (w @ (p * y[None]).transpose(1, 0, 2).reshape(n, m * c)).reshape(-1, m, c)
    denom = (w @ y)[:, None, :] + (w @ p.transpose(1, 0, 2).reshape(n, m * c)).reshape(-1, m, c)
    with np.errstate(invalid="ignore", divide="ignore"):
        f1 = np.where(denom > 0, 2 * tp / np.maximum(denom, 1e-300), 1.0).mean(axis=2).mean(axis=1)
    return np.where((w @ mask.astype(np.float64)) > 0, f1, np.nan)


def example_bootstrap(result: CompareResult, group: str, n_resample: int, rng) -> dict[str, list]:
    """`*_ci` of pie_share and every accuracy key, resampling the test examples with the seeds
    (so the modal labels and PIE flags of each example) fixed. Vectorised: each key is a
    (ratio of) weighted sum(s) over examples, one matrix product for all replicates."""
    st = result.stacked
    task, labels, n = st.task, st.labels, len(st.example_ids)
    if n == 0:
        return {}
    pie = result.flags[group].astype(np.float64)
    draws = rng.integers(0, n, (n_resample, n)) + n * np.arange(n_resample)[:, None]
    w = np.bincount(draws.ravel(), minlength=n_resample * n).reshape(n_resample, n).astype(np.float64)
    reps = {"pie_share": w @ pie / n}
    masks = {"all": np.ones(n), "pie": pie, "nonpie": 1.0 - pie}
    sides = {"dense": (st.groups["dense"], result.modal["dense"]), "pruned": (st.groups[group], result.modal[group])}
    num, den = {}, {}  # single-label: each key a ratio of weighted sums, all in one matrix product
    for side, (stack, modal) in sides.items():
        preds = model_predictions(stack.logits, task, stack.thresholds)
        per_model = None if task == "multi_label" else (preds == labels[None]).mean(axis=0)  # mean over models
        for subset, mask in masks.items():
            if task == "multi_label":
                reps[f"{side}_acc_{subset}"] = _f1_resampled(w, mask.astype(bool), labels, preds)
                reps[f"{side}_modal_acc_{subset}"] = _f1_resampled(w, mask.astype(bool), labels, modal.label[None])
            else:
                num[f"{side}_acc_{subset}"], den[f"{side}_acc_{subset}"] = mask * per_model, mask
                num[f"{side}_modal_acc_{subset}"] = mask * (modal.label == labels)
                den[f"{side}_modal_acc_{subset}"] = mask
    if num:
        keys = list(num)
        sums = w @ np.stack([num[k] for k in keys] + [den[k] for k in keys], axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            ratios = sums[:, :len(keys)] / sums[:, len(keys):]
        reps.update({k: ratios[:, j] for j, k in enumerate(keys)})
    out = {}
    for key, values in reps.items():
        if np.isnan(values).all():
            out[f"{key}_ci"] = [None, None]
            continue
        lo, hi = percentile_interval(values)
        out[f"{key}_ci"] = [float(lo), float(hi)]
    return out


def _pool(dense: GroupStack, stack: GroupStack, task: str, tie_rule: str) -> pm.Votes:
    thr = None if dense.thresholds is None else np.concatenate([dense.thresholds, stack.thresholds])
    return pm.Votes(np.concatenate([dense.logits, stack.logits]), task, thr, tie_rule)


def half_sampling(votes: pm.Votes, md: int, mp: int, pairs, n_half: int, rng) -> dict:
    """pie_share_half (k = m/2 dense vs k pruned models of other seeds) and the floor at the
    same k (k dense vs k other dense), each a mean with its percentile interval."""
    k = mp // 2 if pairs is None else min(mp // 2, len(pairs) // 2)
    out = {"half_k": int(k), "pie_share_half": None, "pie_share_half_ci": [None, None], "floor_half": None,
           "floor_half_ci": [None, None]}
    if k < 1:
        return out
    a, b = pm.half_samples(md, mp, pairs, k, n_half, rng)
    shares = pm.pie_shares(votes, a, b)
    lo, hi = percentile_interval(shares)
    out.update(pie_share_half=float(shares.mean()), pie_share_half_ci=[float(lo), float(hi)])
    if 2 * k <= md:
        a, b = pm.floor_samples(md, md + mp, k, n_half, rng)
        floor = pm.pie_shares(votes, a, b)
        lo, hi = percentile_interval(floor)
        out.update(floor_half=float(floor.mean()), floor_half_ci=[float(lo), float(hi)])
    return out


def noise_floor_at(dense: GroupStack, task: str, per_side: int, n_boot: int = 200, seed: int = 0,
                   tie_rule: str = "probability") -> dict:
    """Dense against dense: the PIE share between two disjoint draws of k dense models each,
    over `n_boot` random draws; k = `per_side`, or the largest k with 2k <= dense models."""
    m = len(dense.seeds)
    k = min(int(per_side), m // 2)
    out = {"share": None, "ci": [None, None], "seeds_per_side": int(k), "groups_seeds_per_side": int(per_side),
           "matched": bool(k == per_side), "n_dense_models": int(m)}
    if k < 1:
        out["note"] = f"one dense model: no noise floor (train at least {2 * per_side} dense seeds)"
        return out
    votes = pm.Votes(dense.logits, task, dense.thresholds, tie_rule)
    shares = pm.pie_shares(votes, *pm.floor_samples(m, m, k, n_boot, np.random.default_rng(seed)))
    lo, hi = percentile_interval(shares)
    out.update(share=float(shares.mean()), ci=[float(lo), float(hi)])
    if k < per_side:
        # Fewer models per side make noisier modal labels, so this floor is if anything too high.
        out["note"] = (f"{m} dense models: floor at {k} vs {k} seeds, groups use {per_side}; "
                       f"train {2 * per_side} dense seeds for a matched floor")
    return out


def group_statistics(result: CompareResult, opts: StatOptions) -> tuple[dict, dict]:
    """({group: the keys to add to its summary}, the noise_floor dict) for a compare result."""
    stacked = result.stacked
    task, labels, tie = stacked.task, stacked.labels, result.tie_rule
    dense = stacked.groups["dense"]
    groups = sorted(result.flags)
    per_side = min((len(stacked.groups[g].seeds) for g in groups), default=len(dense.seeds))
    floor = noise_floor_at(dense, task, per_side, opts.n_boot, opts.seed, tie)
    d_preds = model_predictions(dense.logits, task, dense.thresholds)
    # A dense group that itself predicts one class makes every comparison with it meaningless.
    floor["dense_majority_pred_share"] = majority_pred_share(d_preds, task)
    floor["dense_collapsed"] = bool(floor["dense_majority_pred_share"] > COLLAPSE_SHARE)
    md = len(dense.seeds)
    out = {}
    for i, group in enumerate(groups):
        stack = stacked.groups[group]
        mp = len(stack.seeds)
        pie = result.flags[group]
        s = {f"dense_modal_acc_{k}": v for k, v in modal_scores(result.modal["dense"], labels, task, pie).items()}
        s.update({f"pruned_modal_acc_{k}": v for k, v in modal_scores(result.modal[group], labels, task, pie).items()})
        s.update(example_bootstrap(result, group, opts.n_resample, np.random.default_rng([opts.seed, i, 1])))
        votes = _pool(dense, stack, task, tie)
        pairs = pm.seed_pairs(group, dense.seeds, stack.seeds)
        s["floor_test"] = pm.floor_test(votes, md, mp, pairs, opts.n_perm, [opts.seed, i, 2])
        s.update(half_sampling(votes, md, mp, pairs, opts.n_half, np.random.default_rng([opts.seed, i, 3])))
        share = majority_pred_share(model_predictions(stack.logits, task, stack.thresholds), task)
        s.update(majority_pred_share=share, collapsed=bool(share > COLLAPSE_SHARE))
        out[group] = s
    p_holm = holm([out[g]["floor_test"]["p_value"] for g in groups])
    for group, p in zip(groups, p_holm):
        test = out[group]["floor_test"]
        test.update(p_holm=float(p), alpha=opts.alpha, n_groups=len(groups))
        if test["min_p"] * len(groups) >= opts.alpha:
            test["note"] = (f"{test['seeds_per_side']} seeds per side cannot reach alpha {opts.alpha} after Holm over "
                            f"{len(groups)} group(s): the smallest p is {test['min_p']:.3g} (docs/claims.md)")
        out[group]["above_floor"] = bool(p < opts.alpha)
    return out, floor


def add_statistics(result: CompareResult, opts: StatOptions | None = None) -> CompareResult:
    """The result with each group's summary extended and `noise_floor` set (in place)."""
    extra, floor = group_statistics(result, opts or StatOptions.from_params())
    for group, s in extra.items():
        result.summary[group].update(s)
    result.noise_floor = floor
    return result
