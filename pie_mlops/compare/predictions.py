"""Per-example predictions in the contract of docs/design.md §3, and their atomic Parquet writer."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from pie_mlops.util.atomic import atomic_file
from pie_mlops.util.errors import PieError
from pie_mlops.util.metrics import sigmoid
from pie_mlops.compare.pies import argmax_classes

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
    # need only the row maximum and one logit each. In float64, z - top is exact, and the loss
    # (top - z_y) + log(sum exp(z - top)) has no cancellation between two large terms for a
    # confident, correct prediction (nor a log of 0).
    idx = np.arange(len(y))
    if logits.shape[1] == 2 and np.isfinite(logits).all():
        # Binary: softmax of two logits depends only on d = z1 - z0 (exact in float64):
        # prob = 1 / (1 + e) and loss = softplus(-+d) = max(0, -+d) + log1p(e), e = exp(-|d|).
        # float32 exp/log1p on the (0, 1] range are accurate to an ulp or two, and 4x faster
        # than float64; log1p keeps full relative precision for confident predictions.
        z0, z1 = logits[:, 0], logits[:, 1]
        pred = np.greater(z1, z0).astype(np.int64)
        d = (z1.astype(np.float64) - z0).astype(np.float32)
        e = np.exp(-np.abs(d))
        margin = np.where(pred == y, np.float32(0), np.abs(d))
        return {"label": y, "logits": logits, "pred": pred, "prob": np.float32(1) / (np.float32(1) + e),
                "loss": margin + np.log1p(e)}
    elif logits.shape[1] <= 8:
        # Few classes: class-major (C, n), so every step is a vector op over the examples;
        # numpy's row-wise reductions over 2 or 3 values cost more than the arithmetic.
        zt = np.ascontiguousarray(logits.T, dtype=np.float64)
        pred, top = argmax_classes(zt)
        s = np.exp(zt - top).sum(axis=0)
        z_y = zt[y, idx]
    else:
        z = logits.astype(np.float64)
        pred = z.argmax(axis=1).astype(np.int64)
        top = z[idx, pred]
        s = np.exp(z - top[:, None]).sum(axis=1)
        z_y = z[idx, y]
    loss = (top - z_y) + np.log(s)
    return {"label": y, "logits": logits, "pred": pred, "prob": (1.0 / s).astype(np.float32),
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
    row: the fast way to write many models' predictions (bench/compare_speed.py).

    `split` and `group` are dictionary arrays of one value (no string per row is built); they
    are logically strings, and `write_predictions` stores them as the contract's string columns."""
    cols = prediction_columns(df, logits, task=task, threshold=threshold)
    n = len(df)
    zeros = pa.array(np.zeros(n, np.int32))
    ids = df["example_id"]
    # pandas' Arrow-backed strings pass through without a copy; anything else is converted
    ids = pa.array(ids if pd.api.types.is_string_dtype(ids) else ids.astype(str)).cast(pa.string())
    arrays = {"example_id": ids,
              "split": pa.DictionaryArray.from_arrays(zeros, pa.array([split], pa.string())),
              "group": pa.DictionaryArray.from_arrays(zeros, pa.array([group], pa.string())),
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


# Per-row integers (the seed, the gold and the predicted class): delta-encoded and bit-packed,
# a few bits per row, and cheaper to encode than a dictionary (no hashing).
_DELTA = ("seed", "label", "pred")
# Strings that repeat (one value per file) and the multi-label 0/1 lists and threshold:
# dictionary-encoded, a run-length-encoded index per row.
_DICTIONARY = ("split", "group", "threshold", "labels.list.element", "pred.list.element")
# Values the Parquet writer encodes per call (default 1,024): a split of a few ten thousand
# examples in one or two calls per column, ~5% less work; pages stay near 1 MB.
_BATCH = 32_768


def write_predictions(frame: pd.DataFrame | pa.Table, path: str | Path) -> Path:
    """Write a frame or `predictions_table` atomically: a temporary file beside `path`, renamed.

    Encoding, chosen for speed (bench/compare_speed.py), the file still the contract's:
    - integers delta-encoded (`_DELTA`), repeated strings dictionary-encoded (`_DICTIONARY`);
    - zstd only for `example_id` (ids share prefixes and hex digits); logits, probabilities
      and losses are float noise that no codec shrinks by more than ~10%, so no codec there;
    - top-level columns without nulls declared so (Parquet REQUIRED: no definition levels);
    - no column statistics (files are read whole), and no stored Arrow schema: the Parquet
      schema alone gives the contract's types on reading (string, int64, float32,
      list<float32>, list<int8>), so a dictionary array in the table (`predictions_table`'s
      split and group) is written as, and reads back as, a plain string column."""
    table = frame if isinstance(frame, pa.Table) else arrow_table(frame)
    # No definition levels to compute, encode and decode: ~15% of the write. The types are
    # the contract's either way (a list's element stays nullable: list<float32> as such).
    table = pa.Table.from_arrays(table.columns, schema=pa.schema(
        [f.with_nullable(False) if f.nullable and not col.null_count else f
         for f, col in zip(table.schema, table.columns)]))
    delta = [f.name for f in table.schema if f.name in _DELTA and pa.types.is_integer(f.type)]
    with atomic_file(path) as tmp:
        pq.write_table(table, tmp, compression={"example_id": "zstd"},
                       use_dictionary=list(_DICTIONARY),
                       column_encoding=dict.fromkeys(delta, "DELTA_BINARY_PACKED") or None,
                       write_statistics=False, store_schema=False, write_batch_size=_BATCH)
    return Path(path)


def read_predictions(path: str | Path) -> pd.DataFrame:
    return pq.read_table(path).to_pandas()


def predicted_splits(plan: dict) -> tuple[str, ...]:
    return ("validation", "test") + (("train",) if plan.get("predict_train") else ())


def split_score(task: str, frame) -> float:
    """Accuracy (macro-F1 for multi-label) of a predictions frame, from its `pred` column."""
    import numpy as np

    from pie_mlops.util.metrics import accuracy, macro_f1

    if task == "multi_label":
        return macro_f1(np.stack(frame["labels"].to_numpy()), np.stack(frame["pred"].to_numpy()))
    return accuracy(frame["label"].to_numpy(), frame["pred"].to_numpy())


# A model's predictions as one MLflow artifact (predictions/<BUNDLE>): every split's rows, in the
# order of its per-split files, one upload instead of one per split (issue 27). Runs logged
# before it carry predictions/<split>.parquet instead; the readers take both (`split_files`).
BUNDLE = "predictions.parquet"


def write_bundle(files: list[Path], path: Path) -> Path:
    """One Parquet file holding the rows of the per-split files `files`, in their order."""
    tables = [pq.read_table(f) for f in files]
    return write_predictions(pa.concat_tables(tables, promote_options="default") if tables else pa.table({}), path)


def split_files(folder: Path) -> Path:
    """A downloaded `predictions/` folder as per-split files: a bundle is split into
    `<split>.parquet` files beside it (byte-identical to the ones the job wrote) and removed;
    the older layout (one file per split) is returned as it is."""
    import pyarrow.compute as pc

    folder = Path(folder)
    bundle = folder / BUNDLE
    if not bundle.is_file():
        return folder
    table = pq.read_table(bundle)
    splits = table["split"].unique().to_pylist()  # in order of first appearance
    for split in splits:
        write_predictions(table.filter(pc.equal(table["split"], split)), folder / f"{split}.parquet")
    bundle.unlink()
    return folder


def read_split_frames(folder: Path) -> dict[str, pd.DataFrame]:
    """split -> its predictions frame, from a downloaded `predictions/` folder of either layout."""
    import pyarrow.compute as pc

    bundle = Path(folder) / BUNDLE
    if bundle.is_file():
        table = pq.read_table(bundle)
        return {split: table.filter(pc.equal(table["split"], split)).to_pandas()
                for split in table["split"].unique().to_pylist()}
    return {f.stem: read_predictions(f) for f in sorted(Path(folder).glob("*.parquet"))}


def publish_predictions(staging: Path, out_dir: Path) -> None:
    import os

    """Replace out_dir's prediction files with the staged ones (each rename is atomic)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    for old in out_dir.glob("*.parquet"):
        if not (staging / old.name).exists():
            old.unlink()  # e.g. a snapshot epoch no longer configured
    for new in staging.glob("*.parquet"):
        os.replace(new, out_dir / new.name)
