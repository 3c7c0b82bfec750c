"""Claim (b)'s test (analysis/enrichment_perm.py): the stratified excess by hand, the expected
weight over every relabeling, and the confound it exists for: seed-noise PIEs on hard (high-
EL2N) examples make the CMH test hold, pruning's easy PIEs do not; its false-positive rate in
both nulls."""

import itertools

import numpy as np
import pytest

from pie_mlops.analysis import el2n as el
from pie_mlops.analysis import enrichment_perm as ep
from pie_mlops.analysis import permutation as pm


def votes_of(preds: np.ndarray) -> pm.Votes:
    """(m, n) predicted classes -> binary Votes of one-hot logits."""
    m, n = preds.shape
    logits = np.zeros((m, n, 2), np.float32)
    logits[np.arange(m)[:, None], np.arange(n), preds] = 4.0
    return pm.Votes(logits, "single_label", None, "probability")


def test_stratified_excess_by_hand():
    """Two strata: stratum 0 top (1, 0.5), rest (0, 0.5, 0) -> difference 0.75 - 1/6 = 7/12, weight
    2*3/5; stratum 1 top (0.2, 0.4), rest (0.1, 0.3) -> 0.1, weight 1. Welch variance per stratum."""
    ex = np.array([1.0, 0.5, 0.0, 0.5, 0.0, 0.2, 0.4, 0.1, 0.3])
    top = np.array([1, 1, 0, 0, 0, 1, 1, 0, 0], bool)
    strata = np.array([0, 0, 0, 0, 0, 1, 1, 1, 1])
    r = ep.stratified_excess(ex, top, strata)
    w0, w1 = 6 / 5, 1.0
    v0 = np.var([1, 0.5], ddof=1) / 2 + np.var([0, 0.5, 0], ddof=1) / 3
    v1 = np.var([0.2, 0.4], ddof=1) / 2 + np.var([0.1, 0.3], ddof=1) / 2
    num = w0 * (0.75 - 1 / 6) + w1 * 0.1
    assert r["difference"] == pytest.approx(num / (w0 + w1))
    assert r["z"] is None and r["p_value"] is None                 # no reassignments asked for: no p-value
    r = ep.stratified_excess(ex, top, strata, 4000, np.random.default_rng(0))
    assert r["z"] == pytest.approx(num / np.sqrt(w0 ** 2 * v0 + w1 ** 2 * v1))
    # The exact reference: every reassignment of the top pair within each stratum (C(5,2) x C(4,2) = 60).
    zs = []
    for t0 in itertools.combinations(range(5), 2):
        for t1 in itertools.combinations(range(5, 9), 2):
            t = np.zeros(9, bool)
            t[list(t0) + list(t1)] = True
            zs.append(ep.stratified_excess(ex, t, strata, 1, np.random.default_rng(0))["z"])
    zs = np.array(zs, dtype=float)
    exact = np.mean(~(zs < r["z"] - 1e-9))
    assert r["p_value"] == pytest.approx(exact, abs=0.03) and r["p_below"] == pytest.approx(np.mean(~(zs > r["z"] + 1e-9)), abs=0.03)
    assert [x["n_top"] for x in r["strata"]] == [2, 2]
    assert ep.stratified_excess(np.zeros(9), top, strata, 100, np.random.default_rng(0))["p_value"] is None  # no excess


def test_expected_weight_is_the_mean_over_every_relabeling():
    """2 pairs: 4 relabelings; the Monte-Carlo mean over 4,000 matches the exact one, and the
    observed labeling's excess has mean ~0 over the exact set (it is one of them)."""
    rng = np.random.default_rng(1)
    n, y = 400, rng.integers(0, 2, 400)
    preds = np.where(rng.random((4, n)) < 0.7, y, 1 - y)
    votes, pairs = votes_of(preds), np.array([0, 1])
    exact = []
    for swap in itertools.product([False, True], repeat=2):
        sel = np.zeros((1, 4), bool)
        sel[0, :2] = True
        for j, s in enumerate(swap):
            sel[0, pairs[j]], sel[0, 2 + j] = not s, s
        exact.append(pm.decisive_weights(votes, sel, ~sel)[0][0])
    assert np.allclose(exact[0], exact[3])                   # the mirror image (both pairs swapped)
    sel = pm.relabelings(2, 2, pairs, 4000, np.random.default_rng(0))
    assert np.allclose(ep.expected_weights(votes, sel), np.mean(exact, axis=0), atol=0.03)


