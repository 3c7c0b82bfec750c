"""Per-example predictions in the contract of DESIGN.md §3, and their atomic Parquet writer."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from pie_mlops.atomic import atomic_file
from pie_mlops.errors import PieError
from pie_mlops.metrics import sigmoid

BASE_COLUMNS = ("example_id", "split", "group", "seed")


def prediction_columns(df: pd.DataFrame, logits: np.ndarray, *, task: str,
                       threshold: float | None = None) -> dict[str, np.ndarray]:
    """The contract's per-example arrays, in `df`'s order: labels, logits (n, C), pred, prob, loss."""
    logits = np.asarray(logits, dtype=np.float32)
    if len(df) != len(logits):
        raise PieError(f"{len(df)} examples but {len(logits)} rows of logits")
    if task == "multi_label":
        y = np.stack([np.asarray(v, dtype=np.int8) for v in df["labels"]]) if len(df) else np.zeros((0, logits.shape[1]), np.int8)
        probs = sigmoid(logits.astype(np.float64))
        t = 0.5 if threshold is None else float(threshold)
        eps = 1e-12
        loss = -(y * np.log(probs + eps) + (1 - y) * np.log(1 - probs + eps)).mean(axis=1)
        return {"labels": y, "logits": logits, "pred": (probs >= t).astype(np.int8), "prob": probs.astype(np.float32),
                "loss": loss.astype(np.float32), "threshold": np.float32(t)}
    y = df["label"].to_numpy(dtype=np.int64)
    if not len(y):
        return {"label": y, "logits": logits, "pred": np.zeros(0, np.int64), "prob": np.zeros(0, np.float32),
                "loss": np.zeros(0, np.float32)}
    # log-sum-exp instead of a full softmax: prob of the predicted class and the cross-entropy
    # need only the row maximum and one logit each (and the loss never takes log of 0)
    z = logits.astype(np.float64)
    pred = z.argmax(axis=1)
    top = z[np.arange(len(y)), pred]
    lse = top + np.log(np.exp(z - top[:, None]).sum(axis=1))
    prob = np.exp(top - lse)
    loss = lse - z[np.arange(len(y)), y]
    return {"label": y, "logits": logits, "pred": pred.astype(np.int64), "prob": prob.astype(np.float32),
            "loss": loss.astype(np.float32)}


def predictions_frame(df: pd.DataFrame, logits: np.ndarray, *, split: str, group: str, seed: int,
                      task: str, threshold: float | None = None) -> pd.DataFrame:
    """One row per example of `df`, in its order: ids, true label(s), logits, pred, loss, prob."""
    cols = prediction_columns(df, logits, task=task, threshold=threshold)
    out = pd.DataFrame({"example_id": df["example_id"].astype(str).to_numpy(), "split": split,
                        "group": group, "seed": np.int64(seed)})
    out["seed"] = out["seed"].astype("int64")
    for name in ("labels", "label", "logits", "pred", "prob", "loss", "threshold"):
        if name in cols:
            value = cols[name]
            out[name] = list(value) if isinstance(value, np.ndarray) and value.ndim == 2 else value
    return out


def predictions_table(df: pd.DataFrame, logits: np.ndarray, *, split: str, group: str, seed: int,
                      task: str, threshold: float | None = None) -> pa.Table:
    """Like `predictions_frame`, but straight from numpy to Arrow, with no Python object per
    row: the fast way to write many models' predictions (bench/compare_speed.py)."""
    cols = prediction_columns(df, logits, task=task, threshold=threshold)
    n = len(df)
    const = lambda value, typ: pa.DictionaryArray.from_arrays(  # noqa: E731
        pa.array(np.zeros(n, np.int32)), pa.array([value], typ)).cast(typ)
    ids = df["example_id"]
    # pandas' Arrow-backed strings pass through without a copy; anything else is converted
    ids = pa.array(ids if pd.api.types.is_string_dtype(ids) else ids.astype(str)).cast(pa.string())
    arrays = {"example_id": ids,
              "split": const(split, pa.string()), "group": const(group, pa.string()),
              "seed": pa.array(np.full(n, seed, np.int64))}
    for name in ("labels", "label", "logits", "pred", "loss", "prob", "threshold"):
        if name not in cols:
            continue
        value = cols[name]
        if np.ndim(value) == 2:
            offsets = pa.array(np.arange(0, value.size + 1, max(value.shape[1], 1), dtype=np.int32)[:n + 1])
            arrays[name] = pa.ListArray.from_arrays(offsets, pa.array(value.ravel()))
        elif np.ndim(value) == 0:
            arrays[name] = pa.array(np.full(n, value))
        else:
            arrays[name] = pa.array(value)
    return pa.table(arrays)


def arrow_table(frame: pd.DataFrame) -> pa.Table:
    """The frame as Arrow with the contract's exact types (list<float32> logits, list<int8> labels)."""
    multi = "labels" in frame
    fields = [pa.field("example_id", pa.string()), pa.field("split", pa.string()),
              pa.field("group", pa.string()), pa.field("seed", pa.int64()),
              pa.field("labels", pa.list_(pa.int8())) if multi else pa.field("label", pa.int64()),
              pa.field("logits", pa.list_(pa.float32()))]
    extra = {"pred": pa.list_(pa.int8()) if multi else pa.int64(), "loss": pa.float32(),
             "prob": pa.list_(pa.float32()) if multi else pa.float32(), "threshold": pa.float32()}
    fields += [pa.field(c, t) for c, t in extra.items() if c in frame]
    missing = [f.name for f in fields[:6] if f.name not in frame]
    if missing:
        raise PieError(f"predictions frame lacks column(s) {', '.join(missing)}")
    schema = pa.schema(fields)
    arrays = [_array(frame[f.name], f.type) for f in schema]
    return pa.Table.from_arrays(arrays, schema=schema)


def _array(col: pd.Series, typ: pa.DataType) -> pa.Array:
    if pa.types.is_list(typ):
        values = np.concatenate([np.asarray(v) for v in col]) if len(col) else np.array([])
        lens = np.fromiter((len(v) for v in col), dtype=np.int32, count=len(col))
        offsets = np.zeros(len(col) + 1, dtype=np.int32)
        np.cumsum(lens, out=offsets[1:])
        return pa.ListArray.from_arrays(pa.array(offsets), pa.array(values.astype(typ.value_type.to_pandas_dtype())))
    return pa.array(col.to_numpy(), type=typ)


def write_predictions(frame: pd.DataFrame | pa.Table, path: str | Path) -> Path:
    """Write a frame or `predictions_table` atomically: a temporary file beside `path`, renamed.

    Dictionary encoding only where values repeat (split, group) and no column statistics:
    together about 2x faster to write, for files that are read whole anyway."""
    table = frame if isinstance(frame, pa.Table) else arrow_table(frame)
    with atomic_file(path) as tmp:
        pq.write_table(table, tmp, compression="zstd", use_dictionary=["split", "group"], write_statistics=False)
    return Path(path)


def read_predictions(path: str | Path) -> pd.DataFrame:
    return pq.read_table(path).to_pandas()
