"""Structured pruning: whole attention heads and FFN neurons are cut out of a BERT-layout encoder.

Masks (unstructured pruning) leave every matrix its dense shape, so a CPU runs exactly as many
FLOPs as before. Here the Q/K/V/output and FFN matrices really shrink, so the model is smaller
on disk and faster at inference. Pure tensor code, no I/O.

Choices:
- **Per layer, not global.** Each layer loses the same share of its heads and neurons. A global
  ranking can empty a layer whose weights happen to be small (the residual path then carries
  it, but that layer's work is lost) and makes the speed-up depend on where the cuts fall;
  per layer keeps every layer working and the FLOPs fall predictably by `fraction`.
- **L1 aggregation.** A unit's score is the sum of its weights' per-weight scores: |w| for
  magnitude, |w * dL/dw| for impact. That is the group version of the unstructured criteria
  (the unit whose weights unstructured pruning would zero first scores lowest), and for impact
  it is the sum of the first-order Taylor estimates of the loss change. Units compete only
  within their layer and all have the same weight count, so L1 is a fair mean-|w| ranking.
"""

from __future__ import annotations

import math

import torch
from transformers.pytorch_utils import prune_linear_layer

from pie_mlops.util.errors import PieError
from pie_mlops.models.bert import encoder_layers, encoder_structure, set_head_count
from pie_mlops.config.vocabulary import CRITERIA  # noqa: F401  (one source of the names)


def _hf(model):
    """The Hugging Face model inside a BertClassifier (or the HF model itself)."""
    return getattr(model, "model", model)


def structure_scores(model, criterion: str = "magnitude", grads: dict[str, torch.Tensor] | None = None) -> dict:
    """Importance per attention head and per FFN neuron, per layer (float32, on the CPU):
    {"heads": [Tensor[n_heads_l] ...], "neurons": [Tensor[n_inter_l] ...]}.

    magnitude: sum of |w| over the head's Q, K, V rows and output-projection columns (the
    neuron's intermediate row and output column). impact: the same sum of |w * g|, with g from
    `grads`, keyed by `model.named_parameters()` names. random: uniform, from torch's global
    generator (seeded by the caller's seed_everything)."""
    if criterion not in CRITERIA:
        raise PieError(f"unknown structured criterion {criterion!r}; choose one of {', '.join(CRITERIA)}")
    if criterion == "impact" and not grads:
        raise PieError("the impact criterion needs gradients (grads keyed by parameter name)")
    names = {id(p): n for n, p in model.named_parameters()}

    def term(linear) -> torch.Tensor:  # per-weight importance of one Linear's weight matrix
        w = linear.weight.detach()
        if criterion == "magnitude":
            return w.abs()
        name = names.get(id(linear.weight), "?")
        g = grads.get(name)
        if g is None:
            raise PieError(f"impact: no gradient for {name}")
        if tuple(g.shape) != tuple(w.shape):
            raise PieError(f"impact: gradient for {name} has shape {tuple(g.shape)}, weight {tuple(w.shape)}")
        return (w * g.detach().to(w.device, w.dtype)).abs()

    heads, neurons = [], []
    for layer in encoder_layers(_hf(model)):
        sa, inter, out = layer.attention.self, layer.intermediate.dense, layer.output.dense
        d = sa.attention_head_size
        n = sa.query.out_features // d
        if criterion == "random":
            heads.append(torch.rand(n))
            neurons.append(torch.rand(inter.out_features))
            continue
        # Q/K/V: head h owns output rows h*d:(h+1)*d; the output projection owns those input columns
        s = sum(term(getattr(sa, k)).reshape(n, d, -1).sum((1, 2)) for k in ("query", "key", "value"))
        s = s + term(layer.attention.output.dense).reshape(-1, n, d).sum((0, 2))
        heads.append(s.float().cpu())
        neurons.append((term(inter).sum(1) + term(out).sum(0)).float().cpu())
    return {"heads": heads, "neurons": neurons}


