"""Unstructured pruning: which weights may be pruned, how each is scored, and exact keep-masks.

Pure torch, no I/O. Selection is exact: a sparsity s prunes exactly round(s * N) entries (N: all
prunable weights for the global scope, each tensor's own count per layer), in the total order
(already pruned first, then score ascending, then flat position), so ties never make a target
miss and a higher sparsity's mask always contains a lower one's pruned entries.

How it stays fast: a float32 score's bit pattern, read as int32, is ordered like the float for
non-negative values (negative ones get their low 31 bits flipped). One histogram of the top 16
bits locates the bin holding every requested threshold at once; only the few entries inside
those bins are sorted. No full sort, no per-sparsity pass over the scores except writing the mask.
"""

from __future__ import annotations

import fnmatch
from typing import Sequence

import torch
from torch import nn

from pie_mlops.errors import PieError

CRITERIA = ("magnitude", "impact", "random")
SCOPES = ("global", "per_layer")

_LSTM_MATRICES = ("weight_ih_l*", "weight_hh_l*")  # the _reverse directions match too
_INT_MIN = -(2 ** 31)  # the key of an already-pruned entry: below every real (non-NaN) key
_POS_INF_BITS = 0x7F800000  # +inf as int32; any larger non-negative pattern is a NaN
_BINS = 1 << 16


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


# -- selection --------------------------------------------------------------------------------
def _check_sparsity(s) -> float:
    try:
        value = float(s)
    except (TypeError, ValueError):
        raise PieError(f"sparsity must be a number in [0, 1), got {s!r}") from None
    if not 0.0 <= value < 1.0:  # NaN fails this too
        raise PieError(f"sparsity must be in [0, 1), got {s!r} (0.9 means 90% of the weights removed)")
    return value


def _keys(name: str, score: torch.Tensor, pruned: torch.Tensor | None) -> tuple[torch.Tensor, bool]:
    """Flat int32 sort keys ordered like the scores (a free view for non-negative float32), and
    whether any key may be negative (then histogram bins need an offset)."""
    s = score.detach()
    s = (s if s.dtype == torch.float32 else s.float()).contiguous()
    key = s.view(-1).view(torch.int32)
    negative = False
    if key.numel():
        lo, hi = (int(v) for v in torch.aminmax(key))
        if hi > _POS_INF_BITS or (lo < 0 and bool(torch.isnan(s).any())):
            raise PieError(f"scores for {name} contain NaN (NaN weights or gradients?)")
        if lo < 0:  # negative floats order backwards as int32: key = -(magnitude bits), so -0.0 == 0.0
            sign = key >> 31  # 0 or -1
            key, negative = ((key & 0x7FFFFFFF) ^ sign) - sign, True
    if pruned is not None:
        if tuple(pruned.shape) != tuple(score.shape):
            raise PieError(f"already_pruned[{name}] has shape {tuple(pruned.shape)}, scores {tuple(score.shape)}")
        key, negative = key.masked_fill(pruned.to(key.device, torch.bool).reshape(-1), _INT_MIN), True
    return key, negative


def _select_group(keys: list[torch.Tensor], sparsities: list[float], offset: bool) -> list[list[torch.Tensor]]:
    """Keep-masks (flat bool) of one group of tensors that share a threshold, one list per sparsity."""
    sizes = [k.numel() for k in keys]
    n, device = sum(sizes), keys[0].device
    # pass 1: histogram of the top 16 key bits over the whole group, for every sparsity at once
    hist, his = torch.zeros(_BINS, dtype=torch.int64, device=device), []
    for k in keys:
        h = k >> 16
        if offset:
            h += 1 << 15  # keys may be negative; the already-pruned (INT_MIN) land alone in bin 0
        his.append(h)
        hist += torch.bincount(h, minlength=_BINS)
    n_pruned = int(hist[0]) if offset else 0
    # never revive: at least everything pruned before stays pruned
    ks = [max(round(s * n), n_pruned) for s in sparsities]
    want = sorted({k for k in ks if k > n_pruned})
    cuts = {}
    if want:
        cum = hist.cumsum(0)
        bins = torch.searchsorted(cum, torch.tensor(want, device=device))  # first bin reaching each k
        targets = torch.unique(bins)
        # pass 2: gather only the entries inside the target bins, in group order, and sort them;
        # a stable sort keeps flat order among equal keys, which is the tie-break
        lut = torch.zeros(_BINS, dtype=torch.bool, device=device)
        lut[targets] = True
        cand_keys, cand_pos, base = [], [], 0
        for k, h, size in zip(keys, his, sizes):
            idx = lut.index_select(0, h).nonzero().view(-1)
            cand_keys.append(k[idx])
            cand_pos.append(idx + base)
            base += size
        ck, order = torch.sort(torch.cat(cand_keys), stable=True)
        cp = torch.cat(cand_pos)[order]
        counts = hist[targets]
        starts = dict(zip(targets.tolist(), (counts.cumsum(0) - counts).tolist()))
        before = (cum[bins] - hist[bins]).tolist()
        # p: where the k-th smallest sits among the sorted candidates
        pos = [starts[b] + k - before_b - 1 for k, b, before_b in zip(want, bins.tolist(), before)]
        p_t = torch.tensor(pos, device=device)
        thresholds = ck[p_t]
        ends = torch.searchsorted(ck, thresholds, right=True).tolist()  # end of the tie run at T
        cuts = {k: (t, cp[p + 1:end]) for k, t, p, end in zip(want, thresholds.tolist(), pos, ends)}
    offsets = torch.tensor([0] + sizes, device=device).cumsum(0)
    out = []
    for k in ks:
        if k not in cuts:  # k == n_pruned: exactly the earlier pruned ones (or nothing)
            out.append([key != _INT_MIN if offset else torch.ones_like(key, dtype=torch.bool) for key in keys])
            continue
        threshold, revive = cuts[k]
        masks = [key > threshold for key in keys]
        if revive.numel():  # ties at T beyond the k-th: keep them (they sort after it by position)
            bounds = torch.searchsorted(revive, offsets).tolist()
            for i, m in enumerate(masks):
                if bounds[i + 1] > bounds[i]:
                    m[revive[bounds[i]:bounds[i + 1]] - offsets[i]] = True
        out.append(masks)
    return out


