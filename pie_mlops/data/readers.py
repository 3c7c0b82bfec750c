"""Read a user's file into a frame, failing with one line that says where the input is wrong.

Formats: CSV, TSV, JSON Lines (or a JSON array), Parquet, a `datasets` dataset saved with
`save_to_disk`, and a Hugging Face hub name. CSV/TSV/JSONL are parsed here with the standard
library rather than pandas, because only a line-by-line parser can name the exact file line
of a bad byte, a short row or a broken JSON record. Values are kept as read (object
columns, CSV cells as strings): ids and labels like "007" are never mangled into numbers.
"""

from __future__ import annotations

import csv
import difflib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from pie_mlops.data.bounded import OPENERS, text_lines
from pie_mlops.data.build import SPLIT_ALIASES
from pie_mlops.util.errors import PieError

DELIMITED = {".csv": ",", ".tsv": "\t", ".tab": "\t"}
JSON = (".jsonl", ".ndjson", ".json")
PARQUET = (".parquet", ".pq")
COMPRESSED = OPENERS
KNOWN = (*DELIMITED, *JSON, *PARQUET)
HF_SPLIT_COL = "__hf_split__"  # internal column; no user column is named like this
HUB_NAME = re.compile(r"[A-Za-z0-9][\w.-]*(/[\w.-]+)?(:[\w.-]+)?")


@dataclass
class Table:
    """What was read: the needed columns plus what it takes to point at a row."""

    frame: pd.DataFrame  # object columns, values as read
    source: str  # the path or hub name, as the user gave it
    format: str  # csv, tsv, jsonl, json, parquet, hf-disk, hf-hub
    typed: bool  # False for CSV/TSV, where every cell is a string
    lines: list[int] | None = None  # file line where each row starts
    parts: list[tuple[str, int]] = field(default_factory=list)  # (HF split, first row) per split
    class_names: dict[str, list[str]] = field(default_factory=dict)  # HF ClassLabel names per column
    split_column: str | None = None  # set when the HF splits are kept (--hf-split keep)

    def where(self, i: int) -> str:
        """'row 7 (line 8)' for text files, 'row 7 (split 'test', row 2)' for HF splits."""
        text = f"row {i + 1}"
        if self.lines is not None:
            text += f" (line {self.lines[i]})"
        elif len(self.parts) > 1:
            name, start = self._part(i)
            text += f" (split {name!r}, row {i - start + 1})"
        return text

    def split_of(self, i: int) -> str | None:
        return self._part(i)[0] if self.parts else None

    def _part(self, i: int) -> tuple[str, int]:
        return next((n, s) for n, s in reversed(self.parts) if s <= i)


def read_table(path: str, columns: dict[str, str], hf_split: str | None = None, limits: dict | None = None) -> Table:
    """Read `path` and keep `columns` ({option: column name}); a missing one is an error.
    `limits`: the `import` params section (bytes, expansion ratio, line length; data/bounded.py)."""
    from pie_mlops.config.schema import defaults

    limits = limits or defaults("import")
    p = Path(path).expanduser()
    if p.is_symlink():  # never echo what a link points to (a header from /etc/passwd) in an error
        raise PieError(f"{path}: a symbolic link; give the data file itself")
    if hf_split is not None and p.is_file():
        raise PieError(f"{path}: --hf-split applies only to a Hugging Face dataset (a save_to_disk directory or hub name)")
    if p.is_dir():
        return _read_hf(_load_from_disk(p, path), path, "hf-disk", columns, hf_split)
    if not p.exists():
        if _suffix(p) in KNOWN or not HUB_NAME.fullmatch(path):
            raise PieError(f"{path}: no such file or directory")
        return _read_hf(_load_hub(path), path, "hf-hub", columns, hf_split)
    if not p.is_file():  # a FIFO or device would block the read for ever
        raise PieError(f"{path}: not a regular file (a pipe, socket or device); give a data file")
    suffix = _suffix(p)
    if suffix in PARQUET:
        return _read_parquet(p, path, columns)
    if suffix not in KNOWN:
        raise PieError(f"{path}: unknown file type {p.suffix or '(no suffix)'!r}; use .csv, .tsv, .jsonl, .json, "
                       f".parquet (optionally .gz/.bz2/.xz) or a save_to_disk directory")
    text = text_lines(p, path, limits)  # streamed: only the needed columns are ever held
    if suffix in DELIMITED:
        fmt = suffix.lstrip(".").replace("tab", "tsv")
        frame, lines = _parse_delimited(text, DELIMITED[suffix], path, columns)
        return Table(frame, path, fmt, typed=False, lines=lines)
    frame, lines = _parse_json(text, path)
    return Table(_select(frame, path, columns), path, "jsonl" if lines else "json", typed=True, lines=lines)


def _suffix(p: Path) -> str:
    suffixes = [s.lower() for s in p.suffixes]
    if suffixes and suffixes[-1] in COMPRESSED:
        suffixes.pop()
    return suffixes[-1] if suffixes else ""


