"""PIE class distribution (chi-square) and per-class accuracy, against scipy and by hand."""

import numpy as np
import pytest
from scipy import stats

from pie_mlops.analysis import classes


def test_class_distribution_test_agrees_with_scipy_and_counts_by_hand():
    labels = np.array([0] * 6 + [1] * 4)
    pie = np.array([1, 1, 1, 1, 0, 0, 0, 0, 0, 1], bool)
    res = classes.class_distribution_test(labels, pie, 2)
    assert res["table"]["n_pies"].tolist() == [4, 1] and res["table"]["n"].tolist() == [6, 4]
    expected = stats.chi2_contingency(np.array([[4, 1], [2, 3]]), correction=False)
    assert res["stat"] == pytest.approx(expected.statistic) and res["p_value"] == pytest.approx(expected.pvalue)
    assert res["dof"] == 1


def test_a_class_without_examples_is_dropped_not_divided_by():
    labels = np.array([0, 0, 0, 2, 2, 2])  # class 1 has no examples: expected count 0
    pie = np.array([1, 1, 0, 0, 0, 1], bool)
    res = classes.class_distribution_test(labels, pie, 3)
    assert res["dropped"] == [1] and res["table"]["n"].tolist() == [3, 0, 3]
    expected = stats.chi2_contingency(np.array([[2, 1], [1, 2]]), correction=False)
    assert res["stat"] == pytest.approx(expected.statistic) and res["dof"] == 1
    good = classes.class_distribution_test(labels, pie, 3, method="goodness")
    assert good["stat"] == pytest.approx(stats.chisquare([2, 1], [1.5, 1.5]).statistic)


def test_no_pies_gives_no_test():
    res = classes.class_distribution_test(np.array([0, 1, 1]), np.zeros(3, bool), 2)
    assert np.isnan(res["stat"]) and np.isnan(res["p_value"])


def test_per_class_accuracy_by_hand():
    labels = np.array([0, 0, 1, 1])
    dense = np.array([[0, 0, 1, 1], [0, 1, 1, 1]])     # class 0: 1.0, .5; class 1: 1, 1
    pruned = np.array([[1, 1, 1, 0], [0, 1, 1, 1]])    # class 0: 0, .5; class 1: .5, 1
    t = classes.per_class_accuracy(labels, dense, pruned, n_classes=3)
    assert t["dense_acc"].tolist()[:2] == pytest.approx([0.75, 1.0]) and np.isnan(t["dense_acc"][2])
    assert t["pruned_acc"].tolist()[:2] == pytest.approx([0.25, 0.75])
    assert t["pruned_acc_std"].tolist()[:2] == pytest.approx([0.25, 0.25])


def test_per_label_f1_by_hand_where_accuracy_hides_a_rare_label():
    labels = np.array([[1, 0], [1, 0], [0, 0], [0, 1]])
    a = [[1, 0], [0, 0], [0, 0], [0, 0]]  # label 0: tp 1, 2 true, 1 predicted -> 2/3; label 1 never -> 0
    b = [[1, 0], [1, 0], [1, 0], [0, 1]]  # label 0: 2*2/(2+3) = .8; label 1: 1
    mean, std = classes.per_label_f1(labels, np.array([a, b]))
    assert mean.tolist() == pytest.approx([(2 / 3 + 0.8) / 2, 0.5])
    assert std.tolist() == pytest.approx([abs(2 / 3 - 0.8) / 2, 0.5])
    # Model a's accuracy on label 1 is 3/4: the F1 of 0 is what shows it never finds the label.
    assert (np.array(a)[:, 1] == labels[:, 1]).mean() == 0.75
    # A label neither present nor predicted scores 1.
    assert classes.per_label_f1(np.zeros((2, 1)), np.zeros((1, 2, 1)))[0].tolist() == [1.0]
