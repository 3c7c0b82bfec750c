"""Fast path for BERT sequence classifiers: the same logits (and gradients) for less work.

`cls_logits(hf_model, input_ids, attention_mask, token_type_ids)` computes what
`BertForSequenceClassification(...).logits` computes, with the model's own modules
(embeddings, Linear, LayerNorm, activation, dropout, pooler, classifier), equal within float
rounding (~1e-7 on MiniLM), skipping work whose results the logits never read. It is plain
autograd code, so in training (grad on, dropout on) the backward skips the same work and
gives HF's gradients: the loss reads only the logits, hence only [CLS] of the last layer.

* **Padding.** Every per-token op (embeddings, Q/K/V and output projections, LayerNorms,
  the FFN) runs on the real tokens only, packed into one [tokens, hidden] matrix. Only
  attention, the one op that mixes tokens, sees the padded [batch, length] layout: Q, K
  and V are scattered into it, masked as HF masks them, and gathered back. Length-sorted
  batches of 32 Rotten Tomatoes reviews still carry 7-13% padding.
* **The last layer beyond [CLS].** The pooler reads only position 0 of the last layer, so
  there the query, attention output, projection, LayerNorms and FFN run for [CLS] alone,
  and K and V are never formed: per head, q.k_j = (Wk^T q).x_j + const and
  sum_j p_j v_j = Wv (sum_j p_j x_j) + bv, so [CLS] attends over the layer's inputs x_j
  directly. About 5/6 of a layer's work saved (~14% of a 6-layer model).
* **Attention kernel.** Up to 128 tokens, attention is two batched matmuls and a softmax,
  2-3x faster on CPU than PyTorch's flash-attention kernel at ~30 tokens; longer batches use
  scaled_dot_product_attention. Both compute the same softmax attention.

Dropout is applied where HF applies it, by the same modules and flags: BertEmbeddings'
own dropout after its LayerNorm, BertSelfOutput's and BertOutput's after their dense layers,
attention-probability dropout (p = self-attention's dropout.p, on when that module is in
training mode, as HF's attention functions read it), and the classifier's dropout on the
pooled output. Only the random draws differ from HF's (no masks are drawn for padding or
for the last layer's non-[CLS] tokens, which the loss never reads): same distribution,
same seed -> same result.

It returns None, and the caller runs the normal HF forward, for anything it does not
understand: another architecture or a subclass, a decoder, cross-attention, attention
other than SDPA/eager, extra inputs, forward hooks (except torch.nn.utils.prune's
weight-recomputing pre-hooks), gradient checkpointing, or a [CLS] position that is padding
(left padding). Head counts and FFN widths come from each layer's actual weight shapes, so
structurally pruned models (different heads / neurons per layer) take it too.
"""

from __future__ import annotations

import torch
from torch import nn

from pie_mlops.util.compat import attn_implementation, forward_hooks

_ATTENTION = ("sdpa", "eager")  # both compute plain softmax attention
_MATMUL_MAX_LEN = 128


def _modules_ok(model: nn.Module) -> bool:
    """No forward hooks that could see another shape or a skipped module, no gradient checkpointing.

    Dropout needs no check: every site runs through the module (or flag) HF reads, so a submodule
    left in train mode in an eval model (prune_linear_layer makes them) drops out here as in HF."""
    from torch.nn.utils.prune import BasePruningMethod

    from pie_mlops.util.compat import forward_hooks, has_global_forward_hooks

    if has_global_forward_hooks():
        return False
    for m in model.modules():
        hooks, pre_hooks = forward_hooks(m)
        if hooks:
            return False
        if any(not isinstance(h, BasePruningMethod) for h in pre_hooks):
            return False  # a pruning pre-hook only recomputes `weight`: any input shape is fine
        if getattr(m, "gradient_checkpointing", False):
            return False  # the caller asked for HF's recompute-in-backward memory trade
    return True


