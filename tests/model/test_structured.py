"""Structured pruning: heads and FFN neurons physically removed, exactly, and persisted."""

from __future__ import annotations

import io
import json
import math
import pickle

import numpy as np
import pytest
import torch

from pie_mlops.util.errors import PieError
from pie_mlops.models import load_model
from pie_mlops.models.bert import encoder_layers
from pie_mlops.pruning.structured import prune_structured, structure_scores
from pie_mlops.jobs.training import TrainConfig, accumulate_gradients, predict_logits, train


@pytest.fixture
def four_head_bert(tokenizer):
    """Like tiny_bert, but 4 heads of 8, so that keeping the best one of several is a real choice."""
    from transformers import BertConfig

    from pie_mlops.models.bert import BertClassifier
    from pie_mlops.jobs.training import seed_everything

    seed_everything(0)
    config = BertConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                        intermediate_size=64, max_position_embeddings=128, num_labels=2)
    return BertClassifier.from_config(config, tokenizer, max_length=64)


def _blocks(model):
    return encoder_layers(model.model)


def _head_rows(model, layer: int, head: int) -> torch.Tensor:
    sa = _blocks(model)[layer].attention.self
    d = sa.attention_head_size
    return sa.query.weight[head * d:(head + 1) * d].detach().clone()


def test_surgery_shrinks_exactly_as_counted_and_keeps_logit_shape(tiny_bert, sentiment):
    model = tiny_bert(2)
    before = predict_logits(model, sentiment["test"])
    out = prune_structured(model, 0.5)
    # per layer: 1 of 2 heads (16 dims) and 32 of 64 neurons go; hidden 32, Q/K/V/intermediate have biases
    hid, dh, gone_n = 32, 16, 32
    per_layer = 3 * dh * (hid + 1) + hid * dh + gone_n * (hid + 1) + hid * gone_n
    assert out["params_before"] - out["params_after"] == 2 * per_layer
    assert out["params_after"] == sum(p.numel() for p in model.parameters())
    assert out["prunable_params_before"] - out["prunable_params_after"] == 2 * per_layer
    assert out["heads"] == [1, 1] and out["intermediate"] == [32, 32]
    assert out["heads_removed"] == 2 and out["neurons_removed"] == 64
    assert model.structure == {"heads": [1, 1], "intermediate": [32, 32]}
    sa = _blocks(model)[0].attention.self
    assert (sa.num_attention_heads, sa.all_head_size, sa.query.weight.shape) == (1, 16, (16, 32))
    after = predict_logits(model, sentiment["test"])
    assert after.shape == before.shape and np.isfinite(after).all()


def test_removing_all_zero_heads_and_neurons_leaves_logits_unchanged(four_head_bert, sentiment):
    model = four_head_bert
    with torch.no_grad():
        for layer in _blocks(model):
            sa, d = layer.attention.self, layer.attention.self.attention_head_size
            for head in (1, 3):  # two of four heads: everything they own becomes zero
                rows = slice(head * d, (head + 1) * d)
                for lin in (sa.query, sa.key, sa.value):
                    lin.weight[rows] = 0
                    lin.bias[rows] = 0
                layer.attention.output.dense.weight[:, rows] = 0
            dead = torch.arange(0, 64, 2)  # half the neurons: gelu(0) = 0 and no outgoing weight
            layer.intermediate.dense.weight[dead] = 0
            layer.intermediate.dense.bias[dead] = 0
            layer.output.dense.weight[:, dead] = 0
    before = predict_logits(model, sentiment["test"])
    assert prune_structured(model, 0.5)["heads"] == [2, 2]
    for layer in _blocks(model):
        assert bool(layer.attention.self.query.weight.abs().sum(1).gt(0).all())  # only zero units were cut
        assert bool(layer.intermediate.dense.weight.abs().sum(1).gt(0).all())
    np.testing.assert_allclose(predict_logits(model, sentiment["test"]), before, rtol=0, atol=1e-6)


def test_highest_scoring_head_and_neurons_survive(four_head_bert):
    model = four_head_bert
    scores = structure_scores(model)
    assert [len(s) for s in scores["heads"]] == [4, 4] and [len(s) for s in scores["neurons"]] == [64, 64]
    best = [int(s.argmax()) for s in scores["heads"]]
    top_neurons = [set(torch.topk(s, 19).indices.tolist()) for s in scores["neurons"]]
    kept_rows = [_head_rows(model, i, h) for i, h in enumerate(best)]
    inter_rows = [layer.intermediate.dense.weight.detach().clone() for layer in _blocks(model)]
    out = prune_structured(model, 0.7)  # 4 heads -> 1 (round(2.8) = 3 go); 64 neurons -> 19
    assert out["heads"] == [1, 1] and out["intermediate"] == [19, 19]
    for i, layer in enumerate(_blocks(model)):
        assert torch.equal(layer.attention.self.query.weight, kept_rows[i])
        kept = {int(j) for j in range(64) if any(torch.equal(inter_rows[i][j], r)
                                                 for r in layer.intermediate.dense.weight)}
        assert kept == top_neurons[i]


