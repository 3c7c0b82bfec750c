"""Per-group statistics of summary.json by hand: modal-label accuracies, collapse, the noise
floor at matched seeds, intervals over test examples (seeds fixed)."""

import numpy as np
import pytest

from pie_mlops.analysis import group_stats as gs
from pie_mlops.analysis.stats import bootstrap_ci, clears_floor
from pie_mlops.compare.pies import GroupStack, Stacked, compare, model_predictions


def onehot(preds, n_classes=2) -> np.ndarray:
    preds = np.asarray(preds)
    z = np.zeros(preds.shape + (n_classes,), np.float32)
    np.put_along_axis(z, preds[..., None], 2.0, axis=-1)
    return z


def opts(n_boot: int, n_perm: int = 200, n_resample: int = 200) -> gs.StatOptions:
    return gs.StatOptions(n_boot=n_boot, n_perm=n_perm, n_resample=n_resample, n_half=100, alpha=0.05)


def stacked(labels, groups: dict) -> Stacked:
    return Stacked("test", "single_label", np.array([f"e{i}" for i in range(len(labels))]), np.asarray(labels),
                   {g: GroupStack(np.arange(len(z)), z, None) for g, z in groups.items()})


def test_modal_label_pie_accuracy_by_hand_beside_the_mean_over_models():
    labels = [0, 1, 1, 0]
    dense = onehot([[0, 1, 1, 0], [0, 1, 1, 0], [1, 1, 0, 0]])   # modal 0 1 1 0
    pruned = onehot([[1, 1, 1, 0], [1, 0, 0, 0], [0, 0, 0, 0]])  # modal 1 0 0 0: PIEs e0 e1 e2
    r = gs.add_statistics(compare(stacked(labels, {"dense": dense, "p@0.5": pruned})), opts(20))
    s = r.summary["p@0.5"]
    assert r.flags["p@0.5"].tolist() == [True, True, True, False]
    assert s["pruned_modal_acc_pie"] == 0.0 and s["pruned_acc_pie"] == pytest.approx(1 / 3)  # (2/3 + 0 + 1/3)/3
    assert s["dense_modal_acc_pie"] == 1.0 and s["dense_acc_pie"] == pytest.approx(7 / 9)    # (1 + 1 + 1/3)/3
    assert s["dense_modal_acc_all"] == 1.0 and s["pruned_modal_acc_all"] == 0.25
    assert s["dense_modal_acc_nonpie"] == 1.0 and s["pruned_modal_acc_nonpie"] == 1.0
    assert s["n_pies"] == 3  # the existing keys stay


def test_collapse_is_one_class_for_more_than_95_percent():
    labels = np.tile([0, 1], 50)
    dense = onehot(np.tile(labels, (3, 1)))
    collapsed = np.zeros((3, 100), np.int64)
    collapsed[:, :4] = 1                       # 96% class 0
    fine = np.zeros((3, 100), np.int64)
    fine[:, :6] = 1                            # 94% class 0
    other = np.ones((3, 100), np.int64)        # every model all class 1: collapsed to the other class
    r = gs.add_statistics(compare(stacked(labels, {"dense": dense, "a@0.9": onehot(collapsed),
                                                   "b@0.9": onehot(fine), "c@0.9": onehot(other)})), opts(5))
    assert r.summary["a@0.9"]["majority_pred_share"] == pytest.approx(0.96) and r.summary["a@0.9"]["collapsed"] is True
    assert r.summary["b@0.9"]["majority_pred_share"] == pytest.approx(0.94) and r.summary["b@0.9"]["collapsed"] is False
    assert r.summary["c@0.9"]["collapsed"] is True
    assert r.noise_floor["dense_majority_pred_share"] == 0.5 and r.noise_floor["dense_collapsed"] is False
    # Models collapsed to different classes are each collapsed: per model, then averaged.
    mixed = np.stack([np.zeros(100, np.int64), np.ones(100, np.int64)])
    assert gs.majority_pred_share(mixed, "single_label") == 1.0
    # Multi-label: one constant label set.
    sets = np.zeros((2, 100, 3), np.int8)
    sets[:, :, 1] = 1
    sets[1, :10, 2] = 1
    assert gs.majority_pred_share(sets, "multi_label") == pytest.approx((1.0 + 0.9) / 2)


def test_noise_floor_at_matched_seeds_and_the_largest_k_when_too_few():
    # Two dense models that disagree on 2 of 4 examples: every 1-vs-1 draw gives 0.5.
    two = GroupStack(np.arange(2), onehot([[0, 0, 1, 1], [0, 1, 1, 0]]), None)
    floor = gs.noise_floor_at(two, "single_label", per_side=1, n_boot=10)
    assert (floor["share"], floor["ci"], floor["seeds_per_side"], floor["matched"]) == (0.5, [0.5, 0.5], 1, True)
    agree = GroupStack(np.arange(10), onehot(np.zeros((10, 4), np.int64)), None)
    floor = gs.noise_floor_at(agree, "single_label", per_side=5, n_boot=10)
    assert (floor["share"], floor["seeds_per_side"], floor["matched"]) == (0.0, 5, True)
    short = gs.noise_floor_at(GroupStack(np.arange(6), agree.logits[:6], None), "single_label", per_side=5, n_boot=10)
    assert (short["seeds_per_side"], short["groups_seeds_per_side"], short["matched"]) == (3, 5, False)
    assert "6 dense models" in short["note"]
    assert gs.noise_floor_at(GroupStack(np.arange(1), agree.logits[:1], None), "single_label", 3)["share"] is None