def _parse_delimited(text, delim: str, path: str, columns: dict[str, str]) -> tuple[pd.DataFrame, list[int]]:
    csv.field_size_limit(2**31 - 1)  # the default (128 KiB per field) rejects long documents
    reader = csv.reader(text, delimiter=delim, strict=True)
    needed = list(dict.fromkeys(columns.values()))
    header, keep, rows, lines = None, [], [], []
    start = 1  # line where the current record starts; quoted fields may span lines
    try:
        for record in reader:
            if not record:  # blank line
                start = reader.line_num + 1
                continue
            if header is None:
                header = record
                dup = next((c for k, c in enumerate(header) if c in header[:k]), None)
                if dup is not None:
                    raise PieError(f"{path}: line {start}: duplicate column name {dup!r} in the header")
                for opt, col in columns.items():
                    _column(header, col, opt, path)
                keep = [header.index(col) for col in needed]
            elif len(record) != len(header):
                sep = "tabs" if delim == "\t" else repr(delim)
                raise PieError(f"{path}: line {start}: expected {len(header)} fields like the header, found "
                               f"{len(record)}; quote fields that contain {sep} or line breaks")
            else:
                rows.append([record[k] for k in keep])
                lines.append(start)
            start = reader.line_num + 1
    except csv.Error as exc:
        reason = "a quoted field is never closed" if "end of data" in str(exc) else f"malformed ({exc})"
        raise PieError(f"{path}: line {start}: {reason}") from None
    if not rows:
        raise PieError(f"{path}: has a header but no data rows")
    frame = pd.DataFrame({c: pd.Series(v, dtype=object) for c, v in zip(needed, zip(*rows))})
    return frame, lines


def _parse_json(text, path: str) -> tuple[pd.DataFrame, list[int] | None]:
    """JSON Lines (one object per line) or, for .json, a single array of objects."""
    import itertools

    head = []  # up to the first non-blank line (data/bounded.py bounds the blank ones)
    for line in text:
        head.append(line)
        if line.strip():
            break
    if "".join(head).lstrip().startswith("["):
        try:
            records = json.loads("".join(itertools.chain(head, text)))  # an array is one document (within import.max_bytes)
        except json.JSONDecodeError as exc:
            raise PieError(f"{path}: line {exc.lineno}: not valid JSON ({exc.msg} at column {exc.colno})") from None
        bad = next((i for i, r in enumerate(records) if not isinstance(r, dict)), None)
        if bad is not None:
            raise PieError(f"{path}: item {bad + 1} of the array is {type(records[bad]).__name__}, not a JSON object")
        lines = None
    else:
        records, lines = [], []
        for n, line in enumerate(itertools.chain(head, text), start=1):  # split at \n only (U+2028 is legal)
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise PieError(f"{path}: line {n}: not valid JSON ({exc.msg} at column {exc.colno})") from None
            if not isinstance(record, dict):
                raise PieError(f"{path}: line {n}: expected a JSON object, got {type(record).__name__}")
            records.append(record)
            lines.append(n)
    if not records:
        raise PieError(f"{path}: no records (empty JSON array)")
    names = list(dict.fromkeys(k for r in records for k in r))
    frame = pd.DataFrame({k: pd.Series([r.get(k) for r in records], dtype=object) for k in names})
    return frame, lines


def _read_parquet(p: Path, path: str, columns: dict[str, str]) -> Table:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        names = pq.read_schema(p).names
        for opt, col in columns.items():
            _column(names, col, opt, path)
        table = pq.read_table(p, columns=list(dict.fromkeys(columns.values())))
    except (pa.ArrowException, OSError) as exc:
        raise PieError(f"{path}: not a readable Parquet file ({_first_line(exc)})") from None
    if table.num_rows == 0:
        raise PieError(f"{path}: has columns but no rows")
    frame = pd.DataFrame({c: pd.Series(table.column(c).to_pylist(), dtype=object) for c in table.column_names})
    return Table(frame, path, "parquet", typed=True)


def _datasets():
    """Hugging Face `datasets`, an optional dependency (the `hub` extra)."""
    try:
        import datasets
    except ImportError:
        raise PieError("reading a Hugging Face dataset needs the `datasets` package: "
                       "pip install 'pie-mlops[hub]'") from None
    return datasets


def _load_from_disk(p: Path, path: str):
    if not ((p / "dataset_dict.json").is_file() or (p / "state.json").is_file()):
        raise PieError(f"{path}: a directory, but not a dataset saved with `datasets` save_to_disk "
                       f"(no dataset_dict.json or state.json inside)")
    datasets = _datasets()

    try:
        return datasets.load_from_disk(str(p))
    except Exception as exc:  # datasets raises many types for a corrupt save; all mean the same here
        raise PieError(f"{path}: cannot load the saved dataset ({_first_line(exc)})") from None


def _load_hub(path: str):
    """`name` or `name:config`, loaded lazily; offline (the default here) it cannot work."""
    datasets = _datasets()

    name, _, config = path.partition(":")
    try:
        return datasets.load_dataset(name, config or None)
    except Exception as exc:  # offline, unknown name, gated repo: the user needs the same hint
        offline = datasets.config.HF_DATASETS_OFFLINE or datasets.config.HF_HUB_OFFLINE
        why = "offline: HF_DATASETS_OFFLINE or HF_HUB_OFFLINE is set" if offline else _first_line(exc)
        raise PieError(f"{path}: no such file or directory, and it could not be loaded as a Hugging Face hub "
                       f"dataset ({why})") from None


def _read_hf(obj, path: str, fmt: str, columns: dict[str, str], hf_split: str | None) -> Table:
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
            _column(ds.column_names, col, opt, path if len(parts) == 1 else f"{path} (split {name!r})")
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


def _select(frame: pd.DataFrame, path: str, columns: dict[str, str]) -> pd.DataFrame:
    for opt, col in columns.items():
        _column(list(frame.columns), col, opt, path)
    return frame[list(dict.fromkeys(columns.values()))]


def _column(available: list[str], col: str, opt: str, path: str) -> str:
    if col in available:
        return col
    close = difflib.get_close_matches(col, available, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    shown = ", ".join(map(repr, available[:30])) + (", ..." if len(available) > 30 else "")
    raise PieError(f"{path}: no column {col!r} (from {opt}); available columns: {shown}{hint}")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:200]
