"""PIE-aware champion selection: hand-built candidates."""

import numpy as np
import pandas as pd
import pytest

from pie_mlops.selection import select_champion, sensitive_subset


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


def test_an_empty_sensitive_subset_constrains_nothing():
    c = _cands([("m@0.90", 0, 0.9, np.nan, 0.84)])
    row = select_champion(c, np.nan, 0.84, 0.0)
    assert row["group"] == "m@0.90" and "n/a" in row["reason"]
