"""Claim (b)'s permutation test (analysis/enrichment_perm.py): the decisive-weighted MH odds
ratio by hand, its exact p-value over every relabeling, and the confound it exists for: seed-
noise PIEs on hard (high-EL2N) examples make the CMH test hold, pruning's easy PIEs do not."""

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


def test_mh_log_odds_by_hand_and_as_cmh_with_flags():
    top = np.array([1, 1, 1, 0, 0, 0, 0, 0], bool)
    pie = np.array([[1, 1, 0, 1, 0, 0, 0, 0]], bool)
    right = np.array([[1, 1, 1, 1, 1, 1, 1, 1]], bool)
    # one stratum: a=2, b=1, c=1, d=4 -> OR = (2*4)/(1*1) = 8
    assert ep.mh_log_odds(top, pie, right)[0] == pytest.approx(np.log(8.0))
    rng = np.random.default_rng(0)
    for _ in range(5):                                       # 0/1 weights: the MH odds ratio of el2n.py
        scores, pie, right = rng.random(300), rng.random(300) < 0.2, rng.random(300) < 0.7
        r = el.stratified_enrichment(scores, pie, right.astype(int), q=0.1)
        top = scores >= np.sort(scores)[-r["k"]]
        assert ep.mh_log_odds(top, pie[None], right[None])[0] == pytest.approx(np.log(r["odds_ratio"]))
    # a weight w counts w PIEs: top example weighted 0.5 -> a = 0.5, b = 0.5; rest: c = 1, d = 2
    top, w = np.array([1, 0, 0, 0], bool), np.array([[0.5, 1.0, 0.0, 0.0]])
    assert ep.mh_log_odds(top, w, np.ones((1, 4), bool))[0] == pytest.approx(np.log((0.5 * 2 / 4) / (0.5 * 1 / 4)))
    assert np.isnan(ep.mh_log_odds(top, np.zeros((1, 4)), np.ones((1, 4), bool))[0])   # no PIE: no information


def test_p_value_is_the_share_of_relabelings_at_least_as_enriched():
    """2 pairs: 4 relabelings, each statistic computed from hand-built selections; p from 4,000
    random relabelings matches the exact share."""
    rng = np.random.default_rng(1)
    n, y = 400, rng.integers(0, 2, 400)
    preds = np.where(rng.random((4, n)) < 0.7, y, 1 - y)
    votes, top, right = votes_of(preds), rng.random(n) < 0.1, rng.random(n) < 0.7
    pairs = np.array([0, 1])
    exact = []
    for swap in itertools.product([False, True], repeat=2):
        sel = np.zeros((1, 4), bool)
        sel[0, :2] = True
        for j, s in enumerate(swap):
            sel[0, pairs[j]], sel[0, 2 + j] = not s, s
        exact.append(ep._stats(votes, sel, ~sel, top, right)[0])
    assert exact[0] == pytest.approx(exact[3])               # the mirror image (both pairs swapped)
    r = ep.enrichment_test(votes, 2, 2, pairs, top, right, 4000, 0)
    assert r["observed"] == pytest.approx(exact[0]) and r["min_p"] == 0.5
    share = np.mean([e >= exact[0] - 1e-9 or np.isnan(e) for e in exact])
    assert r["p_value"] == pytest.approx(share, abs=0.03)


def simulate(rng, n=3000, m=10, planted_easy=0.0, planted_hard=0.0):
    """Dense and pruned models with per-example chances: 10% hard (right with chance 0.35-0.65),
    the rest easier (0.7-0.97); EL2N = final difficulty, the hard 10% on top (the confound: seed-noise
    PIEs are hard examples, and hard examples have a high EL2N). Pruning flips a planted set in
    every pruned model: easy examples (`planted_easy`) or hard ones."""
    y = rng.integers(0, 2, n)
    top = np.arange(n) < n // 10                             # top-10% EL2N
    q = np.where(top, rng.uniform(0.35, 0.65, n), rng.uniform(0.7, 0.97, n))
    qd, qp = q.copy(), q.copy()
    easy = np.flatnonzero(~top)[: int(planted_easy * n)]
    hard = np.flatnonzero(top)[: int(planted_hard * n)]
    for idx in (easy, hard):
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
    assert r["p_value"] >= 0.05 and r["p_below"] < 0.05       # less enriched than seed noise: refuted
    votes, top, y, right = simulate(rng, planted_hard=0.01)   # pruning's PIEs are hard: (b) is true
    r = ep.enrichment_test(votes, 10, 10, pairs, top, right, 1000, 0)
    assert r["p_value"] < 0.05 and r["odds_ratio"] > r["null_odds_ratio"] > 1


def test_false_positive_rate_when_pruned_models_are_more_dense_seeds():
    rng = np.random.default_rng(3)
    hits = 0
    for i in range(20):
        votes, top, _, right = simulate(rng, n=1500)
        hits += ep.enrichment_test(votes, 10, 10, np.arange(10), top, right, 200, i)["p_value"] < 0.05
    assert hits <= 3                                           # nominal 1 of 20; 3 is p ~ 0.08 binomial