def supported(hf_model) -> bool:
    """True when `hf_model` has exactly the BERT classifier layout this module computes."""
    from transformers.models.bert import modeling_bert as mb

    if type(hf_model) is not mb.BertForSequenceClassification:
        return False
    bert = getattr(hf_model, "bert", None)
    cfg = getattr(hf_model, "config", None)
    if type(bert) is not mb.BertModel or cfg is None or getattr(cfg, "is_decoder", False) \
            or getattr(cfg, "add_cross_attention", False) or attn_implementation(cfg) not in _ATTENTION \
            or attn_implementation(bert.config) != attn_implementation(cfg):
        return False
    if type(bert.embeddings) is not mb.BertEmbeddings or type(bert.pooler) is not mb.BertPooler \
            or type(bert.encoder) is not mb.BertEncoder or not isinstance(hf_model.classifier, nn.Linear) \
            or len(bert.encoder.layer) == 0:
        return False
    for layer in bert.encoder.layer:
        if type(layer) is not mb.BertLayer or hasattr(layer, "crossattention") \
                or type(layer.attention) is not mb.BertAttention or layer.attention.is_cross_attention:
            return False
        sa = layer.attention.self
        if type(sa) is not mb.BertSelfAttention or sa.is_causal \
                or type(layer.attention.output) is not mb.BertSelfOutput \
                or type(layer.intermediate) is not mb.BertIntermediate or type(layer.output) is not mb.BertOutput:
            return False
        if not all(isinstance(getattr(sa, n), nn.Linear) for n in ("query", "key", "value")):
            return False
        hd = int(sa.attention_head_size)
        widths = {sa.query.out_features, sa.key.out_features, sa.value.out_features,
                  layer.attention.output.dense.in_features}
        if hd < 1 or len(widths) != 1 or next(iter(widths)) % hd:
            return False
    return _modules_ok(hf_model)


def _to_padded(x: torch.Tensor, idx: torch.Tensor | None, rows: int) -> torch.Tensor:
    """Packed [tokens, d] -> [batch * length, d], zeros at the padding (which attention masks out)."""
    if idx is None:
        return x
    return x.new_zeros((rows, x.shape[-1])).index_copy_(0, idx, x)


def _attn_dropout(sa) -> float:
    """HF's attention functions drop probabilities with sa.dropout.p when sa itself is training."""
    return float(sa.dropout.p) if sa.training else 0.0


def _attention(sa, h, idx, bias, batch: int, length: int) -> torch.Tensor:
    """BertSelfAttention on packed tokens `h` [tokens, hidden] -> context [tokens, heads * hd].

    softmax(q k^T * scale + mask) v as two batched matmuls: for the short sequences of
    length-sorted batches this is 2-3x faster on CPU than PyTorch's flash-attention kernel
    (its per-block overhead dominates at ~30 tokens). `bias` is the additive padding mask
    [batch, 1, 1, length] (0 or the dtype's minimum, as HF's eager attention uses), or None.
    """
    hd, p = sa.attention_head_size, _attn_dropout(sa)
    split = lambda t: t.view(batch, length, -1, hd).transpose(1, 2)  # [batch, heads, length, hd]
    q, k, v = (split(_to_padded(lin(h), idx, batch * length)) for lin in (sa.query, sa.key, sa.value))
    if length > _MATMUL_MAX_LEN:  # long sequences: the fused kernel wins and never materialises L x L
        mask = None if bias is None else bias == 0
        out = torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=p,
                                                               scale=sa.scaling)
    else:
        scores = torch.matmul(q, k.transpose(-1, -2)).mul_(sa.scaling)
        if bias is not None:
            scores.add_(bias)
        out = torch.matmul(_drop(scores.softmax(-1), p), v)  # [batch, heads, length, hd]
    out = out.transpose(1, 2).reshape(batch * length, -1)
    return out if idx is None else out.index_select(0, idx)


def _drop(probs: torch.Tensor, p: float) -> torch.Tensor:
    return torch.nn.functional.dropout(probs, p, training=True) if p > 0 else probs


def _plain(linear) -> bool:
    """A bare nn.Linear whose .weight is current: safe to use its weights without calling it."""
    return type(linear) is nn.Linear and not forward_hooks(linear)[1]


