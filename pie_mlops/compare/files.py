"""File mode of `compare` (`compare --predictions DIR`; docs/design.md §3): a directory of prediction files in, pies.parquet
and summary.json out. No MLflow needed; `compare_study` builds the full stage on top.

Files are read with pyarrow and their `logits` lists flattened straight into numpy (no
Python object per row), which is most of why this is fast (bench/compare_speed.py).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from pie_mlops.config.schema import Compare
from pie_mlops.util.errors import PieError
from pie_mlops.compare import example_index
from pie_mlops.compare.pies import CompareResult, ModelRows, Stacked, compare, stack_models
from pie_mlops.compare.stacking import gold_labels

REQUIRED = ("example_id", "split", "group", "seed", "logits")
# File mode's own defaults (docs/design.md §3: `[--split test] [--min-seeds 3]`), not the study's
# compare section: a folder of prediction files is compared on test, at three models a group.
FILE_MODE = {"split": "test", "min_seeds": 3}
FILE_SPLIT, FILE_MIN_SEEDS = FILE_MODE["split"], FILE_MODE["min_seeds"]
TIE_RULE = Compare.model_fields["tie_rule"].default  # the study's rule (compare.tie_rule)


def _list_values(col, path: Path, name: str, dtype) -> np.ndarray:
    """A list<...> column of equal-length lists as an (n, width) array."""
    import pyarrow as pa

    arr = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
    if arr.null_count:
        raise PieError(f"{path}: column {name!r} has {arr.null_count} null row(s)")
    offsets = np.asarray(arr.offsets)
    widths = np.diff(offsets)
    if len(widths) and (widths != widths[0]).any():
        raise PieError(f"{path}: column {name!r} has lists of differing lengths {sorted(set(widths.tolist()))[:5]}")
    values = np.asarray(arr.flatten().to_numpy(zero_copy_only=False), dtype=dtype)
    return values.reshape(len(widths), int(widths[0]) if len(widths) else 0)


def _id_chunk(pf, path: Path):
    """(how the `example_id` column chunk is stored, its raw bytes) for a file of one row
    group, else None. Two files whose chunks match in both hold the same ids."""
    md = pf.metadata
    if md.num_row_groups != 1:
        return None
    rg = md.row_group(0)
    for j in range(rg.num_columns):
        col = rg.column(j)
        if col.path_in_schema == "example_id":
            start = col.dictionary_page_offset if col.has_dictionary_page else col.data_page_offset
            if start is None or col.total_compressed_size <= 0:
                return None
            with open(path, "rb") as f:
                f.seek(start)
                raw = f.read(col.total_compressed_size)
            return (col.compression, col.physical_type, str(pf.schema_arrow.field("example_id").type),
                    col.num_values, col.encodings), raw
    return None


def _load_table(path: Path, ref: dict | None = None):
    """The contract's columns of one file, or the error to raise (raised in file order later).

    One open per file (schema and data from the same footer); `split` and `group` are read as
    dictionaries, so no string per row is built for them, and the split filter and the group
    check look at one value per file instead of one per row. With `ref` (the first file's id
    chunk): a file whose `example_id` chunk is stored byte for byte the same (every model's
    file of a split, as written) takes the first file's decoded ids instead of decoding its
    own; they are the same values, so every check on them still holds. With `ref` an empty
    dict, the file's id chunk is recorded there."""
    import pyarrow.parquet as pq

    try:
        try:
            pf = pq.ParquetFile(path, read_dictionary=["split", "group"])
        except KeyError:  # a column is missing: read what there is, and _read_file says what lacks
            pf = pq.ParquetFile(path)
        with pf:
            names = pf.schema_arrow.names
            wanted = [c for c in (*REQUIRED, "label", "labels", "threshold") if c in names]
            ids = chunk = None
            if ref is not None and "example_id" in wanted:
                chunk = _id_chunk(pf, path)
                if ref and chunk is not None and chunk == ref["chunk"]:
                    ids = ref["ids"]
                    wanted.remove("example_id")
            table = pf.read(columns=wanted, use_threads=False)  # one thread per file instead
            if ids is not None:
                table = table.add_column(0, "example_id", ids)
            elif ref is not None and not ref and chunk is not None:
                ref.update(chunk=chunk, ids=table["example_id"])
            return table
    except Exception as exc:
        return PieError(f"{path}: not a readable Parquet file ({str(exc).splitlines()[0]})")


