"""Unstructured pruning criteria: which weights, their scores (pie_mlops/pruning/criteria.py), and
a model pruned to its target through them.

Hand-built tensors and tiny modules only: fast, no network, no packaged model.
"""

from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch import nn

from masks_fixture import n_pruned, pruned_set
from pie_mlops.util.errors import PieError
from pie_mlops.pruning.criteria import CRITERIA, criterion_scores, prunable_weights
from pie_mlops.pruning.masks import SCOPES, apply_masks, select_masks, sparsity_report


# -- criteria -------------------------------------------------------------------------------------
def test_magnitude_prunes_exactly_the_smallest_absolute_values():
    weights = {"a": nn.Parameter(torch.tensor([[0.5, -0.05, 2.0], [-3.0, 0.2, -0.01]])),
               "b": nn.Parameter(torch.tensor([1.0, -0.3, 0.04, 4.0]))}
    scores = criterion_scores(weights, "magnitude")
    assert all(s.dtype == torch.float32 for s in scores.values())
    masks = select_masks(scores, [0.5])[0]
    # the 5 smallest |w| of the 10: 0.01, 0.04, 0.05, 0.2, 0.3 (signs must not matter)
    assert pruned_set(masks) == {("a", 5), ("b", 2), ("a", 1), ("a", 4), ("b", 1)}
    apply_masks(weights, masks)
    assert weights["a"].tolist() == [[0.5, 0.0, 2.0], [-3.0, 0.0, 0.0]]
    assert weights["b"].tolist() == [1.0, 0.0, 0.0, 4.0]


def test_impact_uses_the_gradients():
    weights = {"w": nn.Parameter(torch.tensor([1.0, 0.1, -2.0, 0.5]))}
    grads = {"w": torch.tensor([0.001, 10.0, 0.0001, -4.0])}
    # |w * g| = 0.001, 1.0, 0.0002, 2.0: the two big weights with tiny gradients go first
    impact = select_masks(criterion_scores(weights, "impact", grads=grads), [0.5])[0]
    magnitude = select_masks(criterion_scores(weights, "magnitude"), [0.5])[0]
    assert impact["w"].tolist() == [False, True, False, True]
    assert magnitude["w"].tolist() == [True, False, True, False]  # the opposite choice without gradients
    with pytest.raises(PieError, match="gradient"):
        criterion_scores(weights, "impact")
    with pytest.raises(PieError, match="no gradient for w"):
        criterion_scores(weights, "impact", grads={"other": torch.ones(4)})
    with pytest.raises(PieError, match="shape"):
        criterion_scores(weights, "impact", grads={"w": torch.ones(2, 2)})


def test_random_is_seeded_independent_of_global_rng_and_exact_in_count():
    weights = {"a": torch.ones(30, 20), "b": torch.ones(77)}
    torch.manual_seed(1)
    first = criterion_scores(weights, "random", seed=7)
    torch.manual_seed(2)
    torch.rand(100)  # global RNG state moves; seeded scores must not
    again = criterion_scores(weights, "random", seed=7)
    other = criterion_scores(weights, "random", seed=8)
    assert all(torch.equal(first[n], again[n]) for n in weights)
    assert not torch.equal(first["a"], other["a"])
    assert all(float(s.min()) >= 0.0 and float(s.max()) < 1.0 for s in first.values())
    sparsities = [0.1, 0.25, 0.5, 0.9]
    for scope in SCOPES:
        masks_a, masks_b = select_masks(first, sparsities, scope), select_masks(other, sparsities, scope)
        assert pruned_set(masks_a[2]) != pruned_set(masks_b[2])
        for s, m in zip(sparsities, masks_a):
            want = round(s * 677) if scope == "global" else round(s * 600) + round(s * 77)
            assert n_pruned(m) == want


def test_unknown_criterion_names_the_valid_ones():
    with pytest.raises(PieError, match="magnitude, impact, random"):
        criterion_scores({"w": torch.ones(3)}, "taylor")
    assert CRITERIA == ("magnitude", "impact", "random")


# -- which weights --------------------------------------------------------------------------------
def tiny_bert():
    from transformers import BertConfig

    from pie_mlops.models.bert import BertClassifier

    config = BertConfig(vocab_size=100, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=64, num_labels=2)
    return BertClassifier.from_config(config, SimpleNamespace(pad_token_id=0))  # the tokenizer is not used here


