"""The data-quality gate: a great-expectations suite over one dataset on disk.

Every verdict comes from a real GX validation result. Checks that span splits (leakage,
class coverage, class balance) become small derived frames that standard expectations
can judge. Each frame is indexed by example_id (or a readable key such as
"test/sports"), so GX's `partial_unexpected_index_list` already holds the sample ids.
The index is deliberately left unnamed: naming it makes GX compute the full unexpected
list with id columns, which took seconds instead of milliseconds on health_tweets.

The suites and their Checkpoint (`<dataset>.data`) live in the project's file-backed GX
project, `gx/` (pie_mlops/data/gx_project.py, where every great_expectations call is made,
imported lazily: it is slow to import).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from pie_mlops.util.atomic import atomic_dir, write_text
from pie_mlops.data.contract import SPLITS, label_column, read_dataset
from pie_mlops.data.gx_project import run_checkpoint
from pie_mlops.data.prepare import dedup_key

INT_TYPES = ["int8", "int16", "int32", "int64"]


@dataclass(frozen=True)
class Check:
    """One expectation: `name` is the stable id used in result.json and on the console."""

    name: str
    frame: str
    expectation: str  # class name in great_expectations.expectations
    kwargs: dict
    what: str
    severity: str = "critical"
    column: str | None = None


# A character that shows: not whitespace, not a zero-width or other invisible format character.
VISIBLE = r"[^\s\u00ad\u034f\u115f\u1160\u17b4\u17b5\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2064\u206a-\u206f\u3164\ufeff\uffa0]"


def _vector(value) -> np.ndarray:
    """A row's multi-hot vector as an array; a null becomes an empty one (and fails the checks)."""
    vector = np.asarray(value) if isinstance(value, (list, tuple, np.ndarray)) else np.array([])
    return vector if vector.size else np.array([], dtype=np.int8)  # np.asarray([]) is float64