def _one_value(col):
    """The single value of a column holding one (and no nulls), else None. For a dictionary
    column only the dictionaries are looked at; for others, the min and max."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if col.null_count or len(col) == 0:
        return None
    if pa.types.is_dictionary(col.type):
        values = {v for chunk in col.chunks for v in chunk.dictionary.to_pylist()}
        if len(values) != 1:  # a dictionary may hold unused values: count the used ones
            values = set(pc.unique(_as_plain(col)).to_pylist())
        return values.pop() if len(values) == 1 else None
    lo, hi = pc.min_max(col).values()
    return lo.as_py() if lo == hi else None


def _as_plain(col):
    """A column read as a dictionary, decoded to its value type."""
    import pyarrow as pa

    return col.cast(col.type.value_type) if pa.types.is_dictionary(col.type) else col


def _read_file(path: Path, table, split: str, seen_ids: dict, root: Path,
               indexes: dict) -> tuple[str | None, list[ModelRows]]:
    """(task, the file's models of `split`). `seen_ids` caches the last ids column: files in the
    same example order then share one numpy array, and stacking skips their sort. A file
    without ids takes them from its split's example index (`indexes` caches those)."""
    if isinstance(table, Exception):
        raise table
    if "example_id" not in table.column_names and {"split", "logits"} <= set(table.column_names):
        table = example_index.attach(path, table, root, _one_value(table["split"]), split, indexes)
        if table is None:  # another split's file: its index is not read
            return None, []
    task = _file_task(path, set(table.column_names))
    table = _rows_of_split(table, split)
    if table is None:
        return task, []
    logits = _list_values(table["logits"], path, "logits", np.float32)
    if task == "multi_label":
        labels = _list_values(table["labels"], path, "labels", np.int8)
    ids = _example_ids(path, table["example_id"], seen_ids)
    if task == "single_label":
        labels = gold_labels(table["label"].to_numpy(zero_copy_only=False), ids, str(path))
    return task, _file_models(path, table, ids, labels, logits)


def _file_task(path: Path, names: set[str]) -> str:
    """single_label or multi_label, from the columns, which must be the contract's."""
    missing = [c for c in REQUIRED if c not in names]
    if missing or not ({"label", "labels"} & names):
        missing += [] if {"label", "labels"} & names else ["label or labels"]
        raise PieError(f"{path}: not a predictions file: missing column(s) {', '.join(missing)}")
    if {"label", "labels"} <= names:
        raise PieError(f"{path}: has both label and labels columns; use one (docs/design.md §3)")
    return "multi_label" if "labels" in names else "single_label"


def _rows_of_split(table, split: str):
    """The table's rows of `split`; None when it has none."""
    import pyarrow.compute as pc

    only_split = _one_value(table["split"])
    if only_split is not None and only_split != split:
        return None
    if only_split is None:  # several splits (or nulls) in one file: keep the rows of `split`
        table = table.filter(pc.equal(_as_plain(table["split"]), split))
    return table if table.num_rows else None


def _example_ids(path: Path, id_col, seen_ids: dict) -> np.ndarray:
    """The example ids as str, shared with the previous file when its column is equal."""
    if id_col.null_count:
        row = int(np.flatnonzero(id_col.is_null().to_numpy(zero_copy_only=False))[0])
        raise PieError(f"{path}: row {row}: column 'example_id' is null; every row needs its example's id")
    if seen_ids.get("arrow") is not None and seen_ids["arrow"].equals(id_col):
        return seen_ids["numpy"]
    ids = np.asarray(id_col.to_numpy(zero_copy_only=False)).astype(str)
    seen_ids.update(arrow=id_col, numpy=ids)
    return ids


def _file_models(path: Path, table, ids: np.ndarray, labels: np.ndarray, logits: np.ndarray) -> list[ModelRows]:
    """The file's rows as one ModelRows per (group, seed) in it."""
    thresholds = (np.asarray(table["threshold"].to_numpy(zero_copy_only=False), dtype=np.float64)
                  if "threshold" in table.column_names else None)

    def model(group, seed, rows) -> ModelRows:
        thr = None
        if thresholds is not None and not np.isnan(thresholds[rows]).all():
            thr = float(np.nanmean(thresholds[rows]))
        whole = isinstance(rows, slice)  # keep the shared ids object itself (see seen_ids)
        return ModelRows(str(group), int(seed), ids if whole else ids[rows], labels[rows], logits[rows], thr,
                         str(path))

    one_group, one_seed = _one_value(table["group"]), _one_value(table["seed"])
    if one_group is not None and one_seed is not None:  # the usual file: one model, no per-row grouping
        return [model(one_group, one_seed, slice(None))]
    groups = np.asarray(_as_plain(table["group"]).to_numpy(zero_copy_only=False)).astype(str)
    seeds = np.asarray(table["seed"].to_numpy(zero_copy_only=False)).astype(np.int64)
    return [model(g, s, np.flatnonzero((groups == g) & (seeds == s)))
            for g, s in sorted(set(zip(groups.tolist(), seeds.tolist())))]


def load_predictions_dir(root: str | Path, split: str = FILE_SPLIT) -> Stacked:
    """Every `*.parquet` under `root` (recursively), stacked for `split`."""
    root = Path(root)
    if not root.is_dir():
        raise PieError(f"{root}: not a directory of prediction files")
    files = sorted(f for f in root.rglob("*.parquet") if not example_index.is_index_file(f, root))
    if not files:
        raise PieError(f"{root}: no *.parquet prediction files found")
    special = next((f for f in files if not f.is_file()), None)
    if special is not None:  # a pipe would block the read for ever
        raise PieError(f"{special}: not a regular file (a pipe, socket, device or directory); give prediction files")
    from concurrent.futures import ThreadPoolExecutor

    kinds: dict[str, Path] = {}
    models: list[ModelRows] = []
    seen_ids: dict = {}
    indexes: dict = {}
    # Parquet decoding releases the GIL: read the files on every core, then stack in order.
    # The first file first: the others compare their id chunk with its (see _load_table).
    ref: dict = {}
    first = _load_table(files[0], ref)
    with ThreadPoolExecutor(max_workers=max(1, min(8, os.cpu_count() or 1))) as pool:
        tables = [first, *pool.map(lambda f: _load_table(f, ref), files[1:])]
    for path, table in zip(files, tables):
        task, found = _read_file(path, table, split, seen_ids, root, indexes)
        if task:
            kinds.setdefault(task, path)
        models += found
    if len(kinds) > 1:
        raise PieError(f"mixed single- and multi-label prediction files: {kinds['single_label']} has `label`, "
                       f"{kinds['multi_label']} has `labels`")
    if not models:
        raise PieError(f"{root}: no predictions of split {split!r} in {len(files)} file(s)")
    return stack_models(models, split, next(iter(kinds)))


def write_outputs(result: CompareResult, out: str | Path) -> None:
    """`out/pies.parquet` and `out/summary.json`, each written to a temporary file and renamed."""
    from pie_mlops.util.atomic import atomic_file, write_text

    out = Path(out)
    check_out_dir(out)
    with atomic_file(out / "pies.parquet") as tmp:
        result.pies.to_parquet(tmp, index=False)
    from pie_mlops.analysis.run import clean

    summary = dict(result.summary)
    if result.noise_floor is not None:  # beside the groups (docs/design.md §3)
        summary["noise_floor"] = result.noise_floor
    write_text(out / "summary.json", json.dumps(clean(summary), indent=2, sort_keys=True, allow_nan=False) + "\n")


def check_out_dir(out: Path) -> None:
    """`out` is (or can be made) a writable directory, else one line naming it."""
    if out.exists() and not out.is_dir():
        raise PieError(f"--out {out}: exists and is not a directory; give a directory path")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise PieError(f"--out {out}: cannot create the directory ({exc.strerror})") from None
    if not os.access(out, os.W_OK | os.X_OK):
        raise PieError(f"--out {out}: directory is not writable")


def compare_files(predictions: str | Path, out: str | Path, split: str = FILE_SPLIT, min_seeds: int = FILE_MIN_SEEDS,
                  params: dict | None = None) -> CompareResult:
    """File mode: read, compare, add the statistics (intervals, modal accuracies, collapse, the
    floor test and the noise floor), write. `params`: compare.* keys (n_boot, n_perm,
    n_resample, alpha, seed, tie_rule; the schema's defaults for the rest). Any contract
    error raises before anything is written."""
    from pie_mlops.analysis.group_stats import StatOptions, add_statistics
    from pie_mlops.config.schema import defaults

    params = {**defaults("compare"), **(params or {})}
    stacked = load_predictions_dir(predictions, split)
    if not set(stacked.groups) - {"dense"}:
        raise PieError(f"{predictions}: only the dense group in split {split!r}; a comparison needs a pruned "
                       f"group (<criterion>-<schedule>@<sparsity>) too")
    result = add_statistics(compare(stacked, min_seeds, str(params["tie_rule"])), StatOptions.from_params(params))
    write_outputs(result, out)
    return result
