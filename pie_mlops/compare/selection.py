"""PIE-aware model selection: which pruned model can I ship? Pure numpy/pandas, no I/O.

Mean accuracy hides the damage pruning concentrates on a few examples, so a candidate is
judged on the **pruning-sensitive subset** too: the union of the PIE sets of every pruned
group in the comparison (the examples some pruning method breaks). A model version is
eligible when, on that subset and on all examples, its accuracy stays within `tolerance`
of the dense group's mean. The champion is the sparsest eligible version; ties go to the
higher subset accuracy, then the higher overall accuracy, then the lower seed.

The union, not the candidate's own PIEs: on its own PIEs a candidate's modal label differs
from dense by definition, so its accuracy there is low for every group and says nothing.

`choose_champion` adds the guards against a model that learned nothing (docs/gates.md):
the dense models must beat the trivial baseline by `min_gain`, and so must the champion;
collapsed groups (one class for > 95% of examples) are neither candidates nor part of the
sensitive subset; and with no sensitive examples there is nothing to judge a candidate on,
so there is no champion rather than a vacuous pass.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def sensitive_subset(flags: dict[str, np.ndarray]) -> np.ndarray:
    """(n,) bool: the example is a PIE of at least one pruned group."""
    arrays = list(flags.values())
    if not arrays:
        return np.zeros(0, dtype=bool)
    return np.logical_or.reduce(np.stack(arrays), axis=0)


def model_scores(test, flags: dict[str, np.ndarray], own: dict[str, np.ndarray] | None = None) -> pd.DataFrame:
    """Each model's accuracy (macro-F1 multi-label) on all examples, its group's PIEs and non-PIEs
    (`own`, default `flags`), and the pruning-sensitive subset (the union of the PIE sets in `flags`)."""
    from pie_mlops.compare.pies import model_predictions
    from pie_mlops.compare.pies import model_scores as scores_on
    from pie_mlops.report.plot_tables import sparsity_of

    sensitive = sensitive_subset(flags)
    columns = {}
    rows = []
    for group, stack in test.groups.items():
        preds = model_predictions(stack.logits, test.task, stack.thresholds)
        pie = (flags if own is None else own).get(group, np.zeros(len(test.example_ids), dtype=bool))
        masks = {"acc_all": np.ones_like(pie), "acc_pie": pie, "acc_nonpie": ~pie, "acc_subset": sensitive}
        columns = {name: scores_on(preds, test.labels, test.task, mask) for name, mask in masks.items()}
        for i, seed in enumerate(stack.seeds):
            rows.append({"group": group, "seed": int(seed), "sparsity": sparsity_of(group),
                         **{name: float(v[i]) for name, v in columns.items()}})
    return pd.DataFrame(rows)


def select_champion(candidates: pd.DataFrame, dense_acc_subset: float, dense_acc_all: float,
                    tolerance: float) -> dict | None:
    """The champion row of `candidates` (columns group, seed, sparsity, acc_subset, acc_all), as a
    dict with its `reason`, or None when no version is within `tolerance` of dense."""
    if tolerance < 0:
        raise ValueError(f"tolerance must be >= 0, got {tolerance}")
    if candidates.empty:
        return None
    c = candidates.copy()
    # An empty subset (no PIEs anywhere) cannot vouch for anyone: NaN is not within tolerance.
    sub_ok = c["acc_subset"].notna() & (c["acc_subset"] >= dense_acc_subset - tolerance - 1e-12)
    all_ok = c["acc_all"] >= dense_acc_all - tolerance - 1e-12
    ok = c[sub_ok & all_ok]
    if ok.empty:
        return None
    best = ok.sort_values(["sparsity", "acc_subset", "acc_all", "seed"], ascending=[False, False, False, True]).iloc[0]
    row = {k: best[k] for k in ("group", "seed", "sparsity", "acc_subset", "acc_all")}
    row["seed"] = int(row["seed"])
    # A quantized group has no sparsity (NaN, sorted last): it wins when no pruned version qualifies.
    what = "no pruned version qualifies; quantized" if pd.isna(row["sparsity"]) else f"sparsity {row['sparsity']:g}"
    row["reason"] = (f"sparsest version within {tolerance:g} of dense: {what}, "
                     f"accuracy on the pruning-sensitive subset {_fmt(row['acc_subset'])} vs dense "
                     f"{_fmt(dense_acc_subset)}, on all examples {_fmt(row['acc_all'])} vs dense {_fmt(dense_acc_all)}")
    row["sparsity"] = None if pd.isna(row["sparsity"]) else float(row["sparsity"])  # JSON has no NaN
    return row


def choose_champion(candidates: pd.DataFrame, dense_acc_subset: float, dense_acc_all: float, tolerance: float,
                    *, baseline: float, min_gain: float, dense_scores: dict[str, float],
                    collapsed: set[str] = frozenset(), baseline_name: str = "the trivial baseline") -> dict:
    """The champion row (as `select_champion`) or `{"champion": None, "reason": ...}` saying why
    no version qualifies. `dense_scores`: each dense model's score ("dense/s0": 0.67) on the
    baseline's scale; `collapsed`: pruned groups that predict one class."""
    bar = baseline + min_gain - 1e-12

    def none(reason: str) -> dict:
        return {"champion": None, "reason": reason, "baseline": baseline, "min_gain": min_gain}

    weak = [f"{k} {v:.4f}" for k, v in sorted(dense_scores.items()) if not v >= bar]
    if weak or not dense_scores:
        return none(f"the dense models did not beat {baseline_name} {_fmt(baseline)} by {min_gain:g} "
                    f"({', '.join(weak) or 'no dense models'}): nothing to compare a pruned version with")
    c = candidates[~candidates["group"].isin(set(collapsed))] if not candidates.empty else candidates
    if c.empty:
        return none("no pruned version to choose from" if candidates.empty else
                    f"every pruned group collapsed to one class ({', '.join(sorted(set(collapsed)))})")
    if c["acc_subset"].isna().all():
        return none("no pruning-sensitive examples (no PIEs in any non-collapsed group): the versions cannot "
                    "be judged on them")
    c = c[c["acc_all"] >= bar]
    if c.empty:
        return none(f"no pruned version beats {baseline_name} {_fmt(baseline)} by {min_gain:g}")
    row = select_champion(c, dense_acc_subset, dense_acc_all, tolerance)
    if row is None:
        return none(f"no pruned version within {tolerance:g} of dense on all examples and on the "
                    f"pruning-sensitive ones")
    row.update(champion=f"{row['group']}-s{row['seed']}", baseline=baseline, min_gain=min_gain)
    row["reason"] += f"; beats {baseline_name} {_fmt(baseline)} by {row['acc_all'] - baseline:.4f}"
    return row


def _fmt(x) -> str:
    return "n/a" if x is None or (isinstance(x, float) and np.isnan(x)) else f"{x:.4f}"
