"""Claim (b)'s test: are the PIEs more high-EL2N than the PIEs seed noise alone makes at the same
seeds? (docs/claims.md, (b); docs/calibration.md, "Claim verdicts"). Pure numpy.

The EL2N scores (from dense seeds disjoint from the PIE-defining models) and so the top-q set
stay fixed; the PIE-defining dense and pruned models are relabeled as in the floor test
(permutation.py: paired swap when pruned seed s was grown from dense seed s, else pooled), and
each relabeling's PIEs are recomputed. Statistic: the log Mantel-Haenszel common odds ratio of
(top-q EL2N) x (PIE), stratified by whether the EL2N seeds' own final modal label is right
(fixed: strata from the relabeled dense side put pruning's flipped examples in the "wrong"
stratum whenever that side holds mostly pruned models, which skews the null), each PIE counted with its decisive weight (the floor test's:
how decisively both sides voted for their own label). With plain PIE flags the test has no
power: examples that pruning flips in every pruned model stay PIEs under almost every
relabeling (either side holds a majority of pruned models), as the floor test found for the
plain PIE share; relabeled, their votes are split and their weight small. A CMH test against "odds ratio 1" cannot tell pruning's PIEs
from seed noise's: when EL2N tracks final difficulty, noise PIEs (hard examples) are high-EL2N
whatever pruning does. Against the relabelings, seed noise is the reference.
"""

from __future__ import annotations

import math

import numpy as np

from pie_mlops.analysis.permutation import Votes, _chunks, decisive_weights, relabelings


def mh_log_odds(top: np.ndarray, pie: np.ndarray, right: np.ndarray) -> np.ndarray:
    """(P,) log Mantel-Haenszel common odds ratio of (top) x (PIE) over two strata (right or
    not), for each of P rows. top (n,) bool; pie (P, n) PIE flags or weights in [0, 1] (a
    weight w counts w PIEs and 1 - w non-PIEs); right (n,) or (P, n) bool. +-inf where one MH sum is
    0, NaN where both are (no information). Strata an unstratified CMH would skip (empty
    margin, < 2 examples) add 0 to both sums, as in `el2n.cmh_test`."""
    t = top.astype(np.float32)
    w = np.asarray(pie, dtype=np.float32)
    right = np.broadcast_to(right, w.shape)
    num = np.zeros(len(w))
    den = np.zeros(len(w))
    for s in (right, ~right):
        n_s = s.sum(axis=1, dtype=np.float64)
        sw = s * w
        top_s = s.astype(np.float32) @ t                    # counts < 2^24: exact in float32
        a = (sw @ t).astype(np.float64)                      # top and PIE
        b, c = top_s - a, sw.sum(axis=1, dtype=np.float64) - a   # top, not PIE; PIE, not top
        d = n_s - top_s - c
        n_safe = np.maximum(n_s, 1.0)
        num += a * d / n_safe
        den += b * c / n_safe
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.log(num) - np.log(den)


def _stats(votes: Votes, sel_a: np.ndarray, sel_b: np.ndarray, top: np.ndarray, right: np.ndarray) -> np.ndarray:
    out = np.empty(len(sel_a))
    for s in _chunks(votes, len(sel_a)):
        out[s] = mh_log_odds(top, decisive_weights(votes, sel_a[s], sel_b[s])[0], right)
    return out


def enrichment_test(votes: Votes, md: int, mp: int, pairs: np.ndarray | None, top: np.ndarray,
                    right: np.ndarray, n_perm: int, seed) -> dict:
    """Permutation test of the top-q x PIE enrichment (dense side = the first md models of
    `votes`), stratified by `right` (n,) (fixed: not from the relabeled models), against
    `n_perm` relabelings: p_value = (1 + #{T_perm >= T_obs}) / (1 + n_perm)
    (enriched beyond seed noise), p_below = (1 + #{T_perm <= T_obs}) / (1 + n_perm) (less
    than seed noise). A relabeling whose statistic is undefined (NaN) counts against both."""
    obs = np.zeros((1, md + mp), bool)
    obs[0, :md] = True
    t_obs = float(_stats(votes, obs, ~obs, top, right)[0])
    sel = relabelings(md, mp, pairs, n_perm, np.random.default_rng(seed))
    t = _stats(votes, sel, ~sel, top, right)
    # The weights are blind to a relabeling's mirror image (as the floor test's statistic).
    configs = (2.0 ** mp if pairs is not None else float(math.comb(md + mp, md))) / (2.0 if md == mp else 1.0)
    out = {"statistic": "decisive_mh_log_odds_ratio", "method": "paired_swap" if pairs is not None else "pooled",
           "n_perm": int(n_perm), "min_p": min(1.0, 1.0 / configs), "observed": t_obs,
           "odds_ratio": math.exp(t_obs) if math.isfinite(t_obs) else None, "p_value": None, "p_below": None}
    finite = t[np.isfinite(t)]
    if len(finite):
        out["null_odds_ratio"] = float(np.exp(np.median(finite)))  # the seed-noise PIEs' enrichment
    if math.isnan(t_obs):
        return out
    above = int(np.count_nonzero(~(t < t_obs - 1e-9)))   # ties (float noise) and NaN count against H0
    below = int(np.count_nonzero(~(t > t_obs + 1e-9)))
    return {**out, "p_value": (1 + above) / (1 + n_perm), "p_below": (1 + below) / (1 + n_perm)}