def test_summary_floor_matches_the_groups_seeds():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 200)
    groups = {"dense": onehot(rng.integers(0, 2, (10, 200))), "p@0.5": onehot(rng.integers(0, 2, (5, 200)))}
    r = gs.add_statistics(compare(stacked(labels, groups)), opts(30))
    assert r.noise_floor["seeds_per_side"] == 5 and r.noise_floor["matched"] is True
    # Pure noise against pure noise: the group does not clear the floor.
    assert r.summary["p@0.5"]["above_floor"] is False


def test_example_bootstrap_intervals_contain_their_point():
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 2, 300)
    same = onehot(np.tile(labels, (4, 1)))
    flipped = np.tile(labels, (4, 1))
    flipped[:, :30] = 1 - flipped[:, :30]     # every pruned model flips the same 30 examples
    noisy = np.where(rng.random((4, 300)) < 0.3, 1 - labels, labels)
    r = gs.add_statistics(compare(stacked(labels, {"dense": same, "f@0.5": onehot(flipped),
                                                   "n@0.5": onehot(noisy)})), opts(20, n_resample=500))
    f, n = r.summary["f@0.5"], r.summary["n@0.5"]
    # Seeds fixed, examples resampled: the share of 30 in 300 varies like a binomial proportion
    # (sd 0.017), while the PIEs' pruned accuracy is 0 in every resample.
    lo, hi = f["pie_share_ci"]
    assert lo < 0.1 < hi and 0.04 < hi - lo < 0.1
    assert f["pruned_acc_pie_ci"] == [0.0, 0.0] and f["dense_acc_pie_ci"] == [1.0, 1.0]
    for g in (f, n):
        for key in [k for k in g if k.endswith("_ci") and g[k][0] is not None]:
            point = g[key[:-3]]
            assert g[key][0] - 1e-12 <= point <= g[key][1] + 1e-12, (key, point, g[key])
    # The per-model mean over all examples: a mean of 300 per-example means, sd ~ 0.02.
    lo, hi = n["pruned_acc_all_ci"]
    assert lo < n["pruned_acc_all"] < hi and 0.03 < hi - lo < 0.15
    for key in ("dense_modal_acc_pie_ci", "pruned_modal_acc_nonpie_ci", "dense_acc_nonpie_ci"):
        assert key in n


def test_example_bootstrap_by_hand_on_a_ratio():
    # 4 examples, one PIE; pruned_acc_pie is NaN in the resamples without it (ignored), 0 otherwise.
    labels = [0, 1, 1, 0]
    dense = onehot(np.tile([0, 1, 1, 0], (3, 1)))
    pruned = onehot(np.tile([1, 1, 1, 0], (3, 1)))
    r = compare(stacked(labels, {"dense": dense, "p@0.5": pruned}))
    ci = gs.example_bootstrap(r, "p@0.5", 2000, np.random.default_rng(0))
    assert ci["pruned_acc_pie_ci"] == [0.0, 0.0] and ci["dense_acc_pie_ci"] == [1.0, 1.0]
    # pie_share = count/4 with count ~ Binomial(4, 1/4): 2.5% and 97.5% quantiles 0 and 3/4.
    assert ci["pie_share_ci"] == [0.0, 0.75]
    assert ci["pruned_acc_nonpie_ci"] == [1.0, 1.0]


def test_bootstrap_ci_and_floor_rule():
    assert bootstrap_ci([0.3, 0.3, 0.3]) == [0.3, 0.3]
    lo, hi = bootstrap_ci(np.tile([0.0, 1.0], 50), seed=0)
    assert 0.35 < lo < 0.5 < hi < 0.65
    assert bootstrap_ci([]) == [None, None]
    floor = {"share": 0.1, "ci": [0.05, 0.15]}
    assert clears_floor([0.16, 0.3], floor) and not clears_floor([0.14, 0.3], floor)
    assert not clears_floor([0.5, 0.6], {"share": None, "ci": [None, None]})


def test_multi_label_modal_scores_are_macro_f1_and_a_constant_label_set_collapses():
    labels = np.array([[1, 0], [0, 1]], np.int8)
    dense = np.where(np.tile(labels, (3, 1, 1)) == 1, 5.0, -5.0).astype(np.float32)
    pruned = np.where(np.tile([[1, 1], [0, 1]], (3, 1, 1)) == 1, 5.0, -5.0).astype(np.float32)
    thr = np.full(3, 0.5, np.float32)
    s = Stacked("test", "multi_label", np.array(["e0", "e1"]), labels,
                {"dense": GroupStack(np.arange(3), dense, thr), "p@0.5": GroupStack(np.arange(3), pruned, thr)})
    r = gs.add_statistics(compare(s), opts(10))
    g = r.summary["p@0.5"]
    assert r.flags["p@0.5"].tolist() == [True, False]
    # On the PIE (e0): label 0 right (F1 1), label 1 wrongly on (F1 0): macro-F1 0.5.
    assert g["pruned_modal_acc_pie"] == 0.5 and g["dense_modal_acc_pie"] == 1.0
    assert g["majority_pred_share"] == 0.5 and g["collapsed"] is False  # two label sets, one each
    same = np.tile(np.where(np.array([[1, 1]]) == 1, 5.0, -5.0), (3, 2, 1)).astype(np.float32)
    assert gs.majority_pred_share(model_predictions(same, "multi_label", thr), "multi_label") == 1.0
