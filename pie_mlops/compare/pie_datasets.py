"""Each pruned group's PIEs as a dataset (`compare.export_pies`): `<data_dir>/<dataset>__pies_<group>__<arch>/`
in the dataset contract (docs/design.md §3), the PIEs as its test split, so any future model can be
evaluated on them. `.dvcignore` keeps them out of data.dvc's hash, so the data version stays."""

from __future__ import annotations

from pathlib import Path

import pandas as pd


def export_name(dataset: str, group: str, arch: str | None = None) -> str:
    """`<dataset>__pies_<group>` (`__<arch>` added when given), made filesystem-friendly:
    `rotten_tomatoes__pies_magnitude-os-0_50__bert`."""
    name = f"{dataset}__pies_{group.replace('@', '-').replace('.', '_')}"
    return f"{name}__{arch}" if arch else name


def export_pies(pies_frame: pd.DataFrame, texts: pd.DataFrame, meta: dict, dataset: str, arch: str, split: str,
                root: Path) -> None:
    """Each group's PIEs as a dataset in the dataset contract: the PIEs form its test split
    (train and validation are empty), so any future model can be evaluated on them."""
    from pie_mlops.data.contract import write_dataset

    empty = texts.iloc[0:0]
    for group, rows in pies_frame[pies_frame["is_pie"]].groupby("group"):
        subset = texts[texts["example_id"].isin(set(rows["example_id"]))].reset_index(drop=True)
        m = {**{k: meta[k] for k in ("task", "label_names", "license", "synthetic")},
             "name": export_name(dataset, group, arch),
             "source": f"PIEs of {group} ({arch}) on {dataset}/{split} (pie-mlops compare)", "parent": dataset,
             "group": group, "arch": arch}
        write_dataset(root, m["name"], {"train": empty, "validation": empty, "test": subset}, m)
