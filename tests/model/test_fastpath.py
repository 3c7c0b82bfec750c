"""The fast path (models/fastpath.py) gives the HF forward's logits and gradients, and only where it should run."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pie_mlops.models import fastpath
from pie_mlops.models.fastpath import cls_logits

TEXTS = ["a film", "the plot was dull and the acting quite weak, really boring",
         "superb", "lovely and moving story, fine acting", "awful", "the film was a story and a plot"]
PAIRS = ["it was good", "no", "the story moved me and the acting was lovely", "weak", "a plot", "fine"]
ATOL = 1e-5


def _scramble(model, seed: int = 0) -> None:
    """Weights well away from the tiny init, so logits are O(1) and a real difference cannot hide under atol."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            noise = torch.randn(p.shape, generator=g)
            if "LayerNorm.weight" in name:
                p.copy_(1 + 0.2 * noise)
            elif p.ndim == 1:
                p.copy_(0.1 * noise)
            else:
                p.copy_(noise / p.shape[-1] ** 0.5 * 1.5)


@pytest.fixture
def bert(tiny_bert):
    model = tiny_bert(3)
    _scramble(model.model)
    return model.eval()


def _inputs(model, texts=TEXTS, pairs=None, rows=None):
    enc = model.encode(texts, pairs)
    rows = np.arange(len(texts)) if rows is None else np.asarray(rows)
    return model.batch_inputs(enc, rows, torch.device("cpu"))


def _check(model, inputs) -> torch.Tensor:
    with torch.no_grad():
        want = model.model(**inputs).logits
        fast = cls_logits(model.model, **inputs)
        via_forward = model(**inputs)
    assert fast is not None, "the fast path refused a model it should handle"
    assert want.abs().max() > 0.1  # a meaningful comparison
    torch.testing.assert_close(fast, want, atol=ATOL, rtol=1e-5)
    torch.testing.assert_close(via_forward, fast, atol=0, rtol=0)  # forward() took the fast path
    return fast


def test_padding_matches_hf(bert):
    inputs = _inputs(bert)
    assert "attention_mask" in inputs and not bool(inputs["attention_mask"].all())
    _check(bert, inputs)


def test_no_padding_matches_hf(bert):
    same = ["the film", "the plot", "an actor"]  # two word pieces each: equal lengths, no mask
    inputs = _inputs(bert, texts=same)
    assert "attention_mask" not in inputs
    _check(bert, inputs)
    inputs["attention_mask"] = torch.ones_like(inputs["input_ids"])  # an all-ones mask is no padding
    _check(bert, inputs)
    del inputs["token_type_ids"]  # HF's default segment ids
    _check(bert, inputs)


def test_sentence_pairs_match_hf(bert):
    inputs = _inputs(bert, pairs=PAIRS)
    assert bool((inputs["token_type_ids"] == 1).any())
    fast = _check(bert, inputs)
    with torch.no_grad():  # the segment ids matter: dropping them changes the logits
        assert not torch.allclose(fast, cls_logits(bert.model, inputs["input_ids"], inputs.get("attention_mask")))


def test_padding_does_not_leak(bert):
    """A row's logits do not depend on its batch: alone (no padding) or padded among longer rows."""
    inputs = _inputs(bert)
    with torch.no_grad():
        batch = cls_logits(bert.model, **inputs)
        for i in range(len(TEXTS)):
            alone = cls_logits(bert.model, **_inputs(bert, rows=[i]))
            torch.testing.assert_close(alone[0], batch[i], atol=ATOL, rtol=1e-5)


def test_eager_attention_and_the_long_sequence_kernel(bert, monkeypatch):
    inputs = _inputs(bert, pairs=PAIRS)
    monkeypatch.setattr(fastpath, "_MATMUL_MAX_LEN", 0)  # the SDPA branch used beyond 128 tokens
    _check(bert, inputs)
    monkeypatch.undo()
    bert.model.config._attn_implementation = "eager"
    _check(bert, inputs)


