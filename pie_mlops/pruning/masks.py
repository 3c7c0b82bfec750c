"""Exact keep-masks from scores (pruning/criteria.py): which entries a sparsity prunes, applying
them, and the sparsity achieved.

Pure torch, no I/O. Selection is exact: a sparsity s prunes exactly round(s * N) entries (N: all
prunable weights for the global scope, each tensor's own count per layer), in the total order
(already pruned first, then score ascending, then flat position), so ties never make a target
miss and a higher sparsity's mask always contains a lower one's pruned entries.

How it stays fast (bench/prune_masks.py): a float32 score's bit pattern, read as int32, is ordered
like the float for non-negative values (negative ones are mapped to -(magnitude bits)). Pass 1, one
histogram of the top 16 bits, locates the bin holding every requested threshold at once. Pass 2
gives each entry a byte code of its bin and gathers only the entries inside threshold bins; those
few are sorted. Each mask is then one byte compare per entry plus a fix-up inside its threshold bin.
Work goes tensor by tensor with reused scratch buffers: fresh big temporaries cost more in page
faults than the arithmetic on them.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from pie_mlops.util.errors import PieError

SCOPES = ("global", "per_layer")

_INT_MIN = -(2 ** 31)  # the key of an already-pruned entry: below every real (non-NaN) key
_POS_INF_BITS = 0x7F800000  # +inf as int32; any larger non-negative pattern is a NaN
_BINS = 1 << 16
_PER_PASS = 100  # sparsities per pass: their codes must fit a byte (2 + 2 * 100 + 1 < 256)


# -- selection --------------------------------------------------------------------------------
def _check_sparsity(s) -> float:
    try:
        value = float(s)
    except (TypeError, ValueError):
        raise PieError(f"sparsity must be a number in [0, 1), got {s!r}") from None
    if not 0.0 <= value < 1.0:  # NaN fails this too
        raise PieError(f"sparsity must be in [0, 1), got {s!r} (0.9 means 90% of the weights removed)")
    return value


def _signed_keys(key: torch.Tensor) -> torch.Tensor:
    """Negative floats order backwards as int32: key = -(magnitude bits) for them, so -0.0 == 0.0."""
    sign = key >> 31  # 0 or -1
    return ((key & 0x7FFFFFFF) ^ sign) - sign


def _nan_check(scores: dict[str, torch.Tensor]) -> None:
    for name, s in scores.items():
        if bool(torch.isnan(s).any()):
            raise PieError(f"scores for {name} contain NaN (NaN weights or gradients?)")


def _nonzero(flags: torch.Tensor) -> torch.Tensor:
    """Where a sparse vector of 0/1 bytes, its length a multiple of 8, is 1; faster than nonzero():
    scan it as int64 words (8 bytes each) first, then look only inside the words that hold a 1."""
    words = flags.view(torch.int64).nonzero().view(-1)
    idx = (words.unsqueeze(1) * 8 + torch.arange(8, device=flags.device)).view(-1)
    return idx[flags.view(torch.bool)[idx]]


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
    if len(values) > _PER_PASS:  # the byte codes have room for this many threshold bins at once
        return [m for i in range(0, len(values), _PER_PASS)
                for m in select_masks(scores, values[i:i + _PER_PASS], scope, already_pruned)]
    pruned = dict(already_pruned or {})
    unknown = sorted(set(pruned) - set(scores))
    if unknown:
        raise PieError(f"already_pruned names weights that have no scores: {', '.join(unknown[:3])}")
    names = list(scores)
    keys, offset = _sort_keys(scores, bool(pruned))
    _mark_pruned(keys, pruned, scores)
    bins = _binner(keys, offset, scores[names[0]].device if names else None)
    groups = [list(keys)] if scope == "global" else [[n] for n in keys]
    out: list[dict[str, torch.Tensor]] = [{} for _ in values]
    for group in groups:
        if group:
            for masks, group_masks in zip(out, _select_group([keys[n] for n in group], values, offset, bins)):
                masks.update(zip(group, group_masks))
    return [{n: masks[n].view(scores[n].shape) if n in masks else
             torch.ones(scores[n].shape, dtype=torch.bool, device=scores[n].device) for n in names} for masks in out]


def _sort_keys(scores: dict[str, torch.Tensor], offset: bool) -> tuple[dict[str, torch.Tensor], bool]:
    """int32 keys ordered like the scores (empty tensors left out: nothing to prune), and whether
    the bins need an offset (earlier pruned entries, or negative scores)."""
    # for non-negative float32, the bit pattern itself (a free view)
    flat = {n: s.detach().to(torch.float32).contiguous().view(-1) for n, s in scores.items()}
    keys = {n: f.view(torch.int32) for n, f in flat.items() if f.numel()}
    if keys:
        lo, top = torch.stack([torch.stack(torch.aminmax(k)) for k in keys.values()]).aminmax(dim=0)
        lo, top = int(lo[0]), int(top[1])
        if top > _POS_INF_BITS or lo < 0:  # NaN bits lie past +inf's, or among the negative patterns
            _nan_check(flat)
        if lo < 0:  # negative scores (or -0.0): a rarer, slower path
            keys, offset = {n: _signed_keys(k) for n, k in keys.items()}, True
    return keys, offset


def _mark_pruned(keys: dict[str, torch.Tensor], pruned: dict[str, torch.Tensor],
                 scores: dict[str, torch.Tensor]) -> None:
    """The earlier pruned entries get the lowest key (INT_MIN), so they go first; in place."""
    for n, mask in pruned.items():
        if tuple(mask.shape) != tuple(scores[n].shape):
            raise PieError(f"already_pruned[{n}] has shape {tuple(mask.shape)}, scores {tuple(scores[n].shape)}")
        if n in keys:
            keys[n] = keys[n].masked_fill(mask.to(keys[n].device, torch.bool).reshape(-1), _INT_MIN)


def _binner(keys: dict[str, torch.Tensor], offset: bool, device):
    """`bins(key)`: the top 16 bits of each key as a histogram bin, recomputed when needed rather
    than kept, into one scratch buffer for every tensor (fresh memory costs page faults, reused
    memory does not)."""
    scratch = torch.empty(max((k.numel() for k in keys.values()), default=0), dtype=torch.int32, device=device)

    def bins(key):
        h = torch.bitwise_right_shift(key, 16, out=scratch[:key.numel()])
        return h.add_(1 << 15) if offset else h  # bincount wants >= 0; INT_MIN lands alone in bin 0

    return bins


def _select_group(keys: list[torch.Tensor], values: list[float], offset: bool, bins) -> list[list[torch.Tensor]]:
    """Flat keep-masks for tensors sharing one threshold, one list per sparsity."""
    device, sizes = keys[0].device, [k.numel() for k in keys]
    n = sum(sizes)
    # pass 1: one histogram of the top key bits locates every sparsity's threshold bin
    hist = torch.bincount(bins(keys[0]), minlength=_BINS)
    for k in keys[1:]:
        hist += torch.bincount(bins(k), minlength=_BINS)
    n_pruned = int(hist[0]) if offset else 0
    ks = [max(round(s * n), n_pruned) for s in values]  # never revive: the earlier pruned stay pruned
    want = sorted({k for k in ks if k > n_pruned})
    if not want:  # nothing beyond the earlier pruned: exactly those (or nothing)
        return [[key != _INT_MIN if offset else torch.ones_like(key, dtype=torch.bool) for key in keys] for _ in ks]
    cum = hist.cumsum(0)
    where = torch.searchsorted(cum, torch.tensor(want, device=device))  # first bin reaching each k
    targets = torch.unique(where)
    # a byte code per bin, increasing with the bin: 2 + 2 * (threshold bins below) + (1 in one), so
    # odd codes mark threshold bins; 0 is the earlier pruned's bin. "code > a threshold bin's code"
    # keeps every bin above it with one byte compare per entry (byte -> byte: ~10x int32 -> bool).
    is_target = torch.zeros(_BINS, dtype=torch.int64, device=device)
    is_target[targets] = 1
    lut = (2 + 2 * (is_target.cumsum(0) - is_target) + is_target).to(torch.uint8)
    if offset:
        lut[0] = 0
    # pass 2: the codes, and the entries inside threshold bins (odd codes) in flat order
    codes, cand_keys, cand_pos, base = [], [], [], 0
    odd = torch.zeros(-(-max(sizes) // 8) * 8, dtype=torch.uint8, device=device)  # whole int64 words
    for k, size in zip(keys, sizes):
        code = torch.index_select(lut, 0, bins(k))
        codes.append(code)
        torch.bitwise_and(code, 1, out=odd[:size])
        odd[size:-(-size // 8) * 8] = 0
        idx = _nonzero(odd[:-(-size // 8) * 8])
        cand_keys.append(k[idx])
        cand_pos.append(idx + base)
        base += size
    # sort only those; a stable sort keeps flat order among equal keys, which is the tie-break
    pos = torch.cat(cand_pos)[torch.sort(torch.cat(cand_keys), stable=True).indices]
    counts = hist[targets]
    starts = dict(zip(targets.tolist(), (counts.cumsum(0) - counts).tolist()))
    info = zip(want, where.tolist(), *torch.stack([lut[where].long(), cum[where] - hist[where], hist[where]]).tolist())
    # k -> (its bin's code, sorted place of the k-th smallest, end of its bin in sorted order)
    cut = {k: (c, starts[b] + k - before - 1, starts[b] + in_bin) for k, b, c, before, in_bin in info}
    bounds = torch.tensor([0] + sizes, device=device).cumsum(0) if len(keys) > 1 else None
    out = []
    for k in ks:
        if k not in cut:
            out.append([code != 0 if offset else torch.ones_like(code, dtype=torch.bool) for code in codes])
            continue
        c, q, end = cut[k]
        # bins above the threshold bin stay; inside it, the entries sorted after the k-th stay
        masks = [torch.gt(code, c, out=torch.empty_like(code)) for code in codes]
        stay = pos[q + 1:end]
        if bounds is None:
            masks[0][stay] = 1
        else:
            stay = stay.sort().values
            split = torch.searchsorted(stay, bounds).tolist()
            for i, m in enumerate(masks):
                if split[i + 1] > split[i]:
                    m[stay[split[i]:split[i + 1]] - bounds[i]] = 1
        out.append([m.view(torch.bool) for m in masks])  # 0/1 bytes read as bool
    return out


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
