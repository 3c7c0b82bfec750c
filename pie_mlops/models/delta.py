"""A pruned version stored as a delta against its registered dense version.

A one-shot (`os`) pruned model is its dense model with some weights zeroed: every tensor is
either the dense one unchanged (embeddings, LayerNorms, biases) or the dense one under a
mask. Its file then holds only the masks (a bit per weight) and whatever else differs, and
names its base: the dense version's logged model and the weights file inside it. MiniLM's
versions shrink from ~70 MB to a few MB.

Loading rebuilds the full state from the base and checks it against the SHA-256 the file
carries, so a delta loads back bit-identically or fails with one line (a base deleted or
changed). A tensor that is neither equal to the base nor the base under a mask is stored
whole (a recovery step that retrained it, a structurally shrunk matrix).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import torch

from pie_mlops.util.errors import PieError
from pie_mlops.models.common import BIT_VIEWS as _INT  # one bit-view table for both stored forms

BASE_KEY, FROM_BASE, MASKED, DIGEST = "pie_base", "pie_from_base", "pie_masked", "pie_sha256"
BASE_MASK = "::basemask"


def digest(state: dict[str, torch.Tensor]) -> str:
    """SHA-256 over names, dtypes, shapes and bytes: equal digests, bit-identical states."""
    h = hashlib.sha256()
    for name in sorted(state):
        t = state[name].detach().cpu().contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def _bits(t: torch.Tensor) -> torch.Tensor:
    return t.detach().cpu().contiguous().reshape(-1).view(_INT[t.element_size()])


def split(state: dict, base: dict) -> tuple[dict, list[str], dict]:
    """(tensors to store, names taken from the base, {name: shape} stored as a mask of the base)."""
    keep, from_base, masked = {}, [], {}
    for name, t in state.items():
        b = base.get(name)
        if b is None or b.shape != t.shape or b.dtype != t.dtype or t.element_size() not in _INT:
            keep[name] = t
            continue
        tb, bb = _bits(t), _bits(b)
        if torch.equal(tb, bb):
            from_base.append(name)
            continue
        on = tb != 0  # all bits zero = pruned; -0.0 counts as a value, as in models/sparse.py
        if t.is_floating_point() and torch.equal(tb[on], bb[on]):
            keep[name + BASE_MASK] = torch.from_numpy(np.packbits(on.numpy()))
            masked[name] = list(t.shape)
            continue
        keep[name] = t
    return keep, sorted(from_base), masked


def metadata(base_ref: dict, from_base: list, masked: dict, state: dict) -> dict:
    return {BASE_KEY: json.dumps(base_ref), FROM_BASE: json.dumps(from_base), MASKED: json.dumps(masked),
            DIGEST: digest(state)}


def rebuild(file: Path, tensors: dict, meta: dict, base: dict) -> dict[str, torch.Tensor]:
    """The full state from the stored tensors and the base's, checked against the digest."""
    out = {k: v for k, v in tensors.items() if not k.endswith(BASE_MASK)}
    try:
        for name in json.loads(meta[FROM_BASE]):
            out[name] = base[name].clone()
        for name, shape in json.loads(meta[MASKED]).items():
            n = int(np.prod(shape))
            on = torch.from_numpy(np.unpackbits(tensors[name + BASE_MASK].numpy(), count=n).astype(bool))
            flat = torch.zeros(n, dtype=base[name].dtype)
            flat[on] = base[name].reshape(-1)[on]
            out[name] = flat.reshape(shape)
    except KeyError as exc:
        raise PieError(f"{file}: its base {meta[BASE_KEY]} lacks tensor {exc}; it is not this version's base") from None
    if digest(out) != meta[DIGEST]:
        raise PieError(f"{file}: rebuilt from its base {meta[BASE_KEY]}, it does not match its SHA-256; "
                       f"the base version was changed or replaced")
    return out

