"""Claim (b)'s test: is the PIE weight that pruning adds *beyond seed noise* concentrated on the
high-EL2N training examples? (docs/claims.md, (b); docs/calibration.md, "Claim verdicts").
Pure numpy.

Each example's PIE weight is its decisive weight (permutation.decisive_weights: 1 when both
sides vote unanimously for different labels, 0 for a non-PIE or a tie-made PIE). Its seed-noise
expectation is its mean weight over relabelings of the PIE-defining dense and pruned models (as
in the floor test: paired swap when pruned seed s grew from dense seed s, else pooled). The
*excess* PIE weight, observed minus expected, has mean 0 for every example pruning leaves
alone, hard or easy, so seed noise's PIEs (hard, hence high-EL2N, examples) no longer count as
enrichment. The test compares the mean excess of the top-q EL2N examples with the rest's,
within strata (whether the EL2N seeds' own final modal label is right: fixed, as the top set),
combined with Mantel-Haenszel-type weights n_top n_rest / n, against its Welch standard error.

Two designs were measured and rejected (docs/calibration.md): the CMH test of PIE flags against
odds ratio 1 (seed noise's hard PIEs made it hold whatever pruning did) and a permutation test
of the weighted odds ratio over relabelings (it rejects whenever pruning changes anything:
harmless PIEs at random EL2N carry full weight observed and little relabeled).
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats as _st

from pie_mlops.analysis.permutation import Votes, _chunks, decisive_weights, relabelings

STATISTIC = "excess_decisive_pie_weight_top_minus_rest"  # claims.row_b reads only results of this rule


def expected_weights(votes: Votes, sel: np.ndarray) -> np.ndarray:
    """(n,) each example's mean decisive PIE weight over the relabelings `sel` (P, M) (side A =
    sel, side B = the rest)."""
    total = np.zeros(votes.n)
    for s in _chunks(votes, len(sel)):
        total += decisive_weights(votes, sel[s], ~sel[s])[0].sum(axis=0)
    return total / len(sel)


def stratified_excess(excess: np.ndarray, top: np.ndarray, strata: np.ndarray) -> dict:
    """Mean excess of the top set minus the rest's, per stratum, combined with weights
    n_top n_rest / n; Welch standard error, one-sided normal p-values both ways. A stratum with
    fewer than 2 examples on a side carries no variance estimate and is skipped."""
    num = var = wsum = 0.0
    rows = []
    for v in np.unique(strata):
        m = strata == v
        a, b = excess[m & top], excess[m & ~top]
        row = {"stratum": v.item() if hasattr(v, "item") else v, "n_top": int(len(a)), "n_rest": int(len(b)),
               "excess_top": float(a.mean()) if len(a) else None, "excess_rest": float(b.mean()) if len(b) else None}
        rows.append(row)
        if len(a) < 2 or len(b) < 2:
            continue
        w = len(a) * len(b) / (len(a) + len(b))
        num += w * (a.mean() - b.mean())
        var += w * w * (a.var(ddof=1) / len(a) + b.var(ddof=1) / len(b))
        wsum += w
    out = {"difference": None, "z": None, "p_value": None, "p_below": None, "strata": rows}
    if wsum == 0:
        return out
    out["difference"] = num / wsum
    if var <= 0:  # no excess anywhere (e.g. no PIEs at all): no information
        return out
    z = num / math.sqrt(var)
    return {**out, "z": z, "p_value": float(_st.norm.sf(z)), "p_below": float(_st.norm.cdf(z))}


def enrichment_test(votes: Votes, md: int, mp: int, pairs: np.ndarray | None, top: np.ndarray,
                    strata: np.ndarray, n_perm: int, seed) -> dict:
    """The excess-weight test (dense side = the first md models of `votes`): each example's
    decisive PIE weight minus its mean over `n_perm` relabelings, the top set's mean excess
    against the rest's within `strata`. p_value: enriched beyond seed noise; p_below: less."""
    obs = np.zeros((1, md + mp), bool)
    obs[0, :md] = True
    observed = decisive_weights(votes, obs, ~obs)[0][0]
    sel = relabelings(md, mp, pairs, n_perm, np.random.default_rng(seed))
    excess = observed - expected_weights(votes, sel)
    res = stratified_excess(excess, np.asarray(top, bool), np.asarray(strata))
    return {"statistic": STATISTIC, "method": "paired_swap" if pairs is not None
            else "pooled", "n_perm": int(n_perm), "weight_top": float(observed[top].mean()),
            "weight_rest": float(observed[~top].mean()), "excess_top": float(excess[top].mean()),
            "excess_rest": float(excess[~top].mean()), **res}