def select_masks(scores: dict[str, torch.Tensor], sparsities: Sequence[float], scope: str = "global",
                 already_pruned: dict[str, torch.Tensor] | None = None) -> list[dict[str, torch.Tensor]]:
    """For each sparsity, name -> bool KEEP mask (True = keep) shaped like the scores.

    Exactly round(s * N) entries are pruned (N: all scores for `global`, each tensor for
    `per_layer`), lowest score first, ties by flat position (dict order, then row-major), and the
    `already_pruned` entries (True = pruned earlier) before anything else, so none is revived (if
    more were pruned than s asks, all stay pruned). All sparsities come from one pass over the scores.
    """
    if scope not in SCOPES:
        raise PieError(f"unknown threshold scope {scope!r}; choose one of {', '.join(SCOPES)}")
    values = [_check_sparsity(s) for s in sparsities]
    pruned = dict(already_pruned or {})
    unknown = sorted(set(pruned) - set(scores))
    if unknown:
        raise PieError(f"already_pruned names weights that have no scores: {', '.join(unknown[:3])}")
    keys, negative = {}, {}
    for name, score in scores.items():
        keys[name], negative[name] = _keys(name, score, pruned.get(name))
    names = list(scores)
    groups = [names] if scope == "global" else [[n] for n in names]
    out: list[dict[str, torch.Tensor]] = [{} for _ in values]
    for group in groups:
        group = [n for n in group if keys[n].numel()]  # empty tensors have nothing to prune
        if not group:
            continue
        per_sparsity = _select_group([keys[n] for n in group], values, any(negative[n] for n in group))
        for masks, group_masks in zip(out, per_sparsity):
            masks.update({n: m.view(scores[n].shape) for n, m in zip(group, group_masks)})
    for masks in out:  # dict order as given; empty tensors keep their (empty) everything
        for name in names:
            masks.setdefault(name, torch.ones(scores[name].shape, dtype=torch.bool, device=scores[name].device))
    return [{n: masks[n] for n in names} for masks in out]


# -- applying and reporting -------------------------------------------------------------------
def apply_masks(weights: dict[str, nn.Parameter], masks: dict[str, torch.Tensor]) -> None:
    """Zero the pruned (False) entries in place; weights without a mask are left alone."""
    with torch.no_grad():
        for name, keep in masks.items():
            w = weights.get(name)
            if w is None:
                raise PieError(f"mask for {name}, which is not among the weights")
            if tuple(keep.shape) != tuple(w.shape):
                raise PieError(f"mask for {name} has shape {tuple(keep.shape)}, weight {tuple(w.shape)}")
            # masked_fill, not multiply: 0 * inf would be NaN
            w.masked_fill_(~keep.to(w.device, torch.bool), 0.0)


def sparsity_report(weights: dict[str, torch.Tensor]) -> dict:
    """Share of exact zeros, overall and per weight, with the nonzero and total counts."""
    per_layer, nonzero, total = {}, 0, 0
    for name, w in weights.items():
        nz, size = int(torch.count_nonzero(w.detach())), w.numel()
        per_layer[name] = (size - nz) / size if size else 0.0
        nonzero, total = nonzero + nz, total + size
    # (total - nonzero) / total, not 1 - nonzero / total: equals round(s * N) / N bit for bit
    return {"achieved_sparsity": (total - nonzero) / total if total else 0.0, "per_layer": per_layer,
            "nonzero": nonzero, "total": total}
