"""The analyses on hand-computed cases: EL2N, bins, influence table, enrichment, classes,
complexity, statistics, stability, noise floor and overlap."""

import numpy as np
import pytest
from scipy import stats

from pie_mlops.analysis import classes, complexity, el2n, stability
from pie_mlops.analysis.run import example_losses
from pie_mlops.analysis.stats import cliffs_delta_from_u, holm, jaccard, mann_whitney
from pie_mlops.pies import GroupStack


def test_el2n_single_label_by_hand_averaged_over_models():
    # model 1: p = (.5, .5) -> error (-.5, .5), norm sqrt(.5); model 2: p = (.75, .25) -> sqrt(2)/4.
    logits = np.array([[[0.0, 0.0]], [[np.log(3.0), 0.0]]])
    got = el2n.el2n_scores(logits, np.array([0]))
    assert got == pytest.approx([(np.sqrt(0.5) + np.sqrt(2) / 4) / 2])


def test_el2n_multi_label_scores_each_label_with_a_sigmoid():
    logits = np.array([[0.0, 0.0, np.log(3.0)]])  # sigmoids .5, .5, .75 against (1, 0, 1)
    got = el2n.el2n_scores(logits, np.array([[1, 0, 1]]), task="multi_label")
    assert got == pytest.approx([np.sqrt(0.25 + 0.25 + 0.0625)])


def test_percentile_bins_by_hand():
    assert el2n.percentile_bins(np.arange(40.0))[:6].tolist() == [0, 0, 1, 1, 2, 2]
    assert el2n.percentile_bins(np.arange(40.0))[-1] == 19
    # Tied scores share one bin (average rank), whatever their position.
    assert el2n.percentile_bins(np.array([1.0, 1.0, 5.0, 7.0]), n_bins=4).tolist() == [0, 0, 2, 3]


def test_influence_table_loss_ratio_and_pie_share_by_hand():
    scores = np.array([0.1, 0.2, 0.8, 0.9])
    pie = np.array([False, False, True, False])
    dense = np.array([1.0, 1.0, 2.0, 2.0])
    pruned = np.array([1.0, 3.0, 6.0, 2.0])
    t = el2n.influence_table(scores, pie, dense, pruned, n_bins=2)
    assert t["n"].tolist() == [2, 2]
    assert t["loss_ratio"].tolist() == pytest.approx([2.0, 2.0])  # (1+3)/(1+1), (6+2)/(2+2)
    assert t["pie_share"].tolist() == pytest.approx([0.0, 0.5])


def test_top_share_enrichment_by_hand():
    scores = np.arange(20.0)
    pie = np.zeros(20, bool)
    pie[[19, 18]] = True  # the two highest EL2N examples are the only PIEs
    t = el2n.top_share(scores, pie, 0.10)
    assert (t["k"], t["top_share"], t["base_rate"], t["enrichment"]) == (2, 1.0, 0.1, pytest.approx(10.0))
    assert t["p_value"] == pytest.approx(1 / 190)  # C(2,2) / C(20,2)


def test_example_losses_match_cross_entropy():
    logits = np.array([[[0.0, np.log(3.0)]]])
    assert example_losses(logits, np.array([1]), "single_label")[0, 0] == pytest.approx(-np.log(0.75))
    multi = example_losses(np.array([[[0.0, 0.0]]]), np.array([[1, 0]]), "multi_label")
    assert multi[0, 0] == pytest.approx(np.log(2))


def test_class_distribution_test_agrees_with_scipy_and_counts_by_hand():
    labels = np.array([0] * 6 + [1] * 4)
    pie = np.array([1, 1, 1, 1, 0, 0, 0, 0, 0, 1], bool)
    res = classes.class_distribution_test(labels, pie, 2)
    assert res["table"]["n_pies"].tolist() == [4, 1] and res["table"]["n"].tolist() == [6, 4]
    expected = stats.chi2_contingency(np.array([[4, 1], [2, 3]]), correction=False)
    assert res["stat"] == pytest.approx(expected.statistic) and res["p_value"] == pytest.approx(expected.pvalue)


def test_per_class_accuracy_by_hand():
    labels = np.array([0, 0, 1, 1])
    dense = np.array([[0, 0, 1, 1], [0, 1, 1, 1]])     # class 0: 1.0, .5; class 1: 1, 1
    pruned = np.array([[1, 1, 1, 0], [0, 1, 1, 1]])    # class 0: 0, .5; class 1: .5, 1
    t = classes.per_class_accuracy(labels, dense, pruned, n_classes=2)
    assert t["dense_acc"].tolist() == pytest.approx([0.75, 1.0])
    assert t["pruned_acc"].tolist() == pytest.approx([0.25, 0.75])