def simulate(rng, n=3000, m=10, planted_easy=0.0, planted_hard=0.0, planted_random=0.0, top_random=False):
    """Dense and pruned models with per-example chances: 10% hard (right with chance 0.35-0.65),
    the rest easier (0.7-0.97); EL2N = final difficulty, the hard 10% on top (the confound: seed-noise
    PIEs are hard examples, and hard examples have a high EL2N). Pruning flips a planted set in
    every pruned model: easy examples (`planted_easy`), hard ones, or any (`planted_random`).
    `top_random`: the top-10% EL2N set drawn at random (EL2N unrelated to anything, the null of
    a pruning effect placed without regard to EL2N)."""
    y = rng.integers(0, 2, n)
    top = np.arange(n) < n // 10                             # top-10% EL2N
    hard_set = top if not top_random else top.copy()
    top = rng.permutation(top) if top_random else top
    q = np.where(hard_set, rng.uniform(0.35, 0.65, n), rng.uniform(0.7, 0.97, n))
    qd, qp = q.copy(), q.copy()
    easy = np.flatnonzero(~top)[: int(planted_easy * n)]
    hard = np.flatnonzero(hard_set)[: int(planted_hard * n)]
    anywhere = rng.permutation(n)[: int(planted_random * n)]
    for idx in (easy, hard, anywhere):
        qd[idx], qp[idx] = 0.97, 0.03
    preds = [np.where(rng.random((m, n)) < c, y, 1 - y) for c in (qd, qp)]
    el2n_seeds = np.where(rng.random((m, n)) < qd, y, 1 - y)  # the disjoint dense seeds: the fixed strata
    right = (2 * (el2n_seeds == y).sum(axis=0) > m)
    return votes_of(np.concatenate(preds)), top, y, right


def cmh_of(votes, top, y, m=10):
    """The 2026-12-06.1 rule: CMH, strata from the PIE-defining dense side."""
    obs = np.zeros((1, 2 * m), bool)
    obs[0, :m] = True
    la, lb = votes.binary_side(obs)[1][0], votes.binary_side(~obs)[1][0]
    scores = top + np.arange(len(top)) * 1e-9
    return el.stratified_enrichment(scores, la != lb, (la == y).astype(int), 0.1)


def test_the_confound_holds_under_cmh_but_not_against_seed_noise():
    rng = np.random.default_rng(2)
    pairs = np.arange(10)
    votes, top, y, right = simulate(rng, planted_easy=0.01)   # pruning's PIEs are easy: (b) is false
    cmh = cmh_of(votes, top, y)
    assert cmh["odds_ratio"] > 1 and cmh["p_value"] < 0.05    # the old rule: holds
    r = ep.enrichment_test(votes, 10, 10, pairs, top, right, 1000, 0)
    assert r["p_value"] >= 0.05 and r["p_below"] < 0.5        # not holds: pruning's excess leans to the rest
    assert r["weight_top"] > r["weight_rest"] and r["excess_top"] < r["excess_rest"]  # noise PIEs are on top
    votes, top, y, right = simulate(rng, planted_hard=0.01)   # pruning's PIEs are hard: (b) is true
    r = ep.enrichment_test(votes, 10, 10, pairs, top, right, 1000, 0)
    assert r["p_value"] < 0.05 and r["excess_top"] > r["excess_rest"]


def test_false_positive_rate_under_both_nulls():
    """Pruned models that are more dense seeds, and pruning that flips a planted 2% of the
    examples at random EL2N (it changes the models, not in a way (b) is about: the case the
    permutation of the odds ratio failed, 14%)."""
    rng = np.random.default_rng(3)
    for kind in ("exchangeable", "random_effect"):
        hits = 0
        for i in range(40):
            planted = {} if kind == "exchangeable" else {"planted_random": 0.02, "top_random": True}
            votes, top, _, right = simulate(rng, n=1500, **planted)
            hits += ep.enrichment_test(votes, 10, 10, np.arange(10), top, right, 200, i)["p_value"] < 0.05
        assert hits <= 5, kind                                 # nominal 2 of 40; 6 or more is p ~ 0.05 binomial
    # Planted at random but EL2N = final difficulty: planting makes hard top examples dense-easy
    # without moving their EL2N, so within the "right" stratum the top holds more of them: an
    # association the stratified test is built to see (not a null; see simulate).
