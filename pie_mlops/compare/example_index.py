"""The example index of committed predictions (docs/design.md §3, "Committed predictions").

Every model's file of one split lists the same examples in the same order, and their ids
(random hex) were two thirds of the committed bytes. So an architecture's folder keeps each
split's ids and gold labels once, in `_examples/<split>.parquet` (`example_id`, and `label` or
`labels`), and a model file whose rows are that split's examples in that order drops those
columns. The reader puts them back from the nearest index in the file's folder or above it
(never above the folder it was given), so `compare --predictions DIR` reads both kinds of file.
A folder whose name starts with `_` holds no model files.
"""

from __future__ import annotations

from pathlib import Path

from pie_mlops.util.errors import PieError

INDEX_DIR = "_examples"
COLUMNS = ("example_id", "label", "labels")  # what the index holds for a split: ids, gold labels


def is_index_file(path: Path, root: Path) -> bool:
    """Whether `path` (under `root`) lies in a `_`-folder: an index, not a model's file."""
    return any(part.startswith("_") for part in path.relative_to(root).parts[:-1])


def _read(path: Path):
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except Exception as exc:
        raise PieError(f"{path}: not a readable Parquet file ({str(exc).splitlines()[0]})") from None
    names = set(table.column_names)
    if "example_id" not in names or not ({"label", "labels"} & names) or {"label", "labels"} <= names:
        raise PieError(f"{path}: not an example index: it needs example_id and one of label or labels")
    return table.combine_chunks()


def attach(path: Path, table, root: Path, file_split: str | None, split: str, cache: dict):
    """The file's table with its split's ids and labels put back (from the index), or None when
    the file holds another split than `split` (not read further). `file_split`: the one split
    of the file's rows, None when they hold several (which no index can describe)."""
    if file_split is None:
        raise PieError(f"{path}: no example_id column, and its rows are not all of one split: a file "
                       f"without ids takes them from its split's {INDEX_DIR}/<split>.parquet, so it holds one split")
    if file_split != split:
        return None
    folder = path.parent
    while True:
        index = folder / INDEX_DIR / f"{split}.parquet"
        if index.is_file():
            break
        if folder == root or root not in folder.parents:
            raise PieError(f"{path}: no example_id column and no {INDEX_DIR}/{split}.parquet in its folder or "
                           f"above it (up to {root}); commit the index with the model files")
        folder = folder.parent
    if index not in cache:
        cache[index] = _read(index)
    ids = cache[index]
    if ids.num_rows != table.num_rows:
        raise PieError(f"{path}: {table.num_rows} rows, but its index {index} lists {ids.num_rows} examples; "
                       f"a file without ids holds exactly its split's examples, in the index's order")
    for name in reversed([c for c in COLUMNS if c in ids.column_names]):
        table = table.add_column(0, ids.field(name), ids[name])
    return table


def strip(table, root: Path):
    """(the table without ids and labels, True) when its rows are its split's indexed examples
    in order; the index under `root` is written from this table when there is none yet. Else
    (the table as it is, False): a file in another order keeps its own ids."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from pie_mlops.util.atomic import atomic_file

    if "example_id" not in table.column_names:
        return table, False
    splits = pc.unique(table["split"]).to_pylist()
    if len(splits) != 1:
        return table, False
    index = root / INDEX_DIR / f"{splits[0]}.parquet"
    mine = table.select([c for c in COLUMNS if c in table.column_names]).combine_chunks()
    if not index.is_file():
        index.parent.mkdir(parents=True, exist_ok=True)
        with atomic_file(index) as tmp:
            pq.write_table(mine, tmp, compression="zstd", write_statistics=False)
    elif not _read(index).equals(mine):
        return table, False
    return table.drop_columns(mine.column_names), True