def build_frames(meta: dict, splits: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    """The frames the suite validates; pure pandas, no GX."""
    col = label_column(meta["task"])
    n_classes = len(meta["label_names"])
    examples = pd.concat([df.assign(split=s) for s, df in splits.items()], ignore_index=True)
    if "example_id" in examples:
        examples.index = pd.Index(examples["example_id"].astype(object).to_numpy(), name=None)
    frames = {"examples": examples}
    if not {"example_id", "text", col} <= set(examples.columns):
        return frames  # the column checks fail; the derived frames need these columns

    if meta["task"] == "multi_label":
        # Multi-hot vectors, exploded to one row per (example, label position) so GX can
        # check every entry; plain per-row columns carry the vector length and the count of ones.
        vectors = [_vector(v) for v in examples[col]]
        dims = np.array([len(v) for v in vectors], dtype=np.int64)
        examples["n_dims"] = dims
        examples["n_on"] = np.array([int((v == 1).sum()) for v in vectors], dtype=np.int64)
        frames["labels"] = pd.DataFrame(
            {"value": np.concatenate(vectors) if vectors else np.array([], dtype=np.int8),
             "label": np.concatenate([np.arange(d) for d in dims]) if vectors else np.array([], dtype=np.int64),
             "split": np.repeat(examples["split"].to_numpy(), dims)},
            index=pd.Index(np.repeat(examples.index.to_numpy(), dims), dtype=object),
        )
        long = frames["labels"][frames["labels"]["value"] == 1]
    else:
        long = pd.DataFrame({"label": examples[col], "split": examples["split"]})

    # Leakage, stated on the texts: the normalised key (the same as de-duplication's) of each
    # train and test example, once per split; a key in both splits is then not unique.
    pairs = examples["text_pair"] if "text_pair" in examples else pd.Series(None, index=examples.index)
    keys = pd.Series([dedup_key(t, p if isinstance(p, str) else None) if isinstance(t, str) else None
                      for t, p in zip(examples["text"], pairs)], index=examples.index, dtype=object)
    sides = pd.DataFrame({"text_key": keys, "split": examples["split"].to_numpy()}, index=examples.index)
    sides = sides[sides["split"].isin(["train", "test"]) & sides["text_key"].notna()]
    frames["train_test_keys"] = sides[~sides.duplicated(["text_key", "split"])]

    # Class coverage and balance over in-range labels (out-of-range ones fail elsewhere).
    in_range = long[long["label"].isin(range(n_classes))]
    counts = (in_range.groupby(["split", "label"]).size()
              .reindex(pd.MultiIndex.from_product([list(SPLITS), range(n_classes)]), fill_value=0))
    names = meta["label_names"]
    frames["class_counts"] = pd.DataFrame(
        {"count": counts.to_numpy(dtype=np.int64)},
        index=pd.Index([f"{s}/{names[c]}" for s, c in counts.index], dtype=object),
    )
    total = in_range["label"].value_counts().reindex(range(n_classes), fill_value=0).to_numpy()
    frames["class_share"] = pd.DataFrame(
        {"share": total / max(len(examples), 1)}, index=pd.Index(list(names), dtype=object)
    )
    return frames


def plan_checks(meta: dict, frames: dict[str, pd.DataFrame], params: dict) -> list[Check]:
    """The suite, in report order. Pure: says what to expect, GX decides."""
    col = label_column(meta["task"])
    n_classes = len(meta["label_names"])
    classes = list(range(n_classes))
    lo, hi = int(params["min_chars"]), int(params["max_chars"])
    ex = frames["examples"]
    checks = [Check(f"column_{c}", "examples", "ExpectColumnToExist", {"column": c}, f"column {c} exists", column=c)
              for c in ("example_id", "text", "text_pair", col)]
    types = [("example_id", "str"), ("text", "str"), ("text_pair", "str")]
    if meta["task"] == "single_label":
        types.append((col, "int64"))
    checks += [Check(f"type_{c}", "examples", "ExpectColumnValuesToBeOfType", {"column": c, "type_": t},
                     f"{c} is {t}", column=c) for c, t in types]
    checks += [
        Check("example_id_not_null", "examples", "ExpectColumnValuesToNotBeNull", {"column": "example_id"},
              "every row has an example_id", column="example_id"),
        Check("example_id_unique", "examples", "ExpectColumnValuesToBeUnique", {"column": "example_id"},
              "example_id unique across all splits", column="example_id"),
    ]
    has_pairs = "text_pair" in ex and ex["text_pair"].notna().any()
    for c in ("text", "text_pair") if has_pairs else ("text",):
        checks += [
            Check(f"{c}_not_null", "examples", "ExpectColumnValuesToNotBeNull", {"column": c},
                  f"{c} is never null", column=c),
            # GX's pandas regex is a search: a blank text has no visible character (neither
            # whitespace nor an invisible format character such as U+200B, which \S matches).
            Check(f"{c}_not_blank", "examples", "ExpectColumnValuesToMatchRegex", {"column": c, "regex": VISIBLE},
                  f"{c} is not empty or whitespace-only", column=c),
            Check(f"{c}_length", "examples", "ExpectColumnValueLengthsToBeBetween",
                  {"column": c, "min_value": lo, "max_value": hi}, f"{c} has {lo}..{hi} characters", column=c),
        ]
    if meta["task"] == "single_label":
        checks += [
            Check("label_not_null", "examples", "ExpectColumnValuesToNotBeNull", {"column": col},
                  "every row has a label", column=col),
            Check("label_in_range", "examples", "ExpectColumnValuesToBeInSet", {"column": col, "value_set": classes},
                  f"label in 0..{n_classes - 1}", column=col),
        ]
    elif "labels" in frames:
        checks += [
            # A multi-hot vector of exactly len(label_names) entries cannot name a label out of range.
            Check("labels_in_range", "examples", "ExpectColumnValuesToBeBetween",
                  {"column": "n_dims", "min_value": n_classes, "max_value": n_classes},
                  f"labels is a vector of {n_classes} entries, one per label name", column=col),
            Check("labels_type", "labels", "ExpectColumnValuesToBeInTypeList",
                  {"column": "value", "type_list": INT_TYPES}, "labels entries are integers", column=col),
            Check("labels_binary", "labels", "ExpectColumnValuesToBeInSet", {"column": "value", "value_set": [0, 1]},
                  "labels entries are 0 or 1", column=col),
            Check("labels_at_least_one", "examples", "ExpectColumnValuesToBeBetween",
                  {"column": "n_on", "min_value": 1}, "each row has at least one label", column=col),
        ]
    if "train_test_keys" in frames:
        checks += [
            Check("no_train_test_leakage", "train_test_keys", "ExpectColumnValuesToBeUnique", {"column": "text_key"},
                  "no text in both train and test (case/whitespace-insensitive)", column="text"),
            Check("class_in_every_split", "class_counts", "ExpectColumnValuesToBeBetween",
                  {"column": "count", "min_value": 1}, "every class present in every split", column=col),
            Check("min_class_share", "class_share", "ExpectColumnValuesToBeBetween",
                  {"column": "share", "min_value": float(params["min_class_share"])},
                  f"every class is at least {params['min_class_share']:.1%} of examples", severity="warning",
                  column=col),
        ]
    return checks


def _plain(value):
    """JSON-safe scalars for result.json (GX hands back numpy types)."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return value if value is None or isinstance(value, (bool, int, float, str)) else str(value)


def _error(result) -> str | None:
    info = result.exception_info or {}
    infos = [info] if "raised_exception" in info else list(info.values())
    messages = [i.get("exception_message") for i in infos if isinstance(i, dict) and i.get("raised_exception")]
    return "; ".join(dict.fromkeys(str(m) for m in messages)) or None


def _entry(check: Check, result, sample_ids: int) -> dict:
    res = result.result or {}
    return {
        "name": check.name,
        "expectation": check.expectation,
        "frame": check.frame,
        "column": check.column,
        "what": check.what,
        "severity": check.severity,
        "success": bool(result.success),
        "element_count": _plain(res.get("element_count")),
        "unexpected_count": _plain(res.get("unexpected_count")),
        "observed": _plain(res.get("observed_value")),
        "sample_ids": [str(i) for i in (res.get("partial_unexpected_index_list") or [])[:sample_ids]],
        "error": _error(result),
    }


def validate_dataset(dataset_dir: Path, report_dir: Path, params: dict, gx_root: Path | None = None) -> dict:
    """Validate `dataset_dir` with the Checkpoint `<name>.data` of the GX project in
    `gx_root/gx` (default: the working directory's); write `report_dir/result.json` and
    `report_dir/data_docs/` (offline, every kept run).

    Returns the same content as result.json. `success` is False only when a critical
    expectation failed; warning-level failures are reported but do not fail the gate.
    """
    dataset_dir, report_dir = Path(dataset_dir), Path(report_dir)
    meta, splits = read_dataset(dataset_dir)
    frames = build_frames(meta, splits)
    checks = plan_checks(meta, frames, params)
    sample_ids = int(params["sample_ids"])
    with atomic_dir(report_dir / "data_docs") as tmp_docs:
        results, gate_ok = run_checkpoint(Path(gx_root or "."), f"{dataset_dir.name}.data", frames, checks,
                                          tmp_docs, sample_ids)
    entries = [_entry(c, r, sample_ids) for c, r in zip(checks, results)]
    summary = {
        "dataset": dataset_dir.name,
        "task": meta["task"],
        "n_examples": {s: int(len(df)) for s, df in splits.items()},
        "success": bool(gate_ok),
        "n_checks": len(entries),
        "n_failed": sum(not e["success"] and e["severity"] == "critical" for e in entries),
        "n_warnings": sum(not e["success"] and e["severity"] != "critical" for e in entries),
        "checks": entries,
        "data_docs": "data_docs/index.html",
    }
    text = json.dumps(summary, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    write_text(report_dir / "result.json", text)
    return json.loads(text)
