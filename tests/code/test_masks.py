"""Exact keep-mask selection, applying masks and the sparsity report (pie_mlops/pruning/masks.py).

Hand-built tensors only: fast, no network, no packaged model.
"""

import pytest
import torch
from torch import nn

from masks_fixture import n_pruned, pruned_set
from pie_mlops.util.errors import PieError
from pie_mlops.pruning.criteria import criterion_scores
from pie_mlops.pruning.masks import SCOPES, apply_masks, select_masks, sparsity_report


def exact_reference(scores, sparsities, scope, already_pruned=None):
    """The definition, by brute force: earlier pruned first, then lowest score, then flat position."""
    names = list(scores)
    groups = [names] if scope == "global" else [[n] for n in names]
    out = [{} for _ in sparsities]
    for group in groups:
        flat = torch.cat([scores[n].reshape(-1).double() for n in group])
        prev = torch.cat([(already_pruned or {}).get(n, torch.zeros(scores[n].shape, dtype=torch.bool)).reshape(-1)
                          for n in group])
        order = torch.sort(flat, stable=True).indices
        order = order[torch.sort((~prev[order]).int(), stable=True).indices]  # earlier pruned to the front
        for masks, s in zip(out, sparsities):
            keep = torch.ones(flat.numel(), dtype=torch.bool)
            keep[order[:max(round(s * flat.numel()), int(prev.sum()))]] = False
            masks.update({n: m.view(scores[n].shape) for n, m in
                          zip(group, keep.split([scores[n].numel() for n in group]))})
    return out


# -- selection ------------------------------------------------------------------------------------
def test_global_empties_a_layer_of_small_weights_per_layer_keeps_its_share():
    scores = {"small": torch.linspace(0.001, 0.01, 100), "big": torch.linspace(1.0, 2.0, 100)}
    glob = select_masks(scores, [0.5], "global")[0]
    layer = select_masks(scores, [0.5], "per_layer")[0]
    assert int(glob["small"].sum()) == 0 and bool(glob["big"].all())
    assert int(layer["small"].sum()) == 50 and int(layer["big"].sum()) == 50
    assert layer["small"][50:].all() and not layer["small"][:50].any()  # still the smallest within the layer
    with pytest.raises(PieError, match="global, per_layer"):
        select_masks(scores, [0.5], "per_row")


def test_counts_are_exact_with_many_ties_and_ties_break_by_position():
    scores = {"a": torch.zeros(10, 10), "b": torch.zeros(55)}  # every score equal
    for scope in SCOPES:
        for s, masks in zip([0.0, 0.1, 0.333, 0.5, 0.99], select_masks(scores, [0.0, 0.1, 0.333, 0.5, 0.99], scope)):
            if scope == "global":
                k = round(s * 155)
                flat = torch.cat([masks["a"].reshape(-1), masks["b"]])
                assert flat[:k].sum() == 0 and flat[k:].all()  # the first k positions, in dict order
            else:
                for name, n in (("a", 100), ("b", 55)):
                    k = round(s * n)
                    assert masks[name].reshape(-1)[:k].sum() == 0 and masks[name].reshape(-1)[k:].all()


@pytest.mark.parametrize("scope", SCOPES)
def test_selection_matches_a_brute_force_sort_and_masks_nest(scope):
    gen = torch.Generator().manual_seed(0)
    sparsities = [0.0, 0.05, 0.2, 0.5, 0.7, 0.9, 0.99]
    for trial in range(40):
        shapes = [(int(torch.randint(1, 40, (1,), generator=gen)), int(torch.randint(1, 30, (1,), generator=gen)))
                  for _ in range(int(torch.randint(1, 5, (1,), generator=gen)))]
        kind = trial % 4
        scores = {}
        for i, shape in enumerate(shapes):
            if kind == 0:
                t = torch.rand(shape, generator=gen)  # continuous
            elif kind == 1:
                t = torch.randint(0, 4, shape, generator=gen).float()  # heavy ties
            elif kind == 2:
                t = torch.randn(shape, generator=gen)  # negative scores take the general path
            else:
                t = torch.randint(-2, 3, shape, generator=gen).float() * -1e-3  # ties, -0.0 == 0.0
                t.view(-1)[0] = float("-inf") if trial % 8 == 3 else t.view(-1)[0]
            scores[f"w{i}"] = t
        prev = {n: torch.rand(t.shape, generator=gen) < 0.3 for n, t in scores.items()} if trial % 3 == 0 else None
        got = select_masks(scores, sparsities, scope, already_pruned=prev)
        want = exact_reference(scores, sparsities, scope, prev)
        for g, w in zip(got, want):
            assert list(g) == list(scores)
            for name in scores:
                assert g[name].dtype == torch.bool and g[name].shape == scores[name].shape
                assert torch.equal(g[name], w[name]), (trial, name)
        for lower, higher in zip(got, got[1:]):  # a higher sparsity prunes a superset
            assert pruned_set(lower) <= pruned_set(higher)


