"""The claims' statistics (pure): the held-out half-split of (a) and (d2), CMH for (b), Cramér's
V for (d1); hand-built cases and small simulations with a known truth."""

import numpy as np
import pytest

from pie_mlops.analysis import classes as cls
from pie_mlops.analysis import el2n as el
from pie_mlops.analysis import heldout as ho
from pie_mlops.analysis.group_stats import modal_scores
from pie_mlops.compare.pies import modal_labels, pie_flags
from pie_mlops.compare.stacking import GroupStack


def stack(preds: np.ndarray, seeds=None) -> GroupStack:
    """(m, n) predicted classes -> a GroupStack with one-hot logits (binary)."""
    m, n = preds.shape
    logits = np.zeros((m, n, 2), np.float32)
    logits[np.arange(m)[:, None], np.arange(n), preds] = 1.0
    return GroupStack(seeds=np.arange(m) if seeds is None else np.asarray(seeds), logits=logits, thresholds=None)


def simulate(rng, n=600, m=10, planted=0.0):
    """Examples of varying difficulty; pruned models are more dense seeds (planted=0), or get
    a fixed `planted` share of the examples wrong far more often."""
    y = rng.integers(0, 2, n)
    p_right = rng.beta(5, 1.5, n)
    hit = rng.random(n) < planted

    def models(flip):
        p = np.where(flip, 0.15, p_right)
        return stack(np.where(rng.random((m, n)) < p, y, 1 - y))
    return y, models(np.zeros(n, bool)), models(hit)


def test_half_split_is_not_the_in_sample_identity():
    """In-sample, modal drop on all == share x modal drop on PIEs exactly; on held-out seeds it is not."""
    y, d, p = simulate(np.random.default_rng(3), planted=0.05)
    dm, pm = modal_labels(d.logits), modal_labels(p.logits)
    pie = pie_flags(dm, pm)
    ds, ps = modal_scores(dm, y, "single_label", pie), modal_scores(pm, y, "single_label", pie)
    assert ds["all"] - ps["all"] == pytest.approx(pie.mean() * (ds["pie"] - ps["pie"]), abs=1e-12)
    r = ho.half_split(d, p, y, "single_label", n_splits=5, n_boot=200, seed=0)
    held = r["share"]["value"] * r["drop_pie"]["value"]
    assert abs(r["drop_all"]["value"] - held) > 1e-3   # the non-PIEs carry some of the held-out drop
    assert r["did"]["ci"][0] > 0 and r["seeds_per_half"] == [5, 5]
    for key in ("did", "drop_pie", "drop_all", "share"):
        lo, hi = r[key]["ci"]
        assert lo <= r[key]["value"] <= hi


def test_half_split_false_positive_rate_and_power():
    """The (a) test (CI of held-out drop on PIEs minus on non-PIEs above 0) on 40 simulated
    studies each: null (pruned = more dense seeds) and 5% of examples planted."""
    rng = np.random.default_rng(7)
    fp, power = 0, 0
    for i in range(40):
        y, d, p = simulate(rng)
        fp += ho.half_split(d, p, y, "single_label", n_splits=4, n_boot=200, seed=i)["did"]["ci"][0] > 0
        y, d, p = simulate(rng, planted=0.05)
        power += ho.half_split(d, p, y, "single_label", n_splits=4, n_boot=200, seed=i)["did"]["ci"][0] > 0
    assert fp <= 4 and power >= 32   # one-sided 2.5% nominal: <= 10% of 40 (Monte-Carlo room); >= 80%


def test_half_splits_keep_paired_seeds_on_one_side():
    for dd, dh, pd_, ph in ho.half_splits(np.arange(20), np.arange(10), 5, seed=0):
        assert len(dd) == len(dh) == 10 and len(pd_) == len(ph) == 5
        assert not set(np.arange(10)[ph]) & set(np.arange(20)[dd])   # held-out pruned not grown from definers


