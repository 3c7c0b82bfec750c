"""Turn a labelled frame into a dataset on disk: de-duplicate, id, split, write atomically."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from pie_mlops.data.contract import SPLITS, label_column, to_multi_hot, write_dataset
from pie_mlops.data.prepare import assign_ids, deduplicate
from pie_mlops.data.splits import cover_every_label, multilabel_strata, stratified_split
from pie_mlops.util.errors import PieError

SPLIT_ALIASES = {"train": "train", "training": "train", "validation": "validation", "valid": "validation",
                 "val": "validation", "dev": "validation", "test": "test", "testing": "test"}


def build_dataset(
    df: pd.DataFrame,
    *,
    root: str | Path,
    name: str,
    task: str,
    label_names: list[str],
    id_prefix: str,
    source: str,
    license: str,
    synthetic: bool,
    validation_frac: float = 0.1,
    test_frac: float = 0.2,
    seed: int = 0,
    split_col: str | None = None,
    extra_meta: dict | None = None,
) -> Path:
    """`df` holds `text`, optional `text_pair`, `label` (int) or `labels` (a list of label
    indices, the convenient input form; it is written multi-hot, as the contract says).

    With `split_col`, the frame's own split is kept (names like 'dev' or 'valid' map to
    'validation'); otherwise a stratified split is made from the fractions and the seed.
    """
    col = label_column(task)
    if "text_pair" not in df:
        df = df.assign(text_pair=None)
    kept, stats = deduplicate(df, col)
    kept = assign_ids(kept, id_prefix)
    if kept.empty:
        raise PieError(f"dataset {name!r}: no examples left after removing duplicates")
    if split_col is not None:
        raw = kept[split_col].astype(str).str.strip().str.lower()
        split = raw.map(SPLIT_ALIASES)
        if split.isna().any():
            bad = sorted(set(raw[split.isna()]))[:5]
            raise PieError(f"column {split_col!r}: unknown split name(s) {bad}; use train, validation or test")
    else:
        ids = kept["example_id"].tolist()
        if task == "multi_label":
            label_lists = [list(v) for v in kept[col]]
            split = stratified_split(ids, multilabel_strata(label_lists), validation_frac, test_frac, seed)
            split = cover_every_label(split, label_lists, ids, seed)
        else:
            split = stratified_split(ids, kept[col].tolist(), validation_frac, test_frac, seed)
    kept = kept.assign(_split=list(split))
    if task == "multi_label":
        kept[col] = [to_multi_hot(v, len(label_names)) for v in kept[col]]
    frames = {s: kept[kept["_split"] == s][["example_id", "text", "text_pair", col]].reset_index(drop=True)
              for s in SPLITS}
    empty = [s for s, f in frames.items() if f.empty]
    if empty:
        raise PieError(f"dataset {name!r}: split(s) {', '.join(empty)} would be empty; add examples or a split column")
    meta = {
        "name": name,
        "task": task,
        "label_names": list(label_names),
        "source": source,
        "license": license,
        "synthetic": bool(synthetic),
        "n_examples": {s: int(len(f)) for s, f in frames.items()},
        "split": {"column": split_col} if split_col else {"validation_frac": validation_frac, "test_frac": test_frac, "seed": seed},
        **stats,
        **(extra_meta or {}),
    }
    return write_dataset(root, name, frames, meta)
