"""Pure preparation steps shared by every source: normalise, de-duplicate, give stable ids.

No I/O here, so the same rules apply to the packaged corpora and to user imports.
"""

from __future__ import annotations

import hashlib
import unicodedata

import pandas as pd


def dedup_key(text: str, text_pair: str | None = None) -> str:
    """Case- and whitespace-insensitive key: near-identical copies count as duplicates."""
    norm = " ".join(unicodedata.normalize("NFC", text).split()).casefold()
    if text_pair is not None:
        norm += "\x1f" + " ".join(unicodedata.normalize("NFC", text_pair).split()).casefold()
    return norm


def make_example_id(prefix: str, text: str, text_pair: str | None = None) -> str:
    """Stable id from the source and the content, so it survives re-ordering and re-splitting."""
    digest = hashlib.sha1(dedup_key(text, text_pair).encode("utf-8")).hexdigest()[:16]
    return f"{prefix}-{digest}"


def _label_key(value) -> tuple:
    return tuple(sorted(value)) if isinstance(value, (list, tuple)) else (value,)


def deduplicate(df: pd.DataFrame, label_col: str) -> tuple[pd.DataFrame, dict]:
    """Drop repeated texts, keeping the first copy.

    A text that appears with different labels is ambiguous: every copy is dropped, since
    keeping either would put a coin flip into the gold labels.
    Returns the frame (original order, fresh index) and counts for meta.json.
    """
    pairs = df["text_pair"] if "text_pair" in df else pd.Series([None] * len(df), index=df.index)
    keys = pd.Series([dedup_key(t, p) for t, p in zip(df["text"], pairs)], index=df.index)
    label_keys = df[label_col].map(_label_key)
    n_labels_per_key = pd.DataFrame({"k": keys, "l": label_keys}).groupby("k", sort=False)["l"].nunique()
    conflicted = keys.map(n_labels_per_key) > 1
    duplicated = keys.duplicated(keep="first") & ~conflicted
    kept = df[~conflicted & ~duplicated].reset_index(drop=True)
    stats = {
        "n_duplicates_removed": int(duplicated.sum()),
        "n_conflicting_removed": int(conflicted.sum()),
    }
    return kept, stats


def assign_ids(df: pd.DataFrame, prefix: str) -> pd.DataFrame:
    pairs = df["text_pair"] if "text_pair" in df else [None] * len(df)
    out = df.copy()
    out["example_id"] = [make_example_id(prefix, t, p) for t, p in zip(df["text"], pairs)]
    return out