def _cls_attention(sa, h, idx, bias, batch: int, length: int, cls_rows: torch.Tensor) -> torch.Tensor:
    """The last layer's attention for the [CLS] queries only -> [batch, heads * hd].

    With bare Linear key/value it never forms K and V for every token (2 x tokens x hidden x width
    multiply-adds): per head n, q.(Wk_n x + bk_n) = (Wk_n^T q).x + q.bk_n, and the constant q.bk_n
    drops out of the softmax; sum_j p_j (Wv_n x_j + bv_n) = Wv_n (sum_j p_j x_j) + bv_n, as the
    p_j sum to 1 (also after dropout: sum_j d_j p_j v_j = Wv (sum_j d_j p_j x_j) + bv sum_j d_j p_j, the
    last factor formed explicitly). The same function, reassociated: a few batch x heads x hidden x
    (hd or length) products. q.bk_n is added all the same, so key.bias gets its (zero) gradient as in HF.
    """
    hd, p = sa.attention_head_size, _attn_dropout(sa)
    q = sa.query(h.index_select(0, cls_rows))  # [batch, heads * hd]
    heads = q.shape[-1] // hd
    if not (_plain(sa.key) and _plain(sa.value)):  # e.g. torch.nn.utils.prune: call the modules
        k = _to_padded(sa.key(h), idx, batch * length).view(batch, length, heads, hd).permute(0, 2, 3, 1)
        v = _to_padded(sa.value(h), idx, batch * length).view(batch, length, heads, hd).transpose(1, 2)
        scores = torch.matmul(q.view(batch, heads, 1, hd), k).mul_(sa.scaling)  # [batch, heads, 1, length]
        if bias is not None:
            scores.add_(bias)
        return torch.matmul(_drop(scores.softmax(-1), p), v).reshape(batch, -1)
    x = _to_padded(h, idx, batch * length).view(batch, length, -1)  # [batch, length, hidden]
    qk = torch.einsum("bnd,ndx->bnx", q.view(batch, heads, hd), sa.key.weight.view(heads, hd, -1))
    scores = torch.bmm(qk, x.transpose(1, 2))  # [batch, heads, length]
    if sa.key.bias is not None:  # constant over j: a no-op in the softmax, kept for the gradient's sake
        scores = scores + (q.view(batch, heads, hd) * sa.key.bias.view(heads, hd)).sum(-1, keepdim=True)
    scores = scores.mul_(sa.scaling)
    if bias is not None:
        scores.add_(bias.view(batch, 1, length))
    probs = _drop(scores.softmax(-1), p)
    mixed = torch.bmm(probs, x)  # [batch, heads, hidden]
    out = torch.einsum("bnx,ndx->bnd", mixed, sa.value.weight.view(heads, hd, -1))
    if sa.value.bias is not None:  # times sum_j p_j: 1 without dropout, not with it
        vb = sa.value.bias.view(heads, hd)
        out = out + (vb if p == 0 else probs.sum(-1, keepdim=True) * vb)
    return out.reshape(batch, -1)


def cls_logits(hf_model, input_ids: torch.Tensor | None = None, attention_mask: torch.Tensor | None = None,
               token_type_ids: torch.Tensor | None = None, **other) -> torch.Tensor | None:
    """The classifier's logits [batch, labels], or None where the normal HF forward must run."""
    if any(v is not None for v in other.values()) or input_ids is None or input_ids.dim() != 2 \
            or input_ids.shape[1] == 0 or not supported(hf_model):
        return None
    bert = hf_model.bert
    batch, length = input_ids.shape
    if length > bert.embeddings.position_ids.shape[1]:
        return None  # HF raises its own error for over-long input
    for t in (attention_mask, token_type_ids):
        if t is not None and t.shape != input_ids.shape:
            return None
    idx = bias = None
    if attention_mask is not None and not bool(attention_mask.all()):
        keep = attention_mask.bool()
        if not bool(keep[:, 0].all()):
            return None  # [CLS] at a padded position (left padding): leave it to HF
        idx = keep.reshape(-1).nonzero().squeeze(1)  # ascending: row by row
        counts = keep.sum(1)
        cls_rows = torch.cumsum(counts, 0) - counts  # each row's first token in the packed order
    else:
        cls_rows = torch.arange(batch, device=input_ids.device) * length
    positions = bert.embeddings.position_ids[0, :length].expand(batch, length).reshape(-1)
    types = torch.zeros_like(input_ids) if token_type_ids is None else token_type_ids
    ids, types = input_ids.reshape(-1), types.reshape(-1)
    if idx is not None:
        ids, types, positions = ids.index_select(0, idx), types.index_select(0, idx), positions.index_select(0, idx)
    h = bert.embeddings(input_ids=ids[None], token_type_ids=types[None], position_ids=positions[None])[0]
    if idx is not None:  # padding keys get the dtype's minimum: exp() of it is exactly 0, as in HF
        bias = torch.zeros((batch, 1, 1, length), dtype=h.dtype, device=h.device)
        bias.masked_fill_(~keep[:, None, None, :], torch.finfo(h.dtype).min)

    layers = bert.encoder.layer
    for i, layer in enumerate(layers):
        last = i == len(layers) - 1
        sa = layer.attention.self
        attn = _cls_attention(sa, h, idx, bias, batch, length, cls_rows) if last else \
            _attention(sa, h, idx, bias, batch, length)
        residual = h.index_select(0, cls_rows) if last else h
        a = layer.attention.output(attn, residual)  # dense, dropout, LayerNorm(x + residual)
        h = layer.output(layer.intermediate(a), a)
    pooled = bert.pooler(h[:, None, :])  # h is [batch, hidden]: [CLS] of every row
    return hf_model.classifier(hf_model.dropout(pooled))
