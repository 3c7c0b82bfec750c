"""Stage `import`: bring your own data into the dataset contract (docs/design.md §3).

Everything is validated before anything is written, and `build_dataset` writes atomically,
so a failed import (even with --overwrite) leaves an existing data/<name>/ byte-identical.
Each problem is one line naming the file, the column and the first offending rows.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import pandas as pd

from pie_mlops.data.build import SPLIT_ALIASES, build_dataset
from pie_mlops.data.contract import label_column
from pie_mlops.data.readers import read_table
from pie_mlops.data.table import Table
from pie_mlops.util.errors import PieError
from pie_mlops.config.vocabulary import check_name

DEFAULT_LICENSE = "unknown (user import)"
RESERVED = {"example_id", "text", "text_pair", "label", "labels", "_split"}  # columns build_dataset uses
INT = re.compile(r"[+-]?\d+")  # CSV cells are strings: these are the ones that count as numbers


def import_dataset(
    path: str,
    *,
    split_params: dict,
    name: str,
    text_col: str,
    label_col: str,
    data_dir: str | Path,  # study.data_dir, or the command's --data-dir
    text_pair_col: str | None = None,
    label_sep: str | None = None,
    split_col: str | None = None,
    hf_split: str | None = None,
    overwrite: bool = False,
    license: str | None = None,
    limits: dict | None = None,
) -> Path:
    """Read `path`, validate it, and write data_dir/name/. Returns the dataset directory."""
    target = _check_target(name, Path(data_dir), overwrite)
    if label_sep == "":
        raise PieError("--label-sep must not be empty")
    if split_col and hf_split and "keep" in [t.strip() for t in hf_split.split(",")]:
        raise PieError("use either --split-col or --hf-split keep, not both")
    columns = {"--text-col": text_col, "--text-pair-col": text_pair_col, "--label-col": label_col,
               "--split-col": split_col}
    columns = {opt: col for opt, col in columns.items() if col is not None}
    if len(set(columns.values())) < len(columns):
        raise PieError(f"{', '.join(columns)} must name different columns, got {', '.join(columns.values())}")

    table = read_table(path, columns, hf_split=hf_split, limits=limits)  # limits: the `import` params
    frame = pd.DataFrame({"text": _texts(table, text_col)})
    if text_pair_col:
        frame["text_pair"] = _texts(table, text_pair_col)
    task, labels, label_names = _labels(table, label_col, label_sep)
    frame[label_column(task)] = pd.Series(labels, dtype=object)
    split_name = None
    if table.split_column:  # --hf-split keep
        split_name = "hf_split"
        frame[split_name] = _splits(table, table.split_column, hint="--hf-split keep")
    elif split_col:
        split_name = split_col if split_col not in RESERVED else "split"  # meta.json records this name
        frame[split_name] = _splits(table, split_col, hint="--split-col")
    options = {"format": table.format, "text_col": text_col, "text_pair_col": text_pair_col,
               "label_col": label_col, "label_sep": label_sep, "split_col": split_col, "hf_split": hf_split}
    return build_dataset(
        frame, root=target.parent, name=name, task=task, label_names=label_names, id_prefix=name.lower(),
        source=f"{path} ({table.format})", license=license or DEFAULT_LICENSE, synthetic=False,
        split_col=split_name, extra_meta={"import": options}, **split_params,
    )


def _check_target(name: str, root: Path, overwrite: bool) -> Path:
    # Checked first: a user who forgot --overwrite should not wait for a large file to parse.
    check_name("dataset", name, "--name")
    target = root / name
    if target.exists() and not target.is_dir():
        raise PieError(f"{target}: exists and is not a dataset directory; remove it or choose another --name")
    if target.exists() and not overwrite:
        raise PieError(f"{target}: already exists; pass --overwrite to replace it (only if the import succeeds)")
    return target


def _texts(table: Table, col: str) -> list[str]:
    """Stripped strings; null, empty and whitespace-only cells are errors with their rows."""
    out, empty = [], []
    for i, value in enumerate(table.frame[col]):
        if value is not None and not isinstance(value, str) and not _is_nan(value):
            raise PieError(f"{table.source}: column {col!r}: {table.where(i)} holds {type(value).__name__} "
                           f"{_short(value)}, not text")
        text = value.strip() if isinstance(value, str) else ""
        if not text:
            empty.append(i)
        out.append(text)
    if empty:
        raise PieError(f"{table.source}: column {col!r}: empty text at {_rows(table, empty)}; "
                       f"fill in or drop those rows")
    return out


def _labels(table: Table, col: str, sep: str | None) -> tuple[str, list, list[str]]:
    """Return (task, label ids per row, label_names). Lists or --label-sep mean multi-label."""
    values = list(table.frame[col])
    class_names = table.class_names.get(col)
    multi = sep is not None or any(isinstance(v, (list, tuple)) for v in values)
    rows, missing = [], []  # rows: per row, a list of (kind, value) items
    for i, value in enumerate(values):
        if multi:
            items = _split_cell(table, col, i, value, sep)
        else:
            items = [] if _is_null(value) else [value]
        parsed = [_kind(table, col, i, v, class_names) for v in items]
        parsed = [p for p in parsed if p is not None]  # null elements of a list are dropped
        if not parsed:
            missing.append(i)
        rows.append(parsed)
    if missing:
        what = "row(s) with no labels" if multi else "empty label(s)"
        hint = "fill in or drop those rows"
        if class_names:  # typically a hub test split without gold labels
            unlabelled = {table.split_of(i) for i in missing}
            labelled = [n for n, _ in table.parts if n not in unlabelled]
            hint = "-1 means unlabelled in a ClassLabel; import only labelled splits" + (
                f", e.g. --hf-split {','.join(labelled)}" if labelled else "")
        raise PieError(f"{table.source}: column {col!r}: {len(missing)} {what}, at {_rows(table, missing)}; {hint}")
    _check_one_kind(table, col, rows)
    kind = rows[0][0][0]
    distinct = sorted({v for parsed in rows for _, v in parsed})
    if len(distinct) < 2:
        raise PieError(f"{table.source}: column {col!r}: only one label ({_short(distinct[0])}); "
                       f"a classifier needs at least two")
    if kind == "int" and class_names and distinct[0] >= 0 and distinct[-1] < len(class_names):
        names, ids = list(class_names), {v: v for v in distinct}  # keep the dataset's own ids and names
    elif kind == "int" and distinct == list(range(len(distinct))):
        names, ids = [str(v) for v in distinct], {v: v for v in distinct}
    else:  # strings, bools, or integers with gaps: dense ids in sorted order
        names, ids = [str(v) for v in distinct], {v: k for k, v in enumerate(distinct)}
    if multi:
        return "multi_label", [sorted({ids[v] for _, v in parsed}) for parsed in rows], names
    return "single_label", [ids[parsed[0][1]] for parsed in rows], names


def _split_cell(table: Table, col: str, i: int, value, sep: str | None) -> list:
    if _is_null(value):
        return []
    if isinstance(value, (list, tuple)):
        return list(value)
    if sep is not None:  # a lone number in a JSON/Parquet cell is a one-label row
        return [part for part in value.split(sep) if part.strip()] if isinstance(value, str) else [value]
    raise PieError(f"{table.source}: column {col!r}: {table.where(i)} holds {type(value).__name__} "
                   f"{_short(value)} but other rows hold lists; use one type (or --label-sep for strings)")


def _kind(table: Table, col: str, i: int, value, class_names: list[str] | None):
    """(kind, value) with kind in int/str/bool, or None for a null. Unusable values are errors."""
    if _is_null(value) or (class_names and isinstance(value, int) and value == -1):
        return None  # -1 is how `datasets` marks a missing ClassLabel
    if isinstance(value, bool):
        return ("bool", value)
    if isinstance(value, int):
        return ("int", value)
    if isinstance(value, float) and value.is_integer():
        return ("int", int(value))  # JSON 1.0 and float Parquet columns of ids
    if isinstance(value, str):
        text = value.strip()
        return ("int", int(text)) if not table.typed and INT.fullmatch(text) else ("str", text)
    what = f"the number {value}" if isinstance(value, float) else f"a {type(value).__name__}"
    raise PieError(f"{table.source}: column {col!r}: {table.where(i)} holds {what}; "
                   f"labels must be class names or integer ids")


def _check_one_kind(table: Table, col: str, rows: list[list[tuple]]) -> None:
    first: dict[str, tuple[int, object]] = {}
    for i, parsed in enumerate(rows):
        for kind, value in parsed:
            first.setdefault(kind, (i, value))
    if len(first) > 1:
        shown = ", ".join(f"{_kind_name(table, k)} at {table.where(i)} ({_short(v)})" for k, (i, v) in first.items())
        raise PieError(f"{table.source}: column {col!r} mixes label types: {shown}; use one type for all labels")


def _splits(table: Table, col: str, hint: str) -> list[str]:
    """Check the split names per row here, so the error names rows (build_dataset maps them)."""
    out, bad = [], []
    for i, value in enumerate(table.frame[col]):
        text = str(value).strip().lower() if not _is_null(value) else ""
        if text not in SPLIT_ALIASES:
            bad.append(i)
        out.append(text)
    if bad:
        names = sorted({out[i] or "(empty)" for i in bad})[:5]
        raise PieError(f"{table.source}: column {col!r} ({hint}): unknown split name(s) {', '.join(map(repr, names))} "
                       f"at {_rows(table, bad)}; use train, validation or test (dev/valid mean validation)")
    return out


def _is_nan(value) -> bool:
    return isinstance(value, float) and math.isnan(value)


def _is_null(value) -> bool:
    return value is None or _is_nan(value) or (isinstance(value, str) and not value.strip())


def _kind_name(table: Table, kind: str) -> str:
    return {"int": "integer" if table.typed else "numeric", "str": "string" if table.typed else "text",
            "bool": "boolean"}[kind]


def _rows(table: Table, idx: list[int], show: int = 3) -> str:
    shown = ", ".join(table.where(i) for i in idx[:show])
    return shown + (f" and {len(idx) - show} more ({len(idx)} in all)" if len(idx) > show else "")


def _short(value, width: int = 40) -> str:
    text = repr(value)  # repr keeps a message on one line even for values with line breaks
    return text if len(text) <= width else text[: width - 3] + "..."
