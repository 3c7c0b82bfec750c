"""The permutation test against the noise floor (analysis.permutation) by hand and by
simulation, the tie rule and its counts, the PIE outcome split, and a fast version of
bench/calibration.py through the file-mode compare."""

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from pie_mlops.analysis import permutation as pm
from pie_mlops.compare.pies import GroupStack, Stacked, compare, modal_labels

ROOT = Path(__file__).resolve().parents[2]


def _calibration():
    spec = importlib.util.spec_from_file_location("calibration", ROOT / "bench" / "calibration.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def onehot(preds, n_classes=2, margin=2.0) -> np.ndarray:
    preds = np.asarray(preds)
    z = np.zeros(preds.shape + (n_classes,), np.float32)
    np.put_along_axis(z, preds[..., None], margin, axis=-1)
    return z


def test_relabelings_keep_each_pair_split_or_the_side_sizes():
    rng = np.random.default_rng(0)
    pairs = np.array([1, 3, 4])              # pruned models 0..2 come from dense models 1, 3, 4
    sel = pm.relabelings(5, 3, pairs, 500, rng)
    dense_side, pruned_side = sel[:, pairs], sel[:, 5:]
    assert (dense_side ^ pruned_side).all()  # one model of each pair on each side
    assert sel[:, [0, 2]].all()              # unpaired dense models stay dense
    assert 0.4 < pruned_side.mean() < 0.6
    pooled = pm.relabelings(5, 3, None, 500, rng)
    assert (pooled.sum(axis=1) == 5).all() and 0.55 < pooled[:, 5:].mean() < 0.7  # 5/8 each


@pytest.mark.parametrize("pairs, exact", [(None, 1 / 3), (np.array([0, 1]), 1 / 2)])
def test_permutation_p_value_by_hand(pairs, exact):
    # Dense models vote 0, pruned 1, unanimously, on 10 examples: the observed statistic is 1.
    # Pooled 2 vs 2: of the 6 ways to split 4 models, the 2 unmixed ones give 1, the 4 mixed
    # ones 0 (1-1 votes on both sides): p = 1/3. Paired: swapping none or both pairs gives 1,
    # one pair 0: p = 1/2.
    z = np.concatenate([onehot(np.zeros((2, 10), np.int64)), onehot(np.ones((2, 10), np.int64))])
    votes = pm.Votes(z, "single_label", None, "probability")
    r = pm.floor_test(votes, 2, 2, pairs, 6000, 0)
    assert r["observed"] == 1.0 and r["p_value"] == pytest.approx(exact, abs=0.025)
    assert r["method"] == ("pooled" if pairs is None else "paired_swap") and r["n_perm"] == 6000
    assert r["min_p"] == pytest.approx(exact)  # here the observed labeling is the most extreme one


def test_seed_pairs_need_a_paper_schedule_and_every_seed_among_dense():
    dense = np.arange(10)
    assert pm.seed_pairs("magnitude-os@0.50", dense, np.array([2, 5])).tolist() == [2, 5]
    assert pm.seed_pairs("random-ai@0.20", dense, np.array([0, 1, 2])).tolist() == [0, 1, 2]
    assert pm.seed_pairs("random-ai@0.20", dense, np.array([100, 101])) is None  # other seeds: pooled
    assert pm.seed_pairs("p@0.5", dense, np.array([0, 1])) is None


@pytest.mark.parametrize("rule", ["probability", "paper"])
@pytest.mark.parametrize("c", [2, 3])
def test_vote_tensors_give_the_modal_labels_of_pies(rule, c):
    rng = np.random.default_rng(c)
    z = rng.normal(size=(6, 400, c)).astype(np.float32)
    z[1:4, :60] = z[0, :60]                  # some exact ties in votes and in probabilities
    votes = pm.Votes(z, "single_label", None, rule)
    sel = rng.random((20, 6)) < 0.5
    sel[:, 0] = True
    labels = votes.modal(sel)
    if c == 2:  # the two-class fast path agrees
        share0, fast = votes.binary_side(sel)
        assert (fast == labels).all() and np.allclose(share0, votes.side(sel)[0][..., 0])
    for i in range(20):
        assert (modal_labels(z[sel[i]], tie_rule=rule).label == labels[i]).all()


def _null_p_values(paired: bool, n_studies: int, rng) -> np.ndarray:
    """p-values of null groups, 8 vs 8 seeds on 300 examples (bench/calibration.py's model)."""
    cal = _calibration()
    out = []
    for _ in range(n_studies):
        labels, groups, _ = cal.simulate("null_paired" if paired else "null_pooled", 300, 8, 8, 0.05, rng)
        dense_seeds, dense = groups.pop("dense")
        for name, (seeds, preds) in list(groups.items())[:2]:
            votes = pm.Votes(cal.logits_of(np.concatenate([dense, preds]), 2, rng), "single_label", None, "probability")
            out.append(pm.floor_test(votes, 8, 8, pm.seed_pairs(name, dense_seeds, seeds), 199, rng)["p_value"])
    return np.array(out)


def test_floor_test_is_calibrated_under_both_nulls_and_has_power():
    rng = np.random.default_rng(2026)
    pooled = _null_p_values(False, 75, rng)  # exchangeable: the p-value is uniform
    se = np.sqrt(0.05 * 0.95 / len(pooled))
    assert (pooled < 0.05).mean() <= 0.05 + 3 * se
    assert 0.2 - 3 * np.sqrt(0.16 / len(pooled)) < (pooled < 0.2).mean() < 0.2 + 3 * np.sqrt(0.16 / len(pooled))
    paired = _null_p_values(True, 75, rng)   # random flips: no PIE beyond seed noise
    assert (paired < 0.05).mean() <= 0.05 + 3 * se
    # Planted: 5% of the examples (15) flipped in every pruned model; each group detected.
    cal = _calibration()
    for scenario in ("planted_paired", "planted_pooled"):
        labels, groups, truth = cal.simulate(scenario, 300, 8, 8, 0.05, rng)
        dense_seeds, dense = groups.pop("dense")
        for name, (seeds, preds) in groups.items():
            votes = pm.Votes(cal.logits_of(np.concatenate([dense, preds]), 2, rng), "single_label", None, "paper")
            p = pm.floor_test(votes, 8, 8, pm.seed_pairs(name, dense_seeds, seeds), 199, rng)["p_value"]
            if truth[name] == 0.05:
                assert p < 0.01, (scenario, name, p)


def test_fast_calibration_through_file_mode(tmp_path):
    cal = _calibration()
    args = ["--studies", "2", "--n", "400", "--m", "8", "--n-perm", "199", "--n-resample", "100", "--no-speed",
            "--scenarios", "null_pooled,planted_paired"]
    out = cal.main(args)
    assert out["point_in_ci"] == 1.0 and out["every_point_in_its_ci"] == 1.0
    assert out["fpr_null_pooled"] <= 0.25          # 8 null groups, Holm within each study
    assert out["power_paired_5pct"] == 1.0  # 20 planted examples of 400, at 8 vs 8 seeds
    assert json.loads(json.dumps(out))["null_groups"] == 10


def test_tie_rule_paper_takes_the_lowest_index_and_tie_decided_pies_are_counted():
    # Dense: 2 models, example 0 tied 1-1 with class 1 more probable; examples 1, 2 unanimous.
    dense = np.array([[[0.2, 0.0], [3, 0], [0, 3]], [[0.0, 3.0], [3, 0], [0, 3]]], np.float32)
    pruned = onehot([[1, 1, 1], [1, 1, 1], [1, 0, 1]])  # modal 1, 1, 1
    labels = np.array([1, 1, 0])
    st = Stacked("test", "single_label", np.array(["e0", "e1", "e2"]), labels,
                 {"dense": GroupStack(np.arange(2), dense, None), "magnitude-os@0.50": GroupStack(np.arange(3), pruned, None)})
    prob = compare(st, min_seeds=2)
    paper = compare(st, min_seeds=2, tie_rule="paper")
    assert prob.modal["dense"].label.tolist() == [1, 0, 1] and paper.modal["dense"].label.tolist() == [0, 0, 1]
    sp, sq = paper.summary["magnitude-os@0.50"], prob.summary["magnitude-os@0.50"]
    assert paper.flags["magnitude-os@0.50"].tolist() == [True, True, False] and sp["n_pies_tie_decided"] == 1
    assert prob.flags["magnitude-os@0.50"].tolist() == [False, True, False] and sq["n_pies_tie_decided"] == 0
    assert sp["tie_rule"] == "paper" and sp["n_ties_dense"] == 1
    # The PIEs by outcome: e0 (gold 1) pruned right; e1 (gold 1) pruned right too.
    assert (sp["n_pies_pruned_right"], sp["n_pies_dense_right"], sp["n_pies_both_wrong"]) == (2, 0, 0)
    assert sp["pie_pruned_right_share"] == 1.0 and sq["pie_dense_right_share"] == 0.0
    with pytest.raises(Exception, match="tie_rule"):
        compare(st, min_seeds=2, tie_rule="highest")


def test_pie_outcomes_both_wrong_in_three_classes():
    dense = onehot([[0, 0], [0, 0], [0, 0]], 3)
    pruned = onehot([[1, 2], [1, 2], [1, 2]], 3)
    st = Stacked("test", "single_label", np.array(["e0", "e1"]), np.array([2, 1]),
                 {"dense": GroupStack(np.arange(3), dense, None), "p@0.5": GroupStack(np.arange(3), pruned, None)})
    s = compare(st).summary["p@0.5"]
    assert (s["n_pies_pruned_right"], s["n_pies_dense_right"], s["n_pies_both_wrong"]) == (0, 0, 2)
    assert s["pie_both_wrong_share"] == 1.0


def test_three_seeds_per_side_can_never_be_above_the_floor():
    from pie_mlops.analysis import group_stats as gs

    labels = np.tile([0, 1], 50)
    dense = onehot(np.tile(labels, (3, 1)))
    pruned = onehot(np.tile(1 - labels, (3, 1)))           # every example flipped, every model
    st = Stacked("test", "single_label", np.array([f"e{i}" for i in range(100)]), labels,
                 {"dense": GroupStack(np.arange(3), dense, None), "magnitude-os@0.90": GroupStack(np.arange(3), pruned, None)})
    r = gs.add_statistics(compare(st), gs.StatOptions(n_boot=10, n_perm=500, n_resample=50, n_half=20, alpha=0.05))
    s = r.summary["magnitude-os@0.90"]
    assert s["pie_share"] == 1.0 and s["floor_test"]["min_p"] == 0.25
    assert s["floor_test"]["p_value"] >= 0.2 and s["above_floor"] is False and "3 seeds" in s["floor_test"]["note"]
