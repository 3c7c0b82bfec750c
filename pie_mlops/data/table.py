"""What a reader returns (`Table`: the needed columns, and where each row came from) and the
one-line errors that point into it: a missing column (with the closest name), an error's first line."""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field

import pandas as pd

from pie_mlops.util.errors import PieError

HF_SPLIT_COL = "__hf_split__"  # internal column; no user column is named like this


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


def require_column(available: list[str], col: str, opt: str, path: str) -> str:
    if col in available:
        return col
    close = difflib.get_close_matches(col, available, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    shown = ", ".join(map(repr, available[:30])) + (", ..." if len(available) > 30 else "")
    raise PieError(f"{path}: no column {col!r} (from {opt}); available columns: {shown}{hint}")


def first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:200]
