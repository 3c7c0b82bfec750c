"""The PIE core on hand-computed cases: modal labels and DESIGN's tie rule, PIE flags,
multi-label union, per-subset accuracies, vote shares, stacking."""

import numpy as np
import pandas as pd
import pytest

from pie_mlops.compare.pies import GroupStack, Stacked, compare, modal_labels, stack_split


def onehot_logits(preds, n_classes=2) -> np.ndarray:
    """(m, n, C) logits whose argmax is `preds` (m, n), each with the same confidence."""
    preds = np.asarray(preds)
    z = np.zeros(preds.shape + (n_classes,), np.float32)
    np.put_along_axis(z, preds[..., None], 2.0, axis=-1)
    return z


def stacked(labels, groups: dict, task="single_label", thresholds=None) -> Stacked:
    n = len(labels)
    return Stacked("test", task, np.array([f"e{i}" for i in range(n)]), np.asarray(labels),
                   {g: GroupStack(np.arange(len(z)), np.asarray(z, np.float32),
                                  None if thresholds is None else thresholds[g]) for g, z in groups.items()})


def test_a_clear_pie_and_a_clear_non_pie():
    s = stacked([0, 1], {"dense": onehot_logits([[0, 1]] * 3), "m@0.5": onehot_logits([[1, 1]] * 3)})
    r = compare(s, min_seeds=3)
    assert r.flags["m@0.5"].tolist() == [True, False]
    assert r.pies["is_pie"].tolist() == [True, False]
    assert r.pies["dense_label"].tolist() == [0, 1] and r.pies["pruned_label"].tolist() == [1, 1]
    assert r.summary["m@0.5"]["n_pies"] == 1 and r.summary["m@0.5"]["pie_share"] == 0.5


def test_a_tie_goes_to_the_highest_mean_probability():
    # One vote each; class 0's probabilities (.881, .269) average .575 > class 1's .425.
    logits = np.array([[[2.0, 0.0]], [[0.0, 1.0]]])
    m = modal_labels(logits)
    assert m.label.tolist() == [0] and m.ties.tolist() == [True] and m.votes.tolist() == [0.5]
    # The paper's argmax over vote counts would also say 0 here; swap the confidences and it differs.
    assert modal_labels(np.array([[[1.0, 0.0]], [[0.0, 2.0]]])).label.tolist() == [1]


def test_a_tie_in_votes_and_mean_probability_goes_to_the_lowest_tied_index():
    # Three classes; models vote 2 and 1 with mirrored probabilities: classes 1 and 2 tie on both.
    logits = np.array([[[0.0, 0.0, 3.0]], [[0.0, 3.0, 0.0]]])
    m = modal_labels(logits)
    assert m.label.tolist() == [1] and m.ties.tolist() == [True]


def test_vote_shares_and_tie_counts():
    dense = onehot_logits([[0, 0, 1], [0, 1, 1], [1, 1, 0], [0, 1, 1]])  # 4 models, 3 examples
    m = modal_labels(dense)
    assert m.votes.tolist() == [0.75, 0.75, 0.75] and not m.ties.any()
    s = stacked([0, 1, 1], {"dense": dense, "g@0.9": onehot_logits([[0, 0, 1], [0, 1, 0]])})
    summary = compare(s, min_seeds=2).summary["g@0.9"]
    assert summary["n_ties_dense"] == 0 and summary["n_ties_pruned"] == 2  # examples 1 and 2: 1-1


def test_accuracies_on_pie_and_non_pie_subsets_by_hand():
    labels = [0, 1, 1, 0]
    dense = onehot_logits([[0, 1, 1, 0], [0, 1, 1, 1], [0, 1, 0, 0]])       # modal 0 1 1 0
    pruned = onehot_logits([[1, 1, 1, 0], [1, 0, 1, 0], [1, 1, 0, 1]])      # modal 1 1 1 0 -> PIE: e0
    s = compare(stacked(labels, {"dense": dense, "p@0.5": pruned})).summary["p@0.5"]
    assert s["n_pies"] == 1
    # On the PIE e0: dense models right 3/3, pruned 0/3.
    assert (s["dense_acc_pie"], s["dense_acc_pie_std"]) == (1.0, 0.0)
    assert (s["pruned_acc_pie"], s["pruned_acc_pie_std"]) == (0.0, 0.0)
    # Non-PIEs e1..e3: dense per model 3/3, 2/3, 2/3; pruned 3/3, 2/3, 1/3.
    assert s["dense_acc_nonpie"] == pytest.approx(7 / 9)
    assert s["dense_acc_nonpie_std"] == pytest.approx(np.std([1, 2 / 3, 2 / 3]))
    assert s["pruned_acc_nonpie"] == pytest.approx(2 / 3)
    assert s["pruned_acc_all"] == pytest.approx(np.mean([3 / 4, 2 / 4, 1 / 4]))


def test_an_empty_subset_has_no_accuracy():
    dense = onehot_logits([[0, 1]] * 3)
    s = compare(stacked([0, 1], {"dense": dense, "same@0.2": dense})).summary["same@0.2"]
    assert s["n_pies"] == 0 and s["dense_acc_pie"] is None and s["pruned_acc_pie_std"] is None


def test_multi_label_majority_union_and_per_label_counts():
    on, off = 3.0, -3.0
    dense = np.array([[[on, off, on]], [[on, off, on]], [[on, on, on]]])       # label 1: 1 of 3 -> off
    pruned = np.array([[[on, on, on]], [[on, on, off]], [[on, off, on]]])      # label 1: 2 of 3 -> on
    s = stacked(np.array([[1, 0, 1]], np.int8), {"dense": dense, "p@0.5": pruned}, task="multi_label",
                thresholds={"dense": np.full(3, 0.5, np.float32), "p@0.5": np.full(3, 0.5, np.float32)})
    r = compare(s)
    assert r.modal["dense"].label.tolist() == [[1, 0, 1]] and r.modal["p@0.5"].label.tolist() == [[1, 1, 1]]
    assert r.flags["p@0.5"].tolist() == [True]
    assert r.summary["p@0.5"]["n_pies_per_label"] == {"0": 0, "1": 1, "2": 0}


def test_each_model_binarises_with_its_own_threshold():
    z = np.full((3, 1, 1), 0.0)  # sigmoid .5 everywhere
    assert modal_labels(z, "multi_label", np.array([0.4, 0.4, 0.6])).label.tolist() == [[1]]
    assert modal_labels(z, "multi_label", np.array([0.4, 0.6, 0.6])).label.tolist() == [[0]]
    even = modal_labels(np.zeros((2, 1, 1)), "multi_label", np.array([0.4, 0.6]))
    assert even.label.tolist() == [[0]] and even.ties.tolist() == [True]  # 1 of 2 is not a majority


def test_stack_split_aligns_shuffled_rows_by_example_id():
    rows = []
    for group, seed, order in (("dense", 0, [0, 1, 2]), ("dense", 1, [2, 0, 1]), ("magnitude-os@0.50", 0, [1, 2, 0])):
        for i in order:
            rows.append({"example_id": f"e{i}", "split": "test", "group": group, "seed": seed, "label": i % 2,
                         "logits": np.array([float(i), -float(i)], np.float32)})
    s = stack_split(pd.DataFrame(rows), "test")
    assert s.example_ids.tolist() == ["e0", "e1", "e2"] and s.labels.tolist() == [0, 1, 0]
    for g in s.groups.values():
        assert g.logits[:, :, 0].tolist() == [[0.0, 1.0, 2.0]] * len(g.seeds)
