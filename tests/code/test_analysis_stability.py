"""PIE-set stability over seeds, the dense-vs-dense noise floor and the overlap matrix."""

import numpy as np
import pytest

from pie_mlops.analysis import stability
from pie_mlops.compare.pies import GroupStack


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
    assert curve["k"] == [2, 3] and curve["jaccard_mean"] == [1.0, 1.0] and curve["jaccard_low"] == [1.0, 1.0]
    floor = stability.noise_floor(dense, "single_label", n_boot=20)
    assert (floor["k"], floor["floor_share"], floor["floor_high"]) == (3, 0.0, 0.0)
    g = stability.group_against_floor(dense, _stack(flipped), "single_label", floor, n_boot=20)
    assert (g["pie_share"], g["pie_share_low"], g["pie_share_high"]) == (0.2, 0.2, 0.2)
    assert g["pie_share_at_k"] == pytest.approx(0.2) and g["above_floor"] is True


def test_noisy_models_give_an_unstable_pie_set_and_a_positive_floor():
    rng = np.random.default_rng(0)
    noisy = _stack(rng.integers(0, 2, (12, 400)))
    curve = stability.stability_curve(noisy, _stack(rng.integers(0, 2, (12, 400))), "single_label", n_boot=20)
    assert curve["k"] == [2, 3, 5]  # disjoint draws only: 2k <= 12
    assert max(curve["jaccard_mean"]) < 0.9
    assert all(lo <= m <= hi for lo, m, hi in zip(curve["jaccard_low"], curve["jaccard_mean"], curve["jaccard_high"]))
    floor = stability.noise_floor(noisy, "single_label", n_boot=20)
    assert floor["k"] == 6 and floor["floor_share"] > 0.2
    # Pure noise against noise: the pruned share must not clear the floor.
    g = stability.group_against_floor(noisy, _stack(rng.integers(0, 2, (12, 400))), "single_label", floor, n_boot=20)
    assert g["above_floor"] is False


def test_a_k_beyond_either_group_is_skipped_and_one_dense_model_has_no_floor():
    dense = _stack(np.zeros((6, 5), np.int64))
    # 4 pruned models: k = 2 only (2k <= 4); never k = 3 or 4, whose draws would share models.
    assert stability.stability_curve(dense, _stack(np.zeros((4, 5), np.int64)), "single_label", n_boot=5)["k"] == [2]
    assert stability.stability_curve(dense, _stack(np.zeros((3, 5), np.int64)), "single_label", n_boot=5)["k"] == []
    floor = stability.noise_floor(_stack(np.zeros((1, 5), np.int64)), "single_label")
    assert floor["floor_share"] is None


def test_multi_label_stability_uses_the_per_label_majority():
    logits = np.full((4, 3, 2), -5.0, np.float32)
    pruned = logits.copy()
    pruned[:, 0, 1] = 5.0  # every pruned model switches label 1 of example 0 on
    dense = GroupStack(np.arange(4), logits, np.full(4, 0.5, np.float32))
    p = GroupStack(np.arange(4), pruned, np.full(4, 0.5, np.float32))
    assert stability.stability_curve(dense, p, "multi_label", n_boot=5)["jaccard_mean"] == [1.0]
    assert stability.group_against_floor(dense, p, "multi_label", stability.noise_floor(dense, "multi_label", 5),
                                         n_boot=5)["pie_share"] == pytest.approx(1 / 3)


def test_overlap_matrix_is_symmetric_with_ones_on_the_diagonal():
    flags = {"b@0.5": np.array([1, 1, 0], bool), "a@0.5": np.array([0, 1, 1], bool), "c@0.9": np.zeros(3, bool)}
    ov = stability.overlap_matrix(flags)
    mat = np.array(ov["jaccard"])
    assert ov["groups"] == ["a@0.5", "b@0.5", "c@0.9"]
    assert np.allclose(mat, mat.T) and np.allclose(np.diag(mat), 1.0)
    assert mat[0, 1] == pytest.approx(1 / 3) and mat[0, 2] == 0.0


def test_stability_draws_are_disjoint_and_never_the_whole_group():
    rng = np.random.default_rng(0)
    for m, k in ((4, 2), (5, 2), (10, 5)):
        for _ in range(50):
            a, b = stability._two_draws(m, k, rng)
            assert len(a) == len(b) == k and not set(a.tolist()) & set(b.tolist())
    # Pure noise, 5 models: the old k = 5 point (both draws the same 5 models, Jaccard 1) is gone.
    noisy = _stack(rng.integers(0, 2, (5, 300)))
    curve = stability.stability_curve(noisy, _stack(rng.integers(0, 2, (5, 300))), "single_label", n_boot=20)
    assert curve["k"] == [2] and curve["jaccard_mean"][0] < 0.9
