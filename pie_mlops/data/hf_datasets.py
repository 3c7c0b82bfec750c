"""Hugging Face datasets as input: a `datasets` dataset saved with `save_to_disk`, or a hub name
(`name` or `name:config`). `datasets` is optional (the `hub` extra) and imported only here, lazily.
A DatasetDict's splits are merged, or kept with `--hf-split keep`; ClassLabel names come along."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from pie_mlops.data.build import SPLIT_ALIASES
from pie_mlops.data.table import HF_SPLIT_COL, Table, first_line, require_column
from pie_mlops.util.errors import PieError


def _datasets():
    """Hugging Face `datasets`, an optional dependency (the `hub` extra)."""
    try:
        import datasets
    except ImportError:
        raise PieError("reading a Hugging Face dataset needs the `datasets` package: "
                       "pip install 'pie-mlops[hub]'") from None
    return datasets


def load_from_disk(p: Path, path: str):
    if not ((p / "dataset_dict.json").is_file() or (p / "state.json").is_file()):
        raise PieError(f"{path}: a directory, but not a dataset saved with `datasets` save_to_disk "
                       f"(no dataset_dict.json or state.json inside)")
    datasets = _datasets()

    try:
        return datasets.load_from_disk(str(p))
    except Exception as exc:  # datasets raises many types for a corrupt save; all mean the same here
        raise PieError(f"{path}: cannot load the saved dataset ({first_line(exc)})") from None


def load_hub(path: str):
    """`name` or `name:config`, loaded lazily; offline (the default here) it cannot work."""
    datasets = _datasets()

    name, _, config = path.partition(":")
    try:
        return datasets.load_dataset(name, config or None)
    except Exception as exc:  # offline, unknown name, gated repo: the user needs the same hint
        offline = datasets.config.HF_DATASETS_OFFLINE or datasets.config.HF_HUB_OFFLINE
        why = "offline: HF_DATASETS_OFFLINE or HF_HUB_OFFLINE is set" if offline else first_line(exc)
        raise PieError(f"{path}: no such file or directory, and it could not be loaded as a Hugging Face hub "
                       f"dataset ({why})") from None


def read_hf(obj, path: str, fmt: str, columns: dict[str, str], hf_split: str | None) -> Table:
    """A Dataset or DatasetDict; a DatasetDict's splits are merged, or kept with --hf-split keep."""
    datasets = _datasets()

    tokens = [t.strip() for t in (hf_split or "").split(",") if t.strip()]
    keep = "keep" in tokens
    wanted = [t for t in tokens if t != "keep"]
    if isinstance(obj, datasets.Dataset):
        if wanted or keep:
            raise PieError(f"{path}: a single-split dataset; --hf-split needs a DatasetDict")
        parts = {"all": obj}
    else:
        missing = [s for s in wanted if s not in obj]
        if missing:
            raise PieError(f"{path}: no split(s) {', '.join(map(repr, missing))}; available: {', '.join(obj)}")
        parts = {s: obj[s] for s in (wanted or list(obj))}
        if keep:
            unknown = [s for s in parts if s.lower() not in SPLIT_ALIASES]
            if unknown:
                raise PieError(f"{path}: split(s) {', '.join(map(repr, unknown))} are not train/validation/test; "
                               f"choose splits, e.g. --hf-split keep,{','.join(s for s in parts if s not in unknown)}")
    for name, ds in parts.items():
        for opt, col in columns.items():
            require_column(ds.column_names, col, opt, path if len(parts) == 1 else f"{path} (split {name!r})")
    need = list(dict.fromkeys(columns.values()))
    data: dict[str, list] = {c: [] for c in need}
    starts, split_names = [], []
    for name, ds in parts.items():
        table = ds.select_columns(need).with_format("arrow")[:]  # respects any indices mapping
        starts.append((name, len(data[need[0]])))
        for c in need:
            data[c].extend(table.column(c).to_pylist())
        split_names.extend([name] * table.num_rows)
    if not data[need[0]]:
        raise PieError(f"{path}: the dataset has no rows")
    frame = pd.DataFrame({c: pd.Series(v, dtype=object) for c, v in data.items()})
    if keep:
        frame[HF_SPLIT_COL] = pd.Series(split_names, dtype=object)
    return Table(frame, path, fmt, typed=True, parts=starts, class_names=_class_names(ds.features),
                 split_column=HF_SPLIT_COL if keep else None)


def _class_names(features) -> dict[str, list[str]]:
    """ClassLabel names per column, for single labels and for lists of ClassLabel."""
    datasets = _datasets()

    out = {}
    for col, feat in features.items():
        inner = getattr(feat, "feature", None) if not isinstance(feat, datasets.ClassLabel) else feat
        if isinstance(inner, datasets.ClassLabel):
            out[col] = list(inner.names)
    return out