@pytest.mark.parametrize("pruned", [0, 1])
def test_layers_with_different_heads_and_widths(bert, pruned):
    """Structured pruning leaves each layer its own head count and FFN width; shapes come from the weights."""
    from transformers.pytorch_utils import prune_linear_layer

    from pie_mlops.models.bert import encoder_structure, set_head_count

    layers = bert.model.bert.encoder.layer
    sa = layers[pruned].attention.self
    keep = torch.arange(sa.attention_head_size, 2 * sa.attention_head_size)  # keep head 1 of 2
    for name in ("query", "key", "value"):
        setattr(sa, name, prune_linear_layer(getattr(sa, name), keep, dim=0))
    layers[pruned].attention.output.dense = prune_linear_layer(layers[pruned].attention.output.dense, keep, dim=1)
    set_head_count(sa, 1)
    other = 1 - pruned
    neurons = torch.arange(0, 64, 3)  # the other layer: 22 of 64 FFN neurons
    layers[other].intermediate.dense = prune_linear_layer(layers[other].intermediate.dense, neurons, dim=0)
    layers[other].output.dense = prune_linear_layer(layers[other].output.dense, neurons, dim=1)
    bert.model.eval()  # prune_linear_layer returns modules in train mode
    heads, inter = [2, 2], [64, 64]
    heads[pruned], inter[other] = 1, 22
    assert encoder_structure(bert.model) == {"heads": heads, "intermediate": inter}
    _check(bert, _inputs(bert))
    _check(bert, _inputs(bert, pairs=PAIRS))


def test_predict_logits_uses_it(bert, monkeypatch):
    import pandas as pd

    from pie_mlops.jobs.training import clear_token_cache, predict_logits

    df = pd.DataFrame({"example_id": [f"x{i}" for i in range(len(TEXTS))], "text": TEXTS, "label": [0, 1, 2] * 2})
    clear_token_cache()
    calls = []
    real = fastpath.cls_logits
    monkeypatch.setattr(fastpath, "cls_logits", lambda *a, **k: calls.append(1) or real(*a, **k))
    got = predict_logits(bert, df, batch_size=4, device="cpu")
    assert calls
    with torch.no_grad():
        want = bert.model(**_inputs(bert)).logits.numpy()
    np.testing.assert_allclose(got, want, atol=ATOL, rtol=1e-5)


def test_training_and_grad_use_it_unless_switched_off(bert, monkeypatch):
    calls = []
    real = fastpath.cls_logits
    monkeypatch.setattr(fastpath, "cls_logits", lambda *a, **k: calls.append(1) or real(*a, **k))
    inputs = _inputs(bert)
    bert.train()
    loss = torch.nn.functional.cross_entropy(bert(**inputs), torch.tensor([0, 1, 2, 0, 1, 2]))
    loss.backward()
    assert calls == [1]
    grads = [p.grad for p in bert.model.bert.encoder.layer[-1].parameters()]
    assert all(g is not None for g in grads) and any(float(g.abs().sum()) > 0 for g in grads)
    bert.use_fastpath = False  # the switch the benchmark's reference side and comparisons use
    bert(**inputs)
    bert.eval()
    with torch.no_grad():
        bert(**inputs)
    assert calls == [1]


def _no_dropout(model, except_site=None) -> None:
    """p=0 at every dropout site (train mode leaves them on), p=1 at `except_site` if given."""
    for m in model.model.modules():
        if isinstance(m, torch.nn.Dropout):
            m.p = 1.0 if m is except_site else 0.0


def _loss_and_grads(model, inputs, labels, fast: bool):
    model.use_fastpath = fast
    model.zero_grad(set_to_none=True)
    logits = model(**inputs)
    torch.nn.functional.cross_entropy(logits, labels).backward()
    grads = {n: None if p.grad is None else p.grad.clone() for n, p in model.named_parameters()}
    model.use_fastpath = True
    return logits.detach(), grads


def _check_grads(model, inputs, atol: float = 1e-5) -> None:
    """Logits and every parameter's gradient (the ones with none included) as HF's forward gives them."""
    labels = torch.arange(inputs["input_ids"].shape[0]) % model.num_labels
    calls = []
    real = fastpath.cls_logits
    fastpath.cls_logits = lambda *a, **k: calls.append(real(*a, **k)) or calls[-1]
    try:
        fast_logits, fast = _loss_and_grads(model, inputs, labels, True)
    finally:
        fastpath.cls_logits = real
    assert calls and calls[0] is not None, "the fast path refused a model it should handle"
    want_logits, want = _loss_and_grads(model, inputs, labels, False)
    torch.testing.assert_close(fast_logits, want_logits, atol=ATOL, rtol=1e-5)
    assert {n for n, g in fast.items() if g is None} == {n for n, g in want.items() if g is None}
    assert sum(float(g.abs().sum()) for g in want.values() if g is not None) > 0.01  # not all ~0
    for name, g in want.items():
        if g is not None:
            torch.testing.assert_close(fast[name], g, atol=atol, rtol=1e-4, msg=lambda m, name=name: f"{name}: {m}")


@pytest.mark.parametrize("mode", ["eval", "train_p0"])
@pytest.mark.parametrize("pairs", [False, True])
def test_gradients_match_hf(bert, mode, pairs):
    """Eval mode with grad (importance scores), and train mode with every dropout at p=0."""
    if mode == "train_p0":
        bert.train()
        _no_dropout(bert)
    _check_grads(bert, _inputs(bert, pairs=PAIRS if pairs else None))
    same = ["the film", "the plot", "an actor"]  # equal lengths: no mask
    _check_grads(bert, _inputs(bert, texts=same))


