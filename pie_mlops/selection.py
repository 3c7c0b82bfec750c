"""PIE-aware model selection: which pruned model can I ship? Pure numpy/pandas, no I/O.

Mean accuracy hides the damage pruning concentrates on a few examples, so a candidate is
judged on the **pruning-sensitive subset** too: the union of the PIE sets of every pruned
group in the comparison (the examples some pruning method breaks). A model version is
eligible when, on that subset and on all examples, its accuracy stays within `tolerance`
of the dense group's mean. The champion is the sparsest eligible version; ties go to the
higher subset accuracy, then the higher overall accuracy, then the lower seed.

The union, not the candidate's own PIEs: on its own PIEs a candidate's modal label differs
from dense by definition, so its accuracy there is low for every group and says nothing.
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


def select_champion(candidates: pd.DataFrame, dense_acc_subset: float, dense_acc_all: float,
                    tolerance: float) -> dict | None:
    """The champion row of `candidates` (columns group, seed, sparsity, acc_subset, acc_all), as a
    dict with its `reason`, or None when no version is within `tolerance` of dense."""
    if tolerance < 0:
        raise ValueError(f"tolerance must be >= 0, got {tolerance}")
    if candidates.empty:
        return None
    c = candidates.copy()
    # An empty subset (no PIEs anywhere) constrains nothing: NaN counts as within tolerance.
    sub_ok = c["acc_subset"].isna() | (c["acc_subset"] >= dense_acc_subset - tolerance - 1e-12)
    all_ok = c["acc_all"] >= dense_acc_all - tolerance - 1e-12
    ok = c[sub_ok & all_ok]
    if ok.empty:
        return None
    ok = ok.assign(_sub=ok["acc_subset"].fillna(-1.0))
    best = ok.sort_values(["sparsity", "_sub", "acc_all", "seed"], ascending=[False, False, False, True]).iloc[0]
    row = {k: best[k] for k in ("group", "seed", "sparsity", "acc_subset", "acc_all")}
    row["seed"] = int(row["seed"])
    row["reason"] = (f"sparsest version within {tolerance:g} of dense: sparsity {row['sparsity']:g}, "
                     f"accuracy on the pruning-sensitive subset {_fmt(row['acc_subset'])} vs dense "
                     f"{_fmt(dense_acc_subset)}, on all examples {_fmt(row['acc_all'])} vs dense {_fmt(dense_acc_all)}")
    return row


def _fmt(x) -> str:
    return "n/a" if x is None or (isinstance(x, float) and np.isnan(x)) else f"{x:.4f}"