def test_prunable_weights_of_our_bert_skip_embeddings_classifier_and_vectors():
    model = tiny_bert()
    names = list(prunable_weights(model))
    assert len(names) == 2 * 6 + 1  # Q, K, V, attention output, FFN in and out per layer, plus the pooler
    assert "model.classifier.weight" not in names and "model.bert.pooler.dense.weight" in names
    assert not any("embeddings" in n or not n.endswith(".weight") or "LayerNorm" in n for n in names)
    assert names == [n for n, _ in model.named_parameters() if n in names]  # named_parameters order
    only_q = prunable_weights(model, include=["*.attention.self.query.weight"])
    assert list(only_q) == [f"model.bert.encoder.layer.{i}.attention.self.query.weight" for i in range(2)]
    assert all(p is dict(model.named_parameters())[n] for n, p in only_q.items())  # the parameters themselves
    assert "model.bert.pooler.dense.weight" not in prunable_weights(model, exclude=["*pooler*"])
    assert "model.classifier.weight" in prunable_weights(model, include=["*.weight"])  # asked for by name
    assert not any("embeddings" in n for n in prunable_weights(model, include=["*"]))  # never embeddings
    for kwargs in ({"include": ["*.nothing_like_this"]}, {"include": ["*embeddings*"]}, {"exclude": ["*"]}):
        with pytest.raises(PieError, match="no prunable weights"):
            prunable_weights(model, **kwargs)


def test_prunable_weights_of_our_bilstm_take_lstm_matrices_and_skip_the_last_layer():
    from pie_mlops.models.bilstm import BiLSTMClassifier

    model = BiLSTMClassifier(["good", "bad"], np.zeros((2, 8), dtype=np.float32), 3, hidden=4, mlp=(6, 5))
    names = set(prunable_weights(model))
    lstm = {f"lstm.weight_{kind}_l{layer}{rev}"
            for kind in ("ih", "hh") for layer in (0, 1) for rev in ("", "_reverse")}
    assert names == lstm | {"head.0.weight", "head.3.weight"}  # head.5 (5 -> 3 classes) is the classifier


def test_classifier_is_the_last_linear_with_num_labels_outputs():
    class Net(nn.Module):
        num_labels = 4

        def __init__(self):
            super().__init__()
            self.emb = nn.Embedding(10, 4)
            self.out = nn.Linear(8, 4)  # defined first, yet the classifier: the last 4-output Linear
            self.hidden = nn.Linear(4, 8)

    assert list(prunable_weights(Net())) == ["hidden.weight"]

    class Tied(nn.Module):  # a Linear sharing the embedding's matrix (weight tying) is still an embedding
        def __init__(self):
            super().__init__()
            self.emb = nn.Embedding(6, 6)
            self.mix = nn.Linear(6, 6)
            self.decoder = nn.Linear(6, 6, bias=False)
            self.decoder.weight = self.emb.weight
            self.out = nn.Linear(6, 2)

    assert list(prunable_weights(Tied())) == ["mix.weight"]



def test_pruning_a_model_meets_the_target_exactly():
    for scope in SCOPES:
        weights = prunable_weights(tiny_bert())
        total = sparsity_report(weights)["total"]
        for s, masks in zip((0.3, 0.7), select_masks(criterion_scores(weights, "magnitude"), [0.3, 0.7], scope)):
            apply_masks(weights, masks)
            report = sparsity_report(weights)
            if scope == "global":
                assert report["achieved_sparsity"] == round(s * total) / total
            else:
                assert all(abs(v - s) <= 1 / weights[n].numel() for n, v in report["per_layer"].items())


@pytest.mark.parametrize("clip_grads", ["all", "unpruned"])
def test_clip_grads_unpruned_clips_what_torch_prune_clips(clip_grads):
    """prune.clip_grads: unpruned leaves the pruned weights' gradients at 0 before the norm is
    clipped, as torch.nn.utils.prune's weight_orig gets them in the paper's code; all keeps them."""
    import copy

    from torch.nn.utils import prune as torch_prune

    from pie_mlops.pruning.schedules import one_shot

    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 2))
    reference = copy.deepcopy(model)
    pruner = one_shot(model, "magnitude", 0.5, clip_grads=clip_grads)
    x, y = torch.randn(16, 6), torch.randint(0, 2, (16,))
    nn.functional.cross_entropy(model(x), y).backward()
    pruner.before_clip(model)
    weights = pruner.weights(model)
    for name, keep in pruner.masks.items():
        layer = reference[int(name.split(".")[0])]
        torch_prune.custom_from_mask(layer, "weight", keep.to(torch.float32))
    nn.functional.cross_entropy(reference(x), y).backward()
    for name, keep in pruner.masks.items():
        theirs = reference[int(name.split(".")[0])].weight_orig.grad
        ours = weights[name].grad
        assert torch.allclose(ours[keep], theirs[keep])                        # survivors: the same gradient
        assert bool((ours[~keep] == 0).all()) == (clip_grads == "unpruned")    # pruned: 0 only in the paper's way
    with pytest.raises(PieError, match="clip_grads"):
        one_shot(model, "magnitude", 0.5, clip_grads="some")
