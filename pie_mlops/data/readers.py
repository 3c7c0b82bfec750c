"""Read a user's file into a frame, failing with one line that says where the input is wrong.

Formats: CSV, TSV, JSON Lines (or a JSON array), Parquet, a `datasets` dataset saved with
`save_to_disk`, and a Hugging Face hub name. CSV/TSV/JSONL are parsed here with the standard
library rather than pandas, because only a line-by-line parser can name the exact file line
of a bad byte, a short row or a broken JSON record. Values are kept as read (object
columns, CSV cells as strings): ids and labels like "007" are never mangled into numbers.
Hugging Face datasets are read by pie_mlops/data/hf_datasets.py.
"""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import pandas as pd

from pie_mlops.data.bounded import OPENERS, text_lines
from pie_mlops.data.hf_datasets import load_from_disk, load_hub, read_hf
from pie_mlops.data.table import Table, first_line, require_column
from pie_mlops.util.errors import PieError

DELIMITED = {".csv": ",", ".tsv": "\t", ".tab": "\t"}
JSON = (".jsonl", ".ndjson", ".json")
PARQUET = (".parquet", ".pq")
COMPRESSED = OPENERS
KNOWN = (*DELIMITED, *JSON, *PARQUET)
HUB_NAME = re.compile(r"[A-Za-z0-9][\w.-]*(/[\w.-]+)?(:[\w.-]+)?")


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
        return read_hf(load_from_disk(p, path), path, "hf-disk", columns, hf_split)
    if not p.exists():
        if _suffix(p) in KNOWN or not HUB_NAME.fullmatch(path):
            raise PieError(f"{path}: no such file or directory")
        return read_hf(load_hub(path), path, "hf-hub", columns, hf_split)
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
                    require_column(header, col, opt, path)
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
            require_column(names, col, opt, path)
        table = pq.read_table(p, columns=list(dict.fromkeys(columns.values())))
    except (pa.ArrowException, OSError) as exc:
        raise PieError(f"{path}: not a readable Parquet file ({first_line(exc)})") from None
    if table.num_rows == 0:
        raise PieError(f"{path}: has columns but no rows")
    frame = pd.DataFrame({c: pd.Series(table.column(c).to_pylist(), dtype=object) for c in table.column_names})
    return Table(frame, path, "parquet", typed=True)


def _select(frame: pd.DataFrame, path: str, columns: dict[str, str]) -> pd.DataFrame:
    for opt, col in columns.items():
        require_column(list(frame.columns), col, opt, path)
    return frame[list(dict.fromkeys(columns.values()))]
