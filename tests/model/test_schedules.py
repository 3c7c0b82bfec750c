"""Pruning schedules driven by the real training loop, on a tiny BERT."""

import pytest
import torch

from pie_mlops.util.errors import PieError
from pie_mlops.pruning.criteria import prunable_weights
from pie_mlops.pruning.masks import sparsity_report
from pie_mlops.pruning.schedules import ScheduledPruning, one_shot, schedule_epochs, step_sparsities
from pie_mlops.jobs.training import TrainConfig, accumulate_gradients, train

CFG = dict(batch_size=32, lr=1e-3, progress=False, seed=0)


def _sparsity(model) -> float:
    return sparsity_report(prunable_weights(model))["achieved_sparsity"]


def test_step_sparsities_prune_the_same_share_of_survivors_and_end_on_target():
    steps = step_sparsities(0.9, 3)
    assert steps[-1] == 0.9 and steps == sorted(steps)
    kept = [1.0] + [1 - s for s in steps]
    ratios = [b / a for a, b in zip(kept, kept[1:])]
    assert max(ratios) - min(ratios) < 1e-9  # geometric: each step keeps the same fraction
    assert schedule_epochs("ft", 2) == 8 and schedule_epochs("ai", 2) == 2
    with pytest.raises(PieError, match=r"\[0, 1\)"):
        step_sparsities(1.0, 3)


def test_ft_reaches_the_target_exactly_after_three_steps_and_zeros_survive(tiny_bert, sentiment):
    model = tiny_bert(2)
    pruner = ScheduledPruning("magnitude", "ft", 0.7, epochs_per_step=1)
    result = train(model, sentiment["train"], sentiment["validation"], TrainConfig(epochs=pruner.epochs, **CFG),
                   pruner=pruner)
    seen = [h["sparsity"] for h in result.history]
    assert len(seen) == 4
    for got, want in zip(seen, step_sparsities(0.7, 3) + [0.7]):
        assert got == pytest.approx(want, abs=1e-3)
    total = sparsity_report(prunable_weights(model))["total"]
    assert _sparsity(model) == round(0.7 * total) / total  # exact, after a whole epoch of updates
    for name, w in prunable_weights(model).items():
        assert torch.all(w[~pruner.masks[name]] == 0)  # Adam's momentum revived nothing


def test_wr_rewinds_the_survivors_to_their_initial_values(tiny_bert, sentiment):
    model = tiny_bert(2)
    initial = {n: p.detach().clone() for n, p in model.named_parameters()}
    pruner = ScheduledPruning("magnitude", "wr", 0.5, epochs_per_step=1)
    checked = []

    def after_first_step(epoch, metrics):
        if epoch == 1:  # right after the first pruning step, before any further training
            for name, p in model.named_parameters():
                want = initial[name] * pruner.masks[name] if name in pruner.masks else initial[name]
                assert torch.equal(p.detach(), want), name
            checked.append(epoch)

    train(model, sentiment["train"], None, TrainConfig(epochs=pruner.epochs, **CFG), on_epoch_end=after_first_step,
          pruner=pruner)
    assert checked == [1]
    assert _sparsity(model) == pytest.approx(0.5, abs=1e-3)
    # the survivors trained again after the last rewind
    assert any(not torch.equal(p, initial[n]) for n, p in prunable_weights(model).items())


def test_ai_prunes_before_the_first_step(tiny_bert, sentiment):
    model = tiny_bert(2)
    total = sparsity_report(prunable_weights(model))["total"]
    pruner = ScheduledPruning("random", "ai", 0.5, epochs_per_step=1, seed=3)
    seen_by_first_forward = []
    hook = model.register_forward_pre_hook(
        lambda m, args: seen_by_first_forward.append(_sparsity(m)) if not seen_by_first_forward else None)
    train(model, sentiment["train"], None, TrainConfig(epochs=pruner.epochs, **CFG), pruner=pruner)
    hook.remove()
    assert seen_by_first_forward == [round(0.5 * total) / total]  # the very first batch ran pruned
    assert pruner.steps_done == 1 and _sparsity(model) == round(0.5 * total) / total


def test_one_shot_with_impact_uses_gradients_and_recovery_keeps_the_zeros(tiny_bert, sentiment):
    model = tiny_bert(2)
    train(model, sentiment["train"], None, TrainConfig(epochs=1, **CFG))

    def grads_fn(m):
        return accumulate_gradients(m, sentiment["train"], n_batches=2, batch_size=10, seed=0)

    grads = grads_fn(model)
    assert set(prunable_weights(model)) <= set(grads)
    pruner = one_shot(model, "impact", 0.6, grads_fn=grads_fn)
    assert _sparsity(model) == pytest.approx(0.6, abs=1e-3)
    result = train(model, sentiment["train"], None, TrainConfig(epochs=1, max_steps=3, **CFG), pruner=pruner)
    assert len(result.history) == 1
    assert _sparsity(model) == pytest.approx(0.6, abs=1e-3)
    with pytest.raises(PieError, match="grads_fn"):
        one_shot(model, "impact", 0.6)