def test_already_pruned_entries_are_never_revived():
    weights = {"a": nn.Parameter(torch.arange(1.0, 101.0).view(10, 10)), "b": nn.Parameter(torch.arange(1.0, 51.0))}
    first = select_masks(criterion_scores(weights, "random", seed=0), [0.3])[0]
    earlier = {n: ~m for n, m in first.items()}
    # fresh random scores rank entries differently, yet the earlier 45 must stay among the pruned
    later = select_masks(criterion_scores(weights, "random", seed=1), [0.6, 0.1], already_pruned=earlier)
    assert pruned_set(first) < pruned_set(later[0]) and n_pruned(later[0]) == 90
    assert pruned_set(later[1]) == pruned_set(first)  # asked for fewer than before: all stay, no more
    for scope in SCOPES:
        masks = select_masks(criterion_scores(weights, "magnitude"), [0.5], scope, already_pruned=earlier)[0]
        assert pruned_set(first) <= pruned_set(masks)
    with pytest.raises(PieError, match="no scores"):
        select_masks({"a": torch.ones(3)}, [0.5], already_pruned={"zz": torch.zeros(3, dtype=torch.bool)})
    with pytest.raises(PieError, match="shape"):
        select_masks({"a": torch.ones(3)}, [0.5], already_pruned={"a": torch.zeros(4, dtype=torch.bool)})


@pytest.mark.parametrize("bad", [1.0, 1.5, -0.1, float("nan"), "half", None])
def test_sparsity_outside_zero_one_is_an_error(bad):
    with pytest.raises(PieError, match=r"\[0, 1\)"):
        select_masks({"w": torch.rand(10)}, [0.5, bad])


def test_nan_scores_are_an_error_not_a_silent_keep():
    for bad in (torch.tensor([0.1, float("nan"), 0.3]), torch.tensor([-0.1, float("nan"), 0.3]),
                torch.tensor([0.1, -float("nan"), 0.3])):
        with pytest.raises(PieError, match="NaN"):
            select_masks({"w": bad}, [0.5])


# -- applying and reporting -----------------------------------------------------------------------
def test_apply_masks_and_sparsity_report():
    weights = {"a": nn.Parameter(torch.tensor([[1.0, float("inf")], [3.0, 4.0]])), "b": nn.Parameter(torch.ones(6))}
    masks = {"a": torch.tensor([[True, False], [True, False]]), "b": torch.tensor([True] * 5 + [False])}
    apply_masks(weights, masks)
    assert weights["a"].tolist() == [[1.0, 0.0], [3.0, 0.0]]  # inf zeroed, not NaN
    assert weights["b"].tolist() == [1.0] * 5 + [0.0]
    report = sparsity_report(weights)
    assert report == {"achieved_sparsity": 3 / 10, "per_layer": {"a": 0.5, "b": 1 / 6}, "nonzero": 7, "total": 10}
    with pytest.raises(PieError, match="not among the weights"):
        apply_masks(weights, {"c": torch.ones(2, dtype=torch.bool)})
    with pytest.raises(PieError, match="shape"):
        apply_masks(weights, {"a": torch.ones(4, dtype=torch.bool)})
