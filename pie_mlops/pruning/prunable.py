"""Which weights a pruning run may zero: ours (`linear`) or the paper's (`paper`).

- `linear` (our default): every nn.Linear weight and nn.LSTM weight matrix but the classifier
  (criteria.prunable_weights).
- `paper`: what the authors' code prunes (pruning/tools.py, `retrieve_tuples` in
  pietrotrope/AsEasyAsPIE): every leaf module's parameter whose name holds `weight`, skipping
  any module whose class name holds "embedding" (BERT's embedding block, its LayerNorm too) and
  the last such weight, the classifier. For BERT that adds the encoder's LayerNorm gammas and
  the pooler to our set; for the BiLSTM the two sets are the same.

Pure torch, no I/O.
"""

from __future__ import annotations

import fnmatch
from typing import Sequence

from torch import nn

from pie_mlops.util.errors import PieError
from pie_mlops.pruning.criteria import _num_labels, _patterns, prunable_weights

PRUNABLE_SETS = ("linear", "paper")


def check_prunable(prunable: str) -> str:
    if prunable not in PRUNABLE_SETS:
        raise PieError(f"unknown prunable set {prunable!r}; choose one of {', '.join(PRUNABLE_SETS)}")
    return prunable


def _leaf_weights(module: nn.Module, prefix: str = "") -> list[tuple[str, nn.Parameter]]:
    """The paper's walk: recurse into children, skip embedding blocks, take a leaf's `*weight*`."""
    if isinstance(module, nn.Embedding) or "embedding" in type(module).__name__.lower():
        return []
    children = list(module.named_children())
    if children:
        return [item for name, child in children for item in _leaf_weights(child, f"{prefix}{name}.")]
    return [(f"{prefix}{name}", p) for name, p in module.named_parameters(recurse=False) if "weight" in name]


def paper_weights(model: nn.Module) -> dict[str, nn.Parameter]:
    """The paper's prunable set, in `model.named_parameters()` order, without the classifier.

    The authors drop the walk's last weight; we drop the same tensor by the rule criteria.py
    uses (the last Linear whose out_features is the number of classes), which stays right
    if a model's module order puts something after its head."""
    found = dict(_leaf_weights(model))
    n_labels = _num_labels(model)
    heads = [m for m in model.modules() if isinstance(m, nn.Linear) and (n_labels is None or m.out_features == n_labels)]
    head = id(heads[-1].weight) if heads else id(list(found.values())[-1]) if found else None
    embeddings = {id(m.weight) for m in model.modules() if isinstance(m, nn.Embedding)}  # tied copies
    keep = {id(p) for p in found.values() if id(p) != head and id(p) not in embeddings}
    return {n: p for n, p in model.named_parameters() if id(p) in keep}


def prunable_set(model: nn.Module, prunable: str = "linear", include: Sequence[str] | None = None,
                 exclude: Sequence[str] | None = None) -> dict[str, nn.Parameter]:
    """Name -> parameter that pruning may zero. `include` patterns replace either default set
    (criteria.prunable_weights); `exclude` patterns remove from it."""
    if check_prunable(prunable) == "linear" or _patterns(include):
        return prunable_weights(model, include, exclude)
    exc = _patterns(exclude)
    chosen = {n: p for n, p in paper_weights(model).items() if not any(fnmatch.fnmatchcase(n, pat) for pat in exc)}
    if not chosen:
        raise PieError(f"no prunable weights in {type(model).__name__}: prunable=paper exclude={exc} leaves none")
    return chosen