def test_at_least_one_head_and_neuron_per_layer(tiny_bert):
    model = tiny_bert(2)
    out = prune_structured(model, 0.99, criterion="random")
    assert out["heads"] == [1, 1] and out["intermediate"] == [1, 1]


def test_save_load_and_pickle_predict_identically(tiny_bert, nli, tmp_path):
    model = tiny_bert(3)
    prune_structured(model, 0.5)
    expect = predict_logits(model, nli["test"])  # pairs: token type ids are exercised too
    model.save(tmp_path / "m")
    saved = json.loads((tmp_path / "m" / "pie_model.json").read_text())
    assert saved["structure"] == {"heads": [1, 1], "intermediate": [32, 32]}
    loaded = load_model(tmp_path / "m")
    assert loaded.structure == saved["structure"] and not loaded.model.training  # eval, as from_pretrained
    assert np.array_equal(predict_logits(loaded, nli["test"]), expect)
    for name, p in model.state_dict().items():
        assert torch.equal(p, loaded.state_dict()[name]), name
    buf = io.BytesIO()
    torch.save(model, buf)  # mlflow.pytorch's pickle format
    buf.seek(0)
    unpickled = torch.load(buf, weights_only=False)
    assert np.array_equal(predict_logits(unpickled, nli["test"]), expect)
    assert np.array_equal(predict_logits(pickle.loads(pickle.dumps(model)), nli["test"]), expect)


def test_unpruned_model_saves_without_structure(tiny_bert, tmp_path):
    model = tiny_bert(2)
    assert prune_structured(model, 0.0)["params_after"] == sum(p.numel() for p in model.parameters())
    model.save(tmp_path / "d")
    assert "structure" not in json.loads((tmp_path / "d" / "pie_model.json").read_text())


def test_load_rejects_weights_that_do_not_match_the_structure(tiny_bert, tmp_path):
    model = tiny_bert(2)
    prune_structured(model, 0.5)
    model.save(tmp_path / "m")
    cfg = json.loads((tmp_path / "m" / "pie_model.json").read_text())
    cfg["structure"]["intermediate"] = [16, 16]
    (tmp_path / "m" / "pie_model.json").write_text(json.dumps(cfg))
    with pytest.raises(PieError, match="does not match"):
        load_model(tmp_path / "m")


def test_pruned_model_still_trains(tiny_bert, sentiment):
    model = tiny_bert(2)
    prune_structured(model, 0.5)
    q0 = _blocks(model)[0].attention.self.query.weight.detach().clone()
    w0 = _blocks(model)[1].output.dense.weight.detach().clone()
    result = train(model, sentiment["train"], sentiment["validation"],
                   TrainConfig(epochs=1, batch_size=32, max_steps=2, progress=False))
    assert all(math.isfinite(v) for v in result.history[-1].values() if isinstance(v, float))
    assert not torch.equal(_blocks(model)[0].attention.self.query.weight, q0)  # gradients reached the cut layers
    assert not torch.equal(_blocks(model)[1].output.dense.weight, w0)


@pytest.mark.parametrize("fraction", [-0.1, 1.0, 1.5, float("nan"), True, "0.5"])
def test_bad_fraction_is_an_error(tiny_bert, fraction):
    with pytest.raises(PieError, match="fraction"):
        prune_structured(tiny_bert(2), fraction)


def test_unknown_criterion_and_missing_grads_are_errors(tiny_bert):
    model = tiny_bert(2)
    with pytest.raises(PieError, match="unknown structured criterion"):
        structure_scores(model, "taylor")
    with pytest.raises(PieError, match="needs gradients"):
        prune_structured(model, 0.5, criterion="impact")
    with pytest.raises(PieError, match="no gradient for"):
        structure_scores(model, "impact", grads={"model.classifier.weight": torch.ones(2, 32)})


def test_impact_follows_the_gradients(four_head_bert, sentiment):
    model = four_head_bert
    sa = _blocks(model)[0].attention.self
    d = sa.attention_head_size
    with torch.no_grad():
        for lin in (sa.query, sa.key, sa.value):
            lin.weight[d:2 * d] *= 10  # head 1 is by far the largest: magnitude keeps it
    grads = {n: torch.ones_like(p) for n, p in model.named_parameters()}
    base = "model.bert.encoder.layer.0.attention"
    for k in ("query", "key", "value"):
        grads[f"{base}.self.{k}.weight"][d:2 * d] = 0  # ...but the loss does not care about head 1
        grads[f"{base}.self.{k}.weight"][2 * d:3 * d] = 100  # and cares a lot about head 2
    assert int(structure_scores(model)["heads"][0].argmax()) == 1
    assert int(structure_scores(model, "impact", grads)["heads"][0].argmax()) == 2
    keep = _head_rows(model, 0, 2)
    prune_structured(model, 0.7, criterion="impact", grads=grads)
    assert torch.equal(_blocks(model)[0].attention.self.query.weight, keep)
    # the real gradients path (accumulate_gradients) feeds it too
    real = accumulate_gradients(model, sentiment["train"], n_batches=2, batch_size=8)
    assert all(len(s) == 1 for s in structure_scores(model, "impact", real)["heads"])
