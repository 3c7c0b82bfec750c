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
combined with Mantel-Haenszel-type weights n_top n_rest / n, studentized (Welch); its p-values
come from reassigning the top set at random within each stratum (under H0 pruning's excess is
placed without regard to EL2N, given the stratum).

Two designs were measured and rejected (docs/calibration.md): the CMH test of PIE flags against
odds ratio 1 (seed noise's hard PIEs made it hold whatever pruning did) and a permutation test
of the weighted odds ratio over relabelings (it rejects whenever pruning changes anything:
harmless PIEs at random EL2N carry full weight observed and little relabeled).
"""

from __future__ import annotations


import numpy as np

from pie_mlops.analysis.permutation import Votes, _chunks, decisive_weights, relabelings

STATISTIC = "excess_decisive_pie_weight_top_minus_rest"  # claims.row_b reads only results of this rule


def expected_weights(votes: Votes, sel: np.ndarray) -> np.ndarray:
    """(n,) each example's mean decisive PIE weight over the relabelings `sel` (P, M) (side A =
    sel, side B = the rest)."""
    total = np.zeros(votes.n)
    for s in _chunks(votes, len(sel)):
        total += decisive_weights(votes, sel[s], ~sel[s])[0].sum(axis=0)
    return total / len(sel)


def _welch(parts: list[tuple[float, np.ndarray, np.ndarray, np.ndarray, np.ndarray, int, int]]):
    """Stratified difference and Welch z from per-stratum sums (each array (P,) or scalar):
    (weight, top sum, top sum of squares, rest sum, rest sum of squares, n_top, n_rest)."""
    num = var = 0.0
    for w, st, sst, sr, ssr, k, r in parts:
        vt, vr = (sst - st * st / k) / (k - 1), (ssr - sr * sr / r) / (r - 1)
        num = num + w * (st / k - sr / r)
        var = var + w * w * (np.maximum(vt, 0.0) / k + np.maximum(vr, 0.0) / r)
    with np.errstate(divide="ignore", invalid="ignore"):
        return num, num / np.sqrt(var)


def stratified_excess(excess: np.ndarray, top: np.ndarray, strata: np.ndarray, n_perm: int = 0, rng=None) -> dict:
    """Mean excess of the top set minus the rest's, per stratum, combined with weights
    n_top n_rest / n, and its Welch z. The p-values come from `n_perm` random reassignments of
    the top set within each stratum (the studentized statistic, so unequal variances and the
    skew of a few large excesses are in the reference distribution; a normal approximation of
    this z rejects too often in the lower tail, docs/calibration.md). A stratum with fewer than 2
    examples on a side is skipped."""
    rows, parts, strata_idx = [], [], []
    wsum = 0.0
    for v in np.unique(strata):
        idx = np.flatnonzero(strata == v)
        a, b = excess[idx[top[idx]]], excess[idx[~top[idx]]]
        rows.append({"stratum": v.item() if hasattr(v, "item") else v, "n_top": int(len(a)), "n_rest": int(len(b)),
                     "excess_top": float(a.mean()) if len(a) else None,
                     "excess_rest": float(b.mean()) if len(b) else None})
        if len(a) < 2 or len(b) < 2:
            continue
        w = len(a) * len(b) / len(idx)
        wsum += w
        parts.append((w, a.sum(), (a * a).sum(), b.sum(), (b * b).sum(), len(a), len(b)))
        strata_idx.append(idx)
    out = {"difference": None, "z": None, "p_value": None, "p_below": None, "n_perm": int(n_perm), "strata": rows}
    if wsum == 0:
        return out
    num, z = _welch(parts)
    out["difference"] = float(num / wsum)
    if not np.isfinite(z) or n_perm < 1:  # no excess anywhere (e.g. no PIEs at all): no information
        return out
    zp = np.empty(n_perm)
    step = max(1, (1 << 22) // max(1, len(excess)))
    for c in range(0, n_perm, step):
        p = min(step, n_perm - c)
        sums = []
        for (w, *_, k, r), idx in zip(parts, strata_idx):
            e = excess[idx]
            pick = np.argpartition(rng.random((p, len(idx))), k, axis=1)[:, :k]  # a random top set of k
            st, sst, tot, tot2 = e[pick].sum(axis=1), (e[pick] ** 2).sum(axis=1), e.sum(), (e * e).sum()
            sums.append((w, st, sst, tot - st, tot2 - sst, k, r))
        zp[c:c + p] = _welch(sums)[1]
    above = int(np.count_nonzero(~(zp < z - 1e-9)))   # ties and undefined draws count against H0
    below = int(np.count_nonzero(~(zp > z + 1e-9)))
    return {**out, "z": float(z), "p_value": (1 + above) / (1 + n_perm), "p_below": (1 + below) / (1 + n_perm)}


def enrichment_test(votes: Votes, md: int, mp: int, pairs: np.ndarray | None, top: np.ndarray,
                    strata: np.ndarray, n_perm: int, seed) -> dict:
    """The excess-weight test (dense side = the first md models of `votes`): each example's
    decisive PIE weight minus its mean over `n_perm` relabelings, the top set's mean excess
    against the rest's within `strata`. p_value: enriched beyond seed noise; p_below: less."""
    obs = np.zeros((1, md + mp), bool)
    obs[0, :md] = True
    observed = decisive_weights(votes, obs, ~obs)[0][0]
    rng = np.random.default_rng(seed)
    sel = relabelings(md, mp, pairs, n_perm, rng)
    excess = observed - expected_weights(votes, sel)
    res = stratified_excess(excess, np.asarray(top, bool), np.asarray(strata), n_perm, rng)
    return {"statistic": STATISTIC, "method": "paired_swap" if pairs is not None
            else "pooled", "n_perm": int(n_perm), "weight_top": float(observed[top].mean()),
            "weight_rest": float(observed[~top].mean()), "excess_top": float(excess[top].mean()),
            "excess_rest": float(excess[~top].mean()), **res}