def _keep(scores: torch.Tensor, fraction: float) -> torch.Tensor:
    """Indices of the units to keep, in their original order: the best n - round(fraction * n), at least 1."""
    n = len(scores)
    k = max(1, n - int(math.floor(fraction * n + 0.5)))
    # stable sort: on ties the lower index survives, so the choice is deterministic
    return torch.argsort(scores, descending=True, stable=True)[:k].sort().values


def _cut(linear, index: torch.Tensor, dim: int):
    # prune_linear_layer builds a float32 Linear in train mode; keep the old dtype, mode and grad flag
    new = prune_linear_layer(linear, index, dim=dim).to(dtype=linear.weight.dtype)
    new.weight.requires_grad_(linear.weight.requires_grad)
    if new.bias is not None:
        new.bias.requires_grad_(linear.bias.requires_grad)
    return new.train(linear.training)


def _prune_layer(layer, keep_heads: torch.Tensor, keep_neurons: torch.Tensor) -> None:
    sa = layer.attention.self
    d = sa.attention_head_size
    if len(keep_heads) < sa.query.out_features // d:
        rows = (keep_heads[:, None] * d + torch.arange(d)[None, :]).reshape(-1)
        sa.query, sa.key, sa.value = [_cut(getattr(sa, k), rows, 0) for k in ("query", "key", "value")]
        layer.attention.output.dense = _cut(layer.attention.output.dense, rows, 1)
        set_head_count(sa, len(keep_heads))
    if len(keep_neurons) < layer.intermediate.dense.out_features:
        layer.intermediate.dense = _cut(layer.intermediate.dense, keep_neurons, 0)
        layer.output.dense = _cut(layer.output.dense, keep_neurons, 1)


def _n_params(model) -> int:
    return int(sum(p.numel() for p in model.parameters()))


def _n_prunable(hf) -> int:
    """Parameters of the Linear layers this module shrinks (embeddings, ~half of MiniLM, never shrink)."""
    mods = [m for layer in encoder_layers(hf) for m in (layer.attention.self.query, layer.attention.self.key,
            layer.attention.self.value, layer.attention.output.dense, layer.intermediate.dense, layer.output.dense)]
    return int(sum(p.numel() for m in mods for p in m.parameters()))


def prune_structured(model, fraction: float, criterion: str = "magnitude", grads=None) -> dict:
    """Remove `fraction` of each layer's heads and of each layer's FFN neurons, lowest score first.

    In place and on the model's device; logits keep their shape. `fraction` is relative to the
    current size (pruning twice compounds). Records `model.structure = {"heads": [...],
    "intermediate": [...]}` (also `config.pie_structure`) and returns that plus `params_before`,
    `params_after` (whole model), `prunable_params_before` / `_after` (the attention and FFN Linears
    only), `heads_removed`, `neurons_removed`. Build optimizers after pruning: the pruned
    Linear modules are new parameters."""
    if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0 <= fraction < 1:
        raise PieError(f"structured pruning fraction must be in [0, 1), got {fraction!r}")
    hf = _hf(model)
    before_shape = encoder_structure(hf)
    scores = structure_scores(model, criterion, grads)
    params_before, prunable_before = _n_params(model), _n_prunable(hf)
    with torch.no_grad():
        for layer, hs, ns in zip(encoder_layers(hf), scores["heads"], scores["neurons"]):
            _prune_layer(layer, _keep(hs, float(fraction)), _keep(ns, float(fraction)))
    structure = encoder_structure(hf)
    # config.num_attention_heads / intermediate_size stay dense: BertSelfAttention derives the
    # head size from them, so load builds the dense shape first and then shrinks to this record
    hf.config.pie_structure = {k: list(v) for k, v in structure.items()}
    if hf is not model:
        model.structure = {k: list(v) for k, v in structure.items()}
    return {**structure, "params_before": params_before, "params_after": _n_params(model),
            "prunable_params_before": prunable_before, "prunable_params_after": _n_prunable(hf),
            "heads_removed": sum(before_shape["heads"]) - sum(structure["heads"]),
            "neurons_removed": sum(before_shape["intermediate"]) - sum(structure["intermediate"])}