def test_gradients_match_hf_other_kernels_and_shapes(bert, monkeypatch):
    from torch.nn.utils import prune

    bert.train()
    _no_dropout(bert)
    inputs = _inputs(bert, pairs=PAIRS)
    monkeypatch.setattr(fastpath, "_MATMUL_MAX_LEN", 0)  # the SDPA branch used beyond 128 tokens
    _check_grads(bert, inputs)
    monkeypatch.undo()
    bert.model.config._attn_implementation = "eager"
    _check_grads(bert, inputs)
    bert.model.config._attn_implementation = "sdpa"
    with torch.no_grad():  # key.bias matters to nothing, but a nonzero one checks it stays out of the result
        bert.model.bert.encoder.layer[-1].attention.self.key.bias.normal_()
    _check_grads(bert, inputs)
    prune.l1_unstructured(bert.model.bert.encoder.layer[-1].attention.self.key, "weight", amount=0.5)
    prune.l1_unstructured(bert.model.bert.encoder.layer[0].intermediate.dense, "weight", amount=0.5)
    _check_grads(bert, inputs)  # gradients reach weight_orig through the pruning pre-hooks


def _dropout_sites(model) -> dict[str, torch.nn.Dropout]:
    bert = model.model.bert
    sites = {"embeddings": bert.embeddings.dropout, "classifier": model.model.dropout}
    for i, layer in enumerate(bert.encoder.layer):
        sites |= {f"attention_probs{i}": layer.attention.self.dropout,
                  f"attention_output{i}": layer.attention.output.dropout, f"ffn_output{i}": layer.output.dropout}
    return sites


@pytest.mark.parametrize("site", ["embeddings", "classifier", "attention_probs0", "attention_probs1",
                                  "attention_output0", "attention_output1", "ffn_output0", "ffn_output1"])
@pytest.mark.parametrize("attn", ["sdpa", "eager"])
def test_each_dropout_site_is_hfs(bert, site, attn):
    """p=1 at one site zeroes its tensor deterministically: logits and gradients equal HF's only if the
    fast path drops out exactly that tensor (a misplaced or missing dropout gives other numbers)."""
    bert.train()
    bert.model.config._attn_implementation = attn
    _no_dropout(bert, except_site=_dropout_sites(bert)[site])
    _check_grads(bert, _inputs(bert, pairs=PAIRS))


def test_dropout_is_on_in_training_and_seeded(bert):
    bert.train()
    inputs = _inputs(bert, pairs=PAIRS)
    with torch.no_grad():
        torch.manual_seed(0)
        a = bert(**inputs)
        b = bert(**inputs)
        torch.manual_seed(0)
        again = bert(**inputs)
        bert.eval()
        clean = bert(**inputs)
    assert not torch.allclose(a, b) and not torch.allclose(a, clean)
    torch.testing.assert_close(a, again, atol=0, rtol=0)


def test_falls_back_where_it_cannot_be_exact(bert):
    inputs = _inputs(bert)
    with torch.no_grad():
        assert cls_logits(torch.nn.Linear(2, 2), **inputs) is None  # not a BERT classifier
        assert cls_logits(bert.model, **inputs, position_ids=torch.zeros_like(inputs["input_ids"])) is None
        left = {"input_ids": inputs["input_ids"].flip(1), "attention_mask": inputs["attention_mask"].flip(1)}
        assert cls_logits(bert.model, **left) is None  # [CLS] is padding in some rows
        torch.testing.assert_close(bert(**left), bert.model(**left).logits)  # forward() falls back to HF

        handle = bert.model.bert.encoder.layer[-1].output.register_forward_hook(lambda *a: None)
        assert cls_logits(bert.model, **inputs) is None  # a hook must see what HF would give it
        handle.remove()
        layer = bert.model.bert.encoder.layer[0]
        layer.gradient_checkpointing = True  # what activation_checkpointing_enable() sets: HF's memory trade
        assert cls_logits(bert.model, **inputs) is None
        layer.gradient_checkpointing = False
        assert cls_logits(bert.model, **inputs) is not None


def test_torch_prune_reparametrisation_is_kept(bert):
    """torch.nn.utils.prune recomputes `weight` in a pre-hook: the fast path calls modules, so it sees the mask."""
    from torch.nn.utils import prune

    prune.l1_unstructured(bert.model.bert.encoder.layer[-1].attention.self.key, "weight", amount=0.5)
    prune.l1_unstructured(bert.model.bert.encoder.layer[0].intermediate.dense, "weight", amount=0.5)
    _check(bert, _inputs(bert))
