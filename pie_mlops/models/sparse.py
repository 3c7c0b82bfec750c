"""Pruned weights stored sparse: a mostly-zero tensor as its non-zero values plus a packed bitmask.

A 50%-sparse float32 tensor then takes 2 + 1/8 bytes per weight instead of 4. "Zero" means
all bits zero, so -0.0 and NaN payloads survive: the loader restores the dense tensors
bit-identically. Tensors for which the sparse form is not clearly smaller stay dense, so a
dense model's file is an ordinary safetensors file. The list of packed tensors and their
shapes lives in the file's own metadata (`pie_sparse`), the one place a loader looks.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from pie_mlops.util.errors import PieError
from pie_mlops.models.common import BIT_VIEWS as _BITS

SPARSE_KEY = "pie_sparse"
VALUES, MASK = "::values", "::mask"
_MIN_SAVING = 0.9  # packed only when it is at most 90% of the dense bytes (not worth it otherwise)


def pack(state: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], dict]:
    """(tensors to save, {name: shape} of the packed ones)."""
    out, packed = {}, {}
    for name, t in state.items():
        t = t.detach().cpu().contiguous()
        size = t.element_size()
        # matrices only (what pruning zeroes): a fresh model's all-zero biases stay plain, so a
        # dense save remains an ordinary file that from_pretrained can start from
        if t.is_floating_point() and t.ndim >= 2 and t.numel() >= 64 and size in _BITS:
            flat = t.reshape(-1)
            on = flat.view(_BITS[size]) != 0  # bits, not value: -0.0 is kept as a value
            nnz = int(on.sum())
            if nnz * size + (flat.numel() + 7) // 8 <= _MIN_SAVING * flat.numel() * size:
                out[name + VALUES] = flat[on].clone()
                out[name + MASK] = torch.from_numpy(np.packbits(on.numpy()))
                packed[name] = list(t.shape)
                continue
        out[name] = t
    return out, packed


def unpack(tensors: dict[str, torch.Tensor], packed: dict) -> dict[str, torch.Tensor]:
    """The dense state dict back from `pack`'s output."""
    out = {k: v for k, v in tensors.items() if not k.endswith((VALUES, MASK))}
    for name, shape in packed.items():
        values, mask = tensors[name + VALUES], tensors[name + MASK]
        n = int(np.prod(shape))
        on = torch.from_numpy(np.unpackbits(mask.numpy(), count=n).astype(bool))
        if int(on.sum()) != values.numel():
            raise PieError(f"sparse tensor {name}: mask has {int(on.sum())} set bits for {values.numel()} values")
        flat = torch.zeros(n, dtype=values.dtype)
        flat[on] = values
        out[name] = flat.reshape(shape)
    return out


def save_weights(state: dict[str, torch.Tensor], file: str | Path) -> bool:
    """Write `state` to a safetensors file, packing the tensors that pay; True if any was packed."""
    tensors, packed = pack(state)
    _write(tensors, packed, file)
    return bool(packed)


def _write(tensors: dict, packed: dict, file: str | Path, extra: dict | None = None) -> None:
    from safetensors.torch import save_file

    meta = {"format": "pt", **({SPARSE_KEY: json.dumps(packed)} if packed else {}), **(extra or {})}
    save_file(tensors, str(file), metadata=meta)


def _metadata(file: str | Path) -> dict:
    from safetensors import safe_open

    try:
        with safe_open(str(file), framework="pt") as f:
            return f.metadata() or {}
    except Exception as exc:  # OSError, or safetensors' own SafetensorError for a corrupt header
        raise PieError(f"{file}: not a readable safetensors file ({exc})") from None


def packed_names(file: str | Path) -> dict:
    """{name: shape} of the packed tensors in `file` (empty for an ordinary safetensors file)."""
    meta = _metadata(file)
    try:
        return json.loads(meta[SPARSE_KEY]) if SPARSE_KEY in meta else {}
    except json.JSONDecodeError as exc:
        raise PieError(f"{file}: bad {SPARSE_KEY} metadata ({exc})") from None


def ours(file: str | Path) -> bool:
    """True for a file only our loader reads: packed tensors, or a delta against a base."""
    from pie_mlops.models.delta import BASE_KEY

    meta = _metadata(file)
    return SPARSE_KEY in meta or BASE_KEY in meta


def load_weights(file: str | Path) -> dict[str, torch.Tensor]:
    """The dense state dict of a safetensors file written by `save_weights`, `write_delta` (its
    base fetched from the tracking store) or anything else."""
    from safetensors.torch import load_file

    from pie_mlops.models import delta

    if not Path(file).is_file():
        raise PieError(f"{file}: weights file missing")
    packed = packed_names(file)
    tensors = load_file(str(file))
    tensors = unpack(tensors, packed) if packed else tensors
    meta = _metadata(file)
    if delta.BASE_KEY not in meta:
        return tensors
    ref = json.loads(meta[delta.BASE_KEY])
    return delta.rebuild(Path(file), tensors, meta, base_state(Path(file), ref))


def base_state(file: Path, ref: dict) -> dict[str, torch.Tensor]:
    """The base's weights, fetched from the tracking store: the logged model's artifact
    location is looked up now (not stored), so a store that moved still resolves."""
    import tempfile

    from pie_mlops.util.compat import logged_model_files

    try:
        repo = logged_model_files(ref["model_id"])
        with tempfile.TemporaryDirectory(prefix="pie-base-") as tmp:
            return load_weights(repo.download_artifacts(ref["path"], tmp))
    except PieError:
        raise
    except Exception as exc:  # noqa: BLE001 -- any store error: say which base could not be had
        raise PieError(f"{file}: a delta against logged model {ref['model_id']} ({ref['path']}), which could not "
                       f"be fetched from the tracking store: {str(exc).splitlines()[0]}; "
                       f"set MLFLOW_TRACKING_URI to the store it was registered in") from None


def write_delta(file: str | Path, base: dict[str, torch.Tensor], base_ref: dict) -> bool:
    """Rewrite `file` as a delta against `base` (models/delta.py), whose weights file
    `base_ref` names ({"model_id", "path"}); True if it did. Only when the delta rebuilds
    the file's state bit-identically from `base` (checked here, before anything is replaced)."""
    import os

    from pie_mlops.models import delta

    file = Path(file)
    state = load_weights(file)
    keep, from_base, masked = delta.split(state, base)
    if not from_base and not masked:
        return False
    meta = delta.metadata(base_ref, from_base, masked, state)
    delta.rebuild(file, keep, meta, base)  # raises if it would not load back exactly
    tensors, packed = pack(keep)
    tmp = file.with_name(file.name + ".tmp")
    _write(tensors, packed, tmp, meta)
    os.replace(tmp, file)
    return True


def sparsify_file(file: str | Path) -> bool:
    """Rewrite a safetensors file (e.g. Hugging Face's save_pretrained output) in the packed
    form if any tensor pays; True if it did. Written beside it, then renamed: never half-written."""
    import os

    from safetensors.torch import load_file

    file = Path(file)
    tensors, packed = pack(load_file(str(file)))
    if not packed:
        return False
    tmp = file.with_name(file.name + ".tmp")
    _write(tensors, packed, tmp)
    os.replace(tmp, file)
    return True
