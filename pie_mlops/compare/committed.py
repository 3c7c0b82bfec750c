"""Committed predictions: every model's logits in a compact form under
`docs/results/<name>/predictions/<dataset>/<arch>/`, in the pipeline's own layout
(`dense/s<seed>/`, `dense/dense-long/s<seed>/`, `pruned/<group>/s<seed>/`, one
`<split>.parquet` per split), so `pie-mlops compare --predictions DIR` reads them as they are
(docs/design.md §3, "Committed predictions").

Compact: the contract's columns only (`pred`, `prob`, `loss` are recomputed from the logits)
and the logits as float16. float16 must not change a prediction silently: every file is
checked when written, its predicted labels (argmax; multi-label: sigmoid >= threshold) from
the float16 logits against those from the float32 ones, and a file where even one differs is
written with its float32 logits instead, and reported. A group's modal label can still turn on
a mean probability (the `probability` tie rule), so `verify` recomputes every pie_share from
the committed files and the collector rewrites a disagreeing group in float32.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pie_mlops.compare import example_index
from pie_mlops.compare.files import FILE_MIN_SEEDS, FILE_SPLIT, TIE_RULE
from pie_mlops.util.errors import PieError

KEEP = ("example_id", "split", "group", "seed", "label", "labels", "threshold")
MODEL_GLOBS = ("dense/s*", "dense/dense-long/s*", "pruned/*/s*")


@dataclass
class Exported:
    model_dir: Path          # relative to the architecture's root, e.g. pruned/magnitude-ft@0.50/s3
    splits: list[str]
    float32_splits: list[str]  # where float16 would have changed a predicted label


def expected_splits(train: dict, prune: dict) -> dict[str, set[str]]:
    """The split files a finished model writes, from one architecture's train and prune params
    (`params.for_arch`): dense, dense-long and pruned. A model directory holding fewer is still
    being published (its files are renamed in one by one) and waits for the next sync."""
    dense = {"validation", "test"} | ({"train"} if train.get("predict_train") else set())
    dense |= {f"train@epoch{k}" for k in (train.get("snapshot_epochs") or [])}
    pruned = {s for s, key in (("validation", "predict_validation"), ("test", "predict_test"), ("train", "predict_train"))
              if prune.get(key)}
    return {"dense": dense, "dense-long": {"validation", "test"}, "pruned": pruned}


def index_examples(root: Path) -> int:
    """Move the ids and labels of every committed file under `root` (an architecture's folder)
    that still carries them into the split's example index (example_index.py); the logits
    and every other column are rewritten as they were. The number of files rewritten."""
    import pyarrow.parquet as pq

    from pie_mlops.util.atomic import atomic_file

    n = 0
    for rel in model_dirs(root):
        for f in sorted((root / rel).glob("*.parquet")):
            if "example_id" not in pq.read_schema(f).names:  # moved already: not read again
                continue
            table = pq.read_table(f)
            stripped, done = example_index.strip(table, root)
            if done:
                with atomic_file(f) as tmp:
                    pq.write_table(stripped, tmp, compression="zstd", write_statistics=False)
                n += 1
    return n


def dense_gate(root: Path, min_gain: float, split: str = FILE_SPLIT) -> dict:
    """The baseline gate recomputed from the committed dense logits under `root` (an architecture's
    folder): the trivial baseline on `split`, each dense seed's score, and whether every one beats
    the baseline by `min_gain` (docs/gates.md). What run.json lists, so a reader can check it."""
    import pyarrow.parquet as pq

    from pie_mlops.compare.baseline import baseline_name, score, trivial_baseline
    from pie_mlops.compare.files import _list_values

    cache: dict = {}
    scores, value, task = {}, None, "single_label"
    for f in sorted(root.glob(f"dense/s*/{split}.parquet"), key=lambda f: int(f.parent.name[1:])):
        table = pq.read_table(f)
        if "example_id" not in table.column_names:
            table = example_index.attach(f, table, root, split, split, cache)
        task = "multi_label" if "labels" in table.column_names else "single_label"
        col = "labels" if task == "multi_label" else "label"
        labels = _list_values(table[col], f, col, np.int8) if task == "multi_label" else table[col].to_numpy()
        thr = None  # single-label: argmax; multi-label: each model's threshold, 0.5 where absent
        if task == "multi_label":
            thr = (np.asarray(table["threshold"].to_numpy(zero_copy_only=False), dtype=np.float64)
                   if "threshold" in table.column_names else np.full(len(labels), np.nan))
        preds = predicted(_list_values(table["logits"], f, "logits", np.float32), thr)
        scores[f"dense/{f.parent.name}"] = round(score(labels, preds, task), 6)
        value = trivial_baseline(labels, task)
    if not scores:
        raise PieError(f"{root}: no dense/s<seed>/{split}.parquet files to gate")
    return {"baseline": baseline_name(task), "value": round(value, 6), "min_gain": min_gain, "split": split,
            "scores": scores, "passed": all(v >= value + min_gain - 1e-12 for v in scores.values())}


def model_dirs(root: Path) -> list[Path]:
    """The finished-looking model directories under an architecture's root (relative paths)."""
    dirs = [d for g in MODEL_GLOBS for d in root.glob(g)
            if d.is_dir() and d.name[1:].isdigit() and any(d.glob("*.parquet"))]
    return sorted(d.relative_to(root) for d in dirs)


def predicted(logits: np.ndarray, thresholds: np.ndarray | None) -> np.ndarray:
    """Each row's predicted label(s), as the comparison takes them: argmax (lowest index on a
    tie), or multi-label sigmoid(z) >= threshold (0.5 where absent)."""
    z = np.asarray(logits, dtype=np.float64)
    if thresholds is None:
        return z.argmax(axis=1)
    t = np.where(np.isnan(thresholds), 0.5, thresholds)[:, None]
    return (1.0 / (1.0 + np.exp(-z))) >= t


def compact_table(table, force_float32: bool = False):
    """(the file's contract columns with float16 logits, or float32 where float16 would change a
    predicted label; whether float32 was kept)."""
    import pyarrow as pa

    from pie_mlops.compare.files import _list_values

    names = [c for c in KEEP if c in table.column_names]
    logits = _list_values(table["logits"], Path("<table>"), "logits", np.float32)
    thr = None
    if "labels" in table.column_names:
        thr = (np.asarray(table["threshold"].to_numpy(zero_copy_only=False), dtype=np.float64)
               if "threshold" in table.column_names else np.full(len(logits), np.nan))
    half = logits.astype(np.float16)
    keep32 = force_float32 or not np.isfinite(half[np.isfinite(logits)]).all() or \
        not np.array_equal(predicted(logits, thr), predicted(half.astype(np.float32), thr))
    values = logits if keep32 else half
    width = logits.shape[1] if logits.ndim == 2 else 0
    offsets = pa.array(np.arange(0, values.size + 1, max(width, 1), dtype=np.int32)[:len(values) + 1])
    cols = {n: table[n] for n in names}
    cols["logits"] = pa.ListArray.from_arrays(offsets, pa.array(values.ravel()))
    return pa.table(cols), keep32


def export_model(src: Path, dst: Path, force_float32: bool = False, skip: frozenset = frozenset(),
                 root: Path | None = None) -> Exported:
    """Write every `<split>.parquet` of the model directory `src` compactly into `dst`, all at once
    (an atomic directory swap: a kill leaves `dst` whole or absent). `skip`: splits left out
    (validation, when the comparison reads test: it feeds nothing and costs a file per model).
    `root`: the architecture's folder, whose example index takes the files' ids and labels."""
    import pyarrow.parquet as pq

    from pie_mlops.util.atomic import atomic_dir

    kept32, splits = [], []
    with atomic_dir(dst) as tmp:
        for f in sorted(src.glob("*.parquet")):
            if f.stem in skip:
                continue
            try:
                table = pq.read_table(f)
            except Exception as exc:
                raise PieError(f"{f}: not a readable Parquet file ({str(exc).splitlines()[0]})") from None
            if "logits" not in table.column_names:
                raise PieError(f"{f}: not a predictions file: no logits column")
            compact, keep32 = compact_table(table, force_float32)
            if root is not None:
                compact, _ = example_index.strip(compact, root)
            pq.write_table(compact, tmp / f.name, compression="zstd", write_statistics=False)
            splits.append(f.stem)
            if keep32:
                kept32.append(f.stem)
    return Exported(dst, splits, kept32)


def sync(src_root: Path, dst_root: Path, expected: dict[str, set[str]] | None = None,
         skip: frozenset = frozenset()) -> list[Exported]:
    """Export every model of `src_root` (an architecture's predictions) not yet under `dst_root`.
    A committed model is never rewritten, so a rerun adds only the new ones. `expected`: for
    `expected_splits`; a directory lacking one (still being published, or cut off between its
    renames by a kill) is left for the next sync."""
    done = []
    for rel in model_dirs(src_root):
        if (dst_root / rel).is_dir():
            continue
        kind = "dense-long" if rel.parts[:2] == ("dense", "dense-long") else rel.parts[0]
        have = {p.stem for p in (src_root / rel).glob("*.parquet")}
        if expected and not expected.get(kind, set()) <= have:
            continue
        done.append(export_model(src_root / rel, dst_root / rel, skip=skip, root=dst_root))
        done[-1].model_dir = rel
    return done


def verify(root: Path, summary: dict, split: str = FILE_SPLIT, min_seeds: int = FILE_MIN_SEEDS,
           tie_rule: str = TIE_RULE) -> dict[str, tuple]:
    """group -> (committed summary's pie_share, the one recomputed from the files under `root`),
    for every group where they differ (or the files lack it). Empty: all reproduce exactly."""
    from pie_mlops.compare import pies
    from pie_mlops.compare.files import load_predictions_dir

    core = pies.compare(load_predictions_dir(root, split), min_seeds, tie_rule)
    bad = {}
    for group, row in summary.items():
        if isinstance(row, dict) and "pie_share" in row:
            got = core.summary.get(group, {}).get("pie_share")
            if got != row["pie_share"]:
                bad[group] = (row["pie_share"], got)
    return bad


def reproduce_exactly(root: Path, src: Path, summary: dict, split: str = FILE_SPLIT, min_seeds: int = FILE_MIN_SEEDS,
                      tie_rule: str = TIE_RULE) -> list[str]:
    """Make the committed logits under `root` reproduce every pie_share of `summary`: a group
    that does not (a tie decided by a mean probability that float16 moved) is rewritten, with
    dense, in float32 from the pipeline's files under `src`. The groups rewritten; a PieError
    when even float32 does not reproduce (the files are not the summary's models)."""
    bad = verify(root, summary, split, min_seeds, tie_rule)
    if bad:
        for rel in model_dirs(root):
            if rel.parts[0] == "dense" or (len(rel.parts) > 2 and rel.parts[1] in bad):
                if not (src / rel).is_dir():
                    raise PieError(f"{root / rel}: float16 logits move pie_share of {', '.join(sorted(bad))}, and "
                                   f"{src / rel} (the float32 original) is not here to rewrite them from")
                export_model(src / rel, root / rel, force_float32=True,
                             skip=frozenset({"validation"} - {split}), root=root)
        still = verify(root, summary, split, min_seeds, tie_rule)
        if still:
            raise PieError(f"{root}: the committed logits do not reproduce pie_share of {still} (summary vs files)")
    return sorted(bad)