def test_per_class_drop_names_every_class_and_overall_drop_has_a_ci():
    y, d, p = simulate(np.random.default_rng(1), planted=0.05)
    r = ho.half_split(d, p, y, "single_label", n_splits=3, n_boot=100, n_classes=2)
    assert [c["class"] for c in r["per_class"]] == [0, 1] and all(c["ci"][0] > 0 for c in r["per_class"])
    o = ho.overall_drop(d, p, y, "single_label", n_boot=100)
    assert o["ci"][0] <= o["value"] <= o["ci"][1]
    assert ho.half_split(stack(np.zeros((1, 5), int)), p, y, "single_label") == {}   # one model: no halves


def test_cmh_by_hand_and_it_removes_a_confounder():
    one = el.cmh_test(np.array([[[10, 5], [5, 10]]]))
    # E[a] = 15*15/30 = 7.5, Var = 15^4 / (30^2 * 29); (|10 - 7.5| - 0.5)^2 / Var
    assert one["statistic"] == pytest.approx(4.0 / (15 ** 4 / (900 * 29))) and one["odds_ratio"] == pytest.approx(4.0)
    # Within each stratum, top and rest hold PIEs at the same rate; pooled, top looks enriched
    # only because the top is mostly the dense-wrong stratum, where PIEs are common.
    strata = np.array([[[40, 40], [10, 10]], [[2, 18], [20, 180]]])
    r = el.cmh_test(strata)
    assert r["odds_ratio"] == pytest.approx(1.0) and r["p_value"] > 0.5
    pooled = strata.sum(0)
    assert (pooled[0, 0] / pooled[0].sum()) / (pooled[1, 0] / pooled[1].sum()) > 2
    assert el.cmh_test(np.zeros((2, 2, 2)))["p_value"] is None


def test_stratified_enrichment_tables():
    el2n = np.arange(10.0)
    pie = np.array([0, 0, 0, 0, 0, 0, 0, 0, 1, 1], bool)
    r = el.stratified_enrichment(el2n, pie, np.array([0] * 5 + [1] * 5), q=0.2)
    assert r["k"] == 2 and [s["table"] for s in r["strata"]] == [[[0, 0], [0, 5]], [[2, 0], [0, 3]]]


def test_cramers_v_zero_when_proportional_high_when_concentrated():
    y = np.repeat([0, 1, 2], [100, 200, 300])
    prop = np.zeros(600, bool)
    prop[[*range(10), *range(100, 120), *range(300, 330)]] = True      # 10% of every class
    r = cls.cramers_v(y, prop, 3, n_boot=200)
    # V >= 0, so its bootstrap leans upwards: with 60 PIEs the top end still reaches about 0.1
    assert r["value"] == pytest.approx(0.0, abs=1e-12) and r["ci"][0] < 0.05
    conc = np.zeros(600, bool)
    conc[:60] = True                                                     # all PIEs in class 0
    r = cls.cramers_v(y, conc, 3, n_boot=200)
    from scipy.stats import chi2_contingency
    obs = np.array([[60, 0, 0], [40, 200, 300]])
    assert r["value"] == pytest.approx(np.sqrt(chi2_contingency(obs, correction=False)[0] / 600))
    assert r["ci"][0] > 0.1 and cls.cramers_v(y, np.zeros(600, bool))["value"] is None


def test_cramers_v_verdict_calibration_under_proportional_pies():
    """(d1) holds when V's CI is below 0.1: with PIEs at one rate in every class (truth V = 0),
    the CI's top stays under the margin in most studies; with PIEs in one class it never does."""
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 2000)
    holds = sum(cls.cramers_v(y, rng.random(2000) < 0.1, 3, n_boot=200, seed=i)["ci"][1] < 0.1 for i in range(20))
    conc = sum(cls.cramers_v(y, (y == 0) & (rng.random(2000) < 0.3), 3, n_boot=200, seed=i)["ci"][1] < 0.1
               for i in range(20))
    assert holds >= 18 and conc == 0
