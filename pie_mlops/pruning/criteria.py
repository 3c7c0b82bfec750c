"""Unstructured pruning criteria: which weights may be pruned and how each is scored.

Pure torch, no I/O. The scores go to pruning/masks.py, which turns them into exact keep-masks.
"""

from __future__ import annotations

import fnmatch
from typing import Sequence

import torch
from torch import nn

from pie_mlops.util.errors import PieError
from pie_mlops.config.vocabulary import CRITERIA  # noqa: F401  (one source of the names)

_LSTM_MATRICES = ("weight_ih_l*", "weight_hh_l*")  # the _reverse directions match too


# -- which weights ----------------------------------------------------------------------------
def _patterns(value) -> list[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else [str(p) for p in value]  # a lone str is no list of chars


def _num_labels(model: nn.Module) -> int | None:
    n = getattr(model, "num_labels", None)
    if isinstance(n, int):
        return n
    for module in model.modules():  # e.g. a wrapped Hugging Face model's config
        n = getattr(getattr(module, "config", None), "num_labels", None)
        if isinstance(n, int):
            return n
    return None


def prunable_weights(model: nn.Module, include: Sequence[str] | None = None,
                     exclude: Sequence[str] | None = None) -> dict[str, nn.Parameter]:
    """Name -> parameter of the weights pruning may zero, in `model.named_parameters()` order.

    Default: every nn.Linear weight and nn.LSTM weight_ih_l*/weight_hh_l* matrix, except the final
    classifier (the last Linear whose out_features is the model's number of classes; the last Linear
    if that number is unknown) and never an nn.Embedding weight (tied copies included). `include`
    (fnmatch patterns on full parameter names) replaces the default set, choosing among all
    non-embedding parameters with >= 2 dims (the classifier too, if named); `exclude` removes from it.
    """
    params = dict(model.named_parameters())
    embeddings = {id(m.weight) for m in model.modules() if isinstance(m, nn.Embedding)}
    inc, exc = _patterns(include), _patterns(exclude)
    if inc:
        pool = [n for n, p in params.items() if p.ndim >= 2 and id(p) not in embeddings]
        chosen = {n for n in pool if any(fnmatch.fnmatchcase(n, pat) for pat in inc)}
    else:
        ids = set()
        linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
        ids.update(id(m.weight) for m in linears)
        for lstm in (m for m in model.modules() if isinstance(m, nn.LSTM)):
            ids.update(id(p) for n, p in lstm.named_parameters(recurse=False)
                       if any(fnmatch.fnmatchcase(n, pat) for pat in _LSTM_MATRICES))
        n_labels = _num_labels(model)
        heads = [m for m in linears if n_labels is None or m.out_features == n_labels]
        if heads:
            ids.discard(id(heads[-1].weight))
        ids -= embeddings
        pool = [n for n, p in params.items() if id(p) in ids]
        chosen = set(pool)
    chosen = {n for n in chosen if not any(fnmatch.fnmatchcase(n, pat) for pat in exc)}
    if not chosen:
        example = next((n for n, p in params.items() if p.ndim >= 2), "none")
        raise PieError(f"no prunable weights in {type(model).__name__}: include={inc or 'default'} "
                       f"exclude={exc} leave none of {len(pool)} candidates (names look like {example!r})")
    return {n: p for n, p in params.items() if n in chosen}


# -- scores -----------------------------------------------------------------------------------
def criterion_scores(weights: dict[str, torch.Tensor], criterion: str, *,
                     grads: dict[str, torch.Tensor] | None = None, seed: int = 0) -> dict[str, torch.Tensor]:
    """Per-weight importance, float32 on each weight's device: |w| (magnitude), |w * g| (impact, g
    the accumulated gradient from `grads`, same names) or seeded uniform noise (random)."""
    if criterion not in CRITERIA:
        raise PieError(f"unknown criterion {criterion!r}; choose one of {', '.join(CRITERIA)}")
    if criterion == "impact" and grads is None:
        raise PieError("the impact criterion needs gradients: pass grads (parameter name -> accumulated gradient)")
    # random: a private CPU generator, so the scores ignore global RNG state and the device
    gen = torch.Generator().manual_seed(int(seed)) if criterion == "random" else None
    out = {}
    with torch.no_grad():
        for name, w in weights.items():
            w = w.detach()
            if criterion == "magnitude":
                s = w.abs()
            elif criterion == "impact":
                g = grads.get(name)
                if g is None:
                    raise PieError(f"impact: no gradient for {name} (did the batches reach it? is it frozen?)")
                if tuple(g.shape) != tuple(w.shape):
                    raise PieError(f"impact: gradient for {name} has shape {tuple(g.shape)}, weight {tuple(w.shape)}")
                s = (w.float() * g.detach().to(w.device, torch.float32)).abs_()
            else:
                s = torch.rand(w.shape, generator=gen, dtype=torch.float32).to(w.device)
            out[name] = s.to(torch.float32)
    return out
