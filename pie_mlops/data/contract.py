"""The dataset contract (docs/design.md §3): schema, byte-deterministic Parquet, atomic writes.

A dataset is `data/<name>/{train,validation,test}.parquet` plus `meta.json`. Everything
that writes a dataset goes through `write_dataset`, so a crash or a bad import never
leaves a half-written directory and never clobbers the previous version.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from pie_mlops.util.atomic import atomic_dir
from pie_mlops.util.errors import PieError

SPLITS = ("train", "validation", "test")
TASKS = ("single_label", "multi_label")
META_FIELDS = ("name", "task", "label_names", "source", "license", "synthetic")


def label_column(task: str) -> str:
    return "labels" if task == "multi_label" else "label"


def arrow_schema(task: str) -> pa.Schema:
    label = (
        pa.field("labels", pa.list_(pa.int8()), nullable=False)
        if task == "multi_label"
        else pa.field("label", pa.int64(), nullable=False)
    )
    return pa.schema(
        [
            pa.field("example_id", pa.string(), nullable=False),
            pa.field("text", pa.string(), nullable=False),
            pa.field("text_pair", pa.string(), nullable=True),
            label,
        ]
    )


def to_multi_hot(label_ids, n_labels: int) -> list[int]:
    """Label indices -> the contract's multi-hot vector (one 0/1 per label name)."""
    hot = [0] * n_labels
    for i in label_ids:
        hot[int(i)] = 1
    return hot


def to_table(df: pd.DataFrame, task: str, n_labels: int | None = None) -> pa.Table:
    """Build the Arrow table with the exact contract schema and no pandas metadata.

    Dropping the schema metadata keeps the bytes independent of the pandas version
    and of the frame's index, which `dvc status` after a re-materialize relies on.
    Multi-label rows must already be multi-hot vectors of length `n_labels`.
    """
    col = label_column(task)
    if task == "multi_label":
        labels = [np.asarray(v, dtype=np.int8).tolist() for v in df[col]]
        bad = [i for i, v in enumerate(labels) if len(v) != n_labels or not set(v) <= {0, 1}]
        if bad:
            raise PieError(f"column 'labels', row {bad[0]}: expected a multi-hot vector of {n_labels} zeros/ones, "
                           f"got {labels[bad[0]]}")
    else:
        labels = df[col].astype("int64").tolist()
    pairs = df["text_pair"] if "text_pair" in df else [None] * len(df)
    data = {
        "example_id": [str(v) for v in df["example_id"]],
        "text": [str(v) for v in df["text"]],
        "text_pair": [None if v is None or (isinstance(v, float) and np.isnan(v)) else str(v) for v in pairs],
        col: labels,
    }
    return pa.Table.from_pydict(data, schema=arrow_schema(task))


def _write_parquet(table: pa.Table, path: Path) -> None:
    # Fixed writer options: same rows in, same bytes out.
    pq.write_table(table, path, compression="zstd", compression_level=3, row_group_size=1 << 20)


def _dump_json(obj: dict, path: Path) -> None:
    path.write_text(json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False) + "\n", encoding="utf-8")


def validate_meta(meta: dict, where: str = "meta.json") -> None:
    missing = [f for f in META_FIELDS if f not in meta]
    if missing:
        raise PieError(f"{where}: missing field(s) {', '.join(missing)}")
    if meta["task"] not in TASKS:
        raise PieError(f"{where}: task must be one of {TASKS}, got {meta['task']!r}")
    if not meta["label_names"]:
        raise PieError(f"{where}: label_names is empty")


def write_dataset(root: str | Path, name: str, splits: dict[str, pd.DataFrame], meta: dict) -> Path:
    """Write `root/name/` atomically: into a temporary sibling, then rename over the old one."""
    validate_meta(meta)
    if set(splits) != set(SPLITS):
        raise PieError(f"dataset {name!r}: expected splits {SPLITS}, got {tuple(splits)}")
    final = Path(root) / name
    with atomic_dir(final) as tmp:
        for split in SPLITS:
            _write_parquet(to_table(splits[split], meta["task"], len(meta["label_names"])), tmp / f"{split}.parquet")
        _dump_json(meta, tmp / "meta.json")
    return final


def read_meta(path: str | Path) -> dict:
    path = Path(path)
    meta_path = path / "meta.json"
    if not meta_path.is_file():
        raise PieError(
            f"{meta_path}: not found; materialize it with `pie-mlops materialize --dataset {path.name}` "
            f"or import one with `pie-mlops import`"
        )
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise PieError(f"{meta_path}: not valid JSON ({exc})") from None
    validate_meta(meta, str(meta_path))
    return meta


def read_split(path: str | Path, split: str) -> pd.DataFrame:
    file = Path(path) / f"{split}.parquet"
    if not file.is_file():
        raise PieError(f"{file}: not found")
    return pq.read_table(file).to_pandas()


def read_dataset(path: str | Path) -> tuple[dict, dict[str, pd.DataFrame]]:
    meta = read_meta(path)
    return meta, {split: read_split(path, split) for split in SPLITS}
