"""EL2N, percentile bins, the loss-ratio/PIE-share table and top-q enrichment, by hand."""

import numpy as np
import pytest

from pie_mlops.analysis import el2n
from pie_mlops.analysis.run import example_losses


def test_el2n_single_label_by_hand_averaged_over_models():
    # model 1: p = (.5, .5) -> error (-.5, .5), norm sqrt(.5); model 2: p = (.75, .25) -> sqrt(2)/4.
    logits = np.array([[[0.0, 0.0]], [[np.log(3.0), 0.0]]])
    got = el2n.el2n_scores(logits, np.array([0]))
    assert got == pytest.approx([(np.sqrt(0.5) + np.sqrt(2) / 4) / 2])


def test_el2n_multi_label_scores_each_label_with_a_sigmoid():
    logits = np.array([[0.0, 0.0, np.log(3.0)]])  # sigmoids .5, .5, .75 against (1, 0, 1)
    got = el2n.el2n_scores(logits, np.array([[1, 0, 1]]), task="multi_label")
    assert got == pytest.approx([np.sqrt(0.25 + 0.25 + 0.0625)])


def test_el2n_stays_finite_for_huge_logits():
    got = el2n.el2n_scores(np.array([[[1000.0, -1000.0]]]), np.array([1]))
    assert got == pytest.approx([np.sqrt(2.0)])  # p = (1, 0) against (0, 1)


def test_percentile_bins_by_hand():
    bins = el2n.percentile_bins(np.arange(40.0))
    assert bins[:6].tolist() == [0, 0, 1, 1, 2, 2] and bins[-1] == 19
    assert np.bincount(bins).tolist() == [2] * 20
    # Tied scores share one bin (average rank 1.5 -> floor(4 * 0.5 / 4) = 0), whatever their position.
    assert el2n.percentile_bins(np.array([5.0, 1.0, 7.0, 1.0]), n_bins=4).tolist() == [2, 0, 3, 0]
    # Three-way tie at ranks 2..4 (average 3): floor(4 * 2 / 5) = 1 for all three.
    assert el2n.percentile_bins(np.array([0.0, 2.0, 2.0, 2.0, 9.0]), n_bins=4).tolist() == [0, 1, 1, 1, 3]


def test_influence_table_loss_ratio_and_pie_share_by_hand():
    scores = np.array([0.9, 0.1, 0.8, 0.2])
    pie = np.array([False, False, True, False])
    dense = np.array([[2.0, 1.0, 2.0, 1.0], [2.0, 1.0, 2.0, 1.0]])  # (models, n): averaged first
    pruned = np.array([2.0, 1.0, 6.0, 3.0])
    t = el2n.influence_table(scores, pie, dense, pruned, n_bins=2)
    assert t["bin"].tolist() == [0, 1] and t["n"].tolist() == [2, 2]
    assert t["loss_ratio"].tolist() == pytest.approx([2.0, 2.0])  # (1+3)/(1+1), (6+2)/(2+2)
    assert t["pie_share"].tolist() == pytest.approx([0.0, 0.5])
    assert t["el2n_min"].tolist() == pytest.approx([0.1, 0.8]) and t["el2n_max"].tolist() == pytest.approx([0.2, 0.9])


def test_top_share_enrichment_by_hand():
    scores = np.arange(20.0)
    pie = np.zeros(20, bool)
    pie[[19, 18]] = True  # the two highest EL2N examples are the only PIEs
    t = el2n.top_share(scores, pie, 0.10)
    assert (t["k"], t["top_share"], t["base_rate"], t["enrichment"]) == (2, 1.0, 0.1, pytest.approx(10.0))
    assert t["p_value"] == pytest.approx(1 / 190)  # C(2,2) / C(20,2)
    t5 = el2n.top_share(scores, pie, 0.05)  # k = ceil(1.0) = 1, the top example is a PIE
    assert (t5["k"], t5["top_share"], t5["enrichment"]) == (1, 1.0, pytest.approx(10.0))


def test_example_losses_match_cross_entropy():
    logits = np.array([[[0.0, np.log(3.0)]]])
    assert example_losses(logits, np.array([1]), "single_label")[0, 0] == pytest.approx(-np.log(0.75))
    multi = example_losses(np.array([[[0.0, np.log(3.0)]]]), np.array([[1, 0]]), "multi_label")
    assert multi[0, 0] == pytest.approx((np.log(2) + np.log(4)) / 2)  # BCE of .5 vs 1 and .75 vs 0


def test_seed_paired_loss_ratio_by_hand_differs_from_the_ratio_of_means():
    scores = np.array([0.1, 0.2, 0.8, 0.9])
    pie = np.zeros(4, bool)
    dense = np.array([[1.0, 1.0, 2.0, 4.0], [2.0, 4.0, 1.0, 1.0]])   # (seeds, n)
    pruned = np.array([[2.0, 1.0, 2.0, 4.0], [2.0, 2.0, 4.0, 1.0]])  # row s pruned from dense row s
    paired = el2n.paired_loss_ratio(dense, pruned)
    # seed 0: 2, 1, 1, 1; seed 1: 1, .5, 4, 1; mean over seeds per example:
    assert paired.tolist() == pytest.approx([1.5, 0.75, 2.5, 1.0])
    t = el2n.influence_table(scores, pie, dense, pruned, n_bins=2, paired=paired)
    assert t["paired_loss_ratio"].tolist() == pytest.approx([1.125, 1.75])  # the paper's: mean of ratios
    assert t["loss_ratio"].tolist() == pytest.approx([0.875, 1.375])      # ratio of means: 1.75/2, 2.75/2
    # Without pairs the column is there, empty.
    assert el2n.influence_table(scores, pie, dense, pruned, n_bins=2)["paired_loss_ratio"].isna().all()
    with pytest.raises(ValueError):
        el2n.paired_loss_ratio(dense, pruned[:1])
    # A dense loss that underflowed to 0 gives a large, finite ratio.
    assert np.isfinite(el2n.paired_loss_ratio(np.zeros((1, 1)), np.ones((1, 1)))).all()