def test_complexity_measures_on_a_known_sentence():
    ts = complexity._offline_textstat()
    text = "The cat sat on the mat."
    m = complexity.measure([text]).iloc[0]
    assert (m["n_tokens"], m["n_chars"]) == (6, 23)
    assert m["type_token_ratio"] == pytest.approx(5 / 6)  # "the" twice
    assert m["flesch_reading_ease"] == pytest.approx(ts.flesch_reading_ease(text))
    assert m["dale_chall"] == pytest.approx(ts.dale_chall_readability_score(text))
    assert m["gunning_fog"] == pytest.approx(ts.gunning_fog(text))


def test_compare_pies_ratio_u_and_cliffs_delta_by_hand():
    import pandas as pd

    measures = pd.DataFrame({"n_tokens": [1.0, 2.0, 3.0, 4.0]})
    out = complexity.compare_pies(measures, np.array([False, False, True, True]))["n_tokens"]
    assert out["ratio"] == pytest.approx(3.5 / 1.5)
    assert out["u"] == 4.0 and out["cliffs_delta"] == 1.0  # every PIE is longer than every non-PIE
    assert out["p_value"] == pytest.approx(stats.mannwhitneyu([3, 4], [1, 2]).pvalue)


def test_stats_helpers_by_hand():
    assert holm([0.01, 0.04, 0.03]).tolist() == pytest.approx([0.03, 0.06, 0.06])
    assert cliffs_delta_from_u(0.0, 2, 2) == -1.0
    assert mann_whitney([1, 1], [1, 1])["p_value"] == 1.0
    assert jaccard(np.array([1, 1, 0], bool), np.array([0, 1, 1], bool)) == pytest.approx(1 / 3)
    assert jaccard(set(), set()) == 1.0


def _stack(preds: np.ndarray, n_classes: int = 2) -> GroupStack:
    """Models whose logits make them predict `preds` (m, n)."""
    logits = np.full(preds.shape + (n_classes,), -1.0, np.float32)
    np.put_along_axis(logits, preds[..., None], 1.0, axis=-1)
    return GroupStack(np.arange(len(preds)), logits, None)


def test_agreeing_models_give_a_stable_pie_set_and_a_zero_noise_floor():
    dense = _stack(np.zeros((6, 50), np.int64))
    flipped = np.zeros((6, 50), np.int64)
    flipped[:, :10] = 1  # every pruned model flips the same 10 examples
    curve = stability.stability_curve(dense, _stack(flipped), "single_label", n_boot=20)
    assert curve["k"] == [1, 3, 5] and curve["jaccard_mean"] == [1.0, 1.0, 1.0]
    floor = stability.noise_floor(dense, "single_label", n_boot=20)
    assert (floor["k"], floor["floor_share"], floor["floor_high"]) == (3, 0.0, 0.0)
    g = stability.group_against_floor(dense, _stack(flipped), "single_label", floor, n_boot=20)
    assert g["pie_share"] == 0.2 and g["pie_share_at_k"] == pytest.approx(0.2) and g["above_floor"] is True


def test_noisy_models_give_an_unstable_pie_set_and_a_positive_floor():
    rng = np.random.default_rng(0)
    noisy = _stack(rng.integers(0, 2, (6, 400)))
    curve = stability.stability_curve(noisy, _stack(rng.integers(0, 2, (6, 400))), "single_label", n_boot=20)
    assert max(curve["jaccard_mean"]) < 0.9
    assert stability.noise_floor(noisy, "single_label", n_boot=20)["floor_share"] > 0.2


def test_overlap_matrix_is_symmetric_with_ones_on_the_diagonal():
    flags = {"b@0.5": np.array([1, 1, 0], bool), "a@0.5": np.array([0, 1, 1], bool), "c@0.9": np.zeros(3, bool)}
    ov = stability.overlap_matrix(flags)
    mat = np.array(ov["jaccard"])
    assert ov["groups"] == ["a@0.5", "b@0.5", "c@0.9"]
    assert np.allclose(mat, mat.T) and np.allclose(np.diag(mat), 1.0)
    assert mat[0, 1] == pytest.approx(1 / 3) and mat[0, 2] == 0.0
