"""PIE-aware champion selection: hand-built candidates."""

import numpy as np
import pandas as pd
import pytest

from pie_mlops.compare.selection import choose_champion, select_champion, sensitive_subset


def _cands(rows):
    return pd.DataFrame(rows, columns=["group", "seed", "sparsity", "acc_subset", "acc_all"])


def test_sensitive_subset_is_the_union_of_pie_sets():
    flags = {"a@0.5": np.array([1, 0, 0, 0], bool), "b@0.9": np.array([0, 0, 1, 0], bool)}
    assert sensitive_subset(flags).tolist() == [True, False, True, False]
    assert sensitive_subset({}).shape == (0,)


def test_the_sparsest_version_within_tolerance_wins_even_if_a_denser_one_is_more_accurate():
    c = _cands([("m@0.50", 0, 0.5, 0.70, 0.84), ("m@0.70", 0, 0.7, 0.69, 0.83),
                ("m@0.90", 0, 0.9, 0.40, 0.80)])
    # dense 0.70 on the subset, 0.84 overall; tolerance 0.02: 0.90 fails on both, 0.70 passes.
    row = select_champion(c, 0.70, 0.84, 0.02)
    assert row["group"] == "m@0.70" and row["seed"] == 0
    assert "sparsity 0.7" in row["reason"] and "0.6900" in row["reason"] and "0.7000" in row["reason"]


def test_a_version_good_overall_but_bad_on_the_sensitive_subset_is_not_champion():
    # Mean accuracy within tolerance, PIE-subset accuracy far below dense: exactly what PIEs hide.
    c = _cands([("m@0.50", 0, 0.5, 0.69, 0.83), ("m@0.90", 0, 0.9, 0.30, 0.83)])
    assert select_champion(c, 0.70, 0.84, 0.02)["group"] == "m@0.50"


def test_ties_in_sparsity_go_to_subset_accuracy_then_overall_then_lower_seed():
    c = _cands([("m@0.50", 2, 0.5, 0.70, 0.84), ("i@0.50", 1, 0.5, 0.71, 0.83), ("i@0.50", 0, 0.5, 0.71, 0.83)])
    row = select_champion(c, 0.70, 0.84, 0.05)
    assert (row["group"], row["seed"]) == ("i@0.50", 0)


def test_no_version_within_tolerance_gives_none_and_negative_tolerance_is_refused():
    c = _cands([("m@0.90", 0, 0.9, 0.40, 0.60)])
    assert select_champion(c, 0.70, 0.84, 0.02) is None
    assert select_champion(c.iloc[0:0], 0.70, 0.84, 0.02) is None
    with pytest.raises(ValueError, match="tolerance"):
        select_champion(c, 0.7, 0.8, -0.1)


def test_an_empty_sensitive_subset_is_no_vacuous_pass():
    # No PIEs anywhere: nothing to judge a version on, so no champion (it used to pass vacuously).
    c = _cands([("m@0.90", 0, 0.9, np.nan, 0.84)])
    assert select_champion(c, np.nan, 0.84, 0.0) is None
    verdict = choose_champion(c, np.nan, 0.84, 0.02, baseline=0.5, min_gain=0.02, dense_scores={"dense/s0": 0.85})
    assert verdict["champion"] is None and "no pruning-sensitive examples" in verdict["reason"]


GOOD_DENSE = {"dense/s0": 0.84, "dense/s1": 0.83}


def test_a_constant_model_is_never_champion():
    # 67/33 data: the constant model scores 0.67, the majority share, and keeps dense's accuracy
    # on a subset where dense is as bad. It is the sparsest and within tolerance, yet no champion.
    c = _cands([("m@0.50", 0, 0.5, 0.60, 0.80), ("m@0.90", 0, 0.9, 0.60, 0.67)])
    row = choose_champion(c, 0.60, 0.68, 0.02, baseline=0.67, min_gain=0.02, dense_scores={"dense/s0": 0.69})
    assert row["champion"] == "m@0.50-s0" and row["baseline"] == 0.67
    assert "by 0.1300" in row["reason"]
    only = choose_champion(c.iloc[1:], 0.60, 0.68, 0.02, baseline=0.67, min_gain=0.02,
                           dense_scores={"dense/s0": 0.69})
    assert only["champion"] is None and "no pruned version beats" in only["reason"] and "0.6700" in only["reason"]


def test_dense_models_at_the_baseline_give_no_champion_whatever_the_pruned_do():
    c = _cands([("m@0.50", 0, 0.5, 0.70, 0.84)])
    verdict = choose_champion(c, 0.70, 0.84, 0.02, baseline=0.6733, min_gain=0.02,
                              dense_scores={"dense/s0": 0.6733, "dense/s1": 0.80})
    assert verdict["champion"] is None
    assert "dense/s0 0.6733" in verdict["reason"] and "dense/s1" not in verdict["reason"]
    assert "0.6733 by 0.02" in verdict["reason"]


def test_collapsed_groups_are_no_candidates():
    c = _cands([("m@0.50", 0, 0.5, 0.70, 0.84), ("r@0.90", 0, 0.9, 0.70, 0.84)])
    row = choose_champion(c, 0.70, 0.84, 0.02, baseline=0.5, min_gain=0.02, dense_scores=GOOD_DENSE,
                          collapsed={"r@0.90"})
    assert row["group"] == "m@0.50"
    none = choose_champion(c, 0.70, 0.84, 0.02, baseline=0.5, min_gain=0.02, dense_scores=GOOD_DENSE,
                           collapsed={"r@0.90", "m@0.50"})
    assert none["champion"] is None and "collapsed" in none["reason"]


def test_no_version_within_tolerance_says_so():
    c = _cands([("m@0.90", 0, 0.9, 0.40, 0.60)])
    verdict = choose_champion(c, 0.70, 0.84, 0.02, baseline=0.5, min_gain=0.02, dense_scores=GOOD_DENSE)
    assert verdict == {"champion": None, "baseline": 0.5, "min_gain": 0.02,
                       "reason": "no pruned version within 0.02 of dense on all examples and on the pruning-sensitive ones"}
