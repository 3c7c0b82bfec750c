"""Prediction, below the models' users: tokenise-once caching, length-sorted batches, logits.

What serving, the stacked models and the training loop share; no training here (models/
never imports pie_mlops.jobs.training, .importlinter).
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from pie_mlops.util.log import progress_disabled
from pie_mlops.models.common import Encoded

# Tokenised splits, shared by every model of one tokenizer in the process; a lock, since a
# worker's lanes (threads) train and predict side by side.
_CACHE: "OrderedDict[tuple[str, str], Encoded]" = OrderedDict()
_CACHE_SIZE = 16
_CACHE_LOCK = threading.Lock()


FP32 = "off"  # the precision of a job whose plan names none: every CPU job (plans carry only "bf16")


def job_autocast(plan: dict) -> str:
    """A job plan's precision: `bf16` where it takes effect (the plan records it), else FP32."""
    return plan.get("autocast", FP32)


def precision(model, device: torch.device, mode: str | None = "off"):
    """The autocast context of a forward pass: bf16 on CUDA for BERT/MiniLM (`auto`) or for any
    model (`bf16`); on a CPU, or `off`, none at all, so CPU numerics are exactly fp32's."""
    from contextlib import nullcontext

    if mode in (None, "off") or torch.device(device).type != "cuda":
        return nullcontext()
    if mode == "auto" and getattr(model, "arch", None) != "bert":
        return nullcontext()
    return torch.autocast("cuda", dtype=torch.bfloat16)


def effective_autocast(mode: str | None, arch: str, device="auto") -> str:
    """"bf16" where `precision` would autocast `arch`'s model on `device` (the plan records it), else "off"."""
    if mode in (None, "off") or resolve_device(device).type != "cuda":
        return "off"
    return "bf16" if mode == "bf16" or arch == "bert" else "off"


def on_device(enc, device: torch.device, mode: bool | str = "auto"):
    """`enc` kept on `device` for the batches to come (DeviceEncoded) where `mode` says so:
    True, or `auto` on an accelerator; else `enc` itself (each batch copied over)."""
    from pie_mlops.models.common import DeviceEncoded

    device = torch.device(device)
    if mode is True or (mode == "auto" and device.type != "cpu"):
        return DeviceEncoded(enc, device)
    return enc


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def _fingerprint(df: pd.DataFrame) -> str:
    h = hashlib.blake2b(digest_size=16)
    pairs = df["text_pair"] if "text_pair" in df else [None] * len(df)
    for eid, text, pair in zip(df["example_id"], df["text"], pairs):
        h.update(f"{eid}\0{text}\0{'' if _isnull(pair) else pair}\1".encode())
    return h.hexdigest()


def _isnull(v) -> bool:
    return v is None or (isinstance(v, float) and np.isnan(v))


def encode_split(model, df: pd.DataFrame) -> Encoded:
    """Tokenise a split once; later calls with the same tokenizer and rows reuse the ids."""
    key = (model.tokenizer_key(), _fingerprint(df))
    with _CACHE_LOCK:
        if key in _CACHE:
            _CACHE.move_to_end(key)
            return _CACHE[key]
    pairs = None
    if "text_pair" in df and df["text_pair"].notna().any():
        pairs = [None if _isnull(p) else str(p) for p in df["text_pair"]]
    enc = model.encode([str(t) for t in df["text"]], pairs)  # outside the lock: the same ids either way
    with _CACHE_LOCK:
        enc = _CACHE.setdefault(key, enc)
        _CACHE.move_to_end(key)
        while len(_CACHE) > _CACHE_SIZE:
            _CACHE.popitem(last=False)
    return enc


def clear_token_cache() -> None:
    with _CACHE_LOCK:
        _CACHE.clear()


def sorted_batches(lengths: np.ndarray, batch_size: int) -> list[np.ndarray]:
    order = np.argsort(lengths, kind="stable")
    return [order[i:i + batch_size] for i in range(0, len(order), batch_size)]


@torch.inference_mode()
def predict_logits(model, df: pd.DataFrame, batch_size: int = 128, device="auto",
                   progress: bool = False, desc: str = "predict", autocast: str | None = FP32,
                   data_on_device: bool | str = "auto") -> np.ndarray:
    """Logits for every row of `df`, in its order (batched by length, then unsorted);
    `autocast`, `data_on_device`: see `precision` and `on_device` (CPU: neither does anything)."""
    device = resolve_device(device)
    model.to(device)
    was_training = model.training
    model.eval()
    enc = on_device(encode_split(model, df), device, data_on_device)
    out = np.empty((len(df), model.num_labels), dtype=np.float32)
    for rows in tqdm(sorted_batches(enc.lengths, batch_size), desc=desc, disable=progress_disabled(progress), leave=False):
        with precision(model, device, autocast):
            logits = model(**model.batch_inputs(enc, rows, device))
        out[rows] = logits.float().cpu().numpy()
    model.train(was_training)
    return out
