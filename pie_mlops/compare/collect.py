"""The comparison's inputs from MLflow: every finished dense and pruned run of one study.

Runs are found by their tags (docs/design.md §3), the latest per (group, seed), and their
prediction artifacts (`predictions/predictions.parquet`, every split in one file; runs logged
before 2026-12-07 have `predictions/<split>.parquet`) are downloaded and stacked into one long frame
in the predictions contract. The data_md5 tag of each run comes along, so the
great-expectations gate can refuse runs from another data version.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import pandas as pd
from tqdm.auto import tqdm

from pie_mlops.util.errors import PieError
from pie_mlops.util.log import progress_disabled


def collect_predictions(dataset: str, arch: str, split: str,
                        progress: bool = True) -> tuple[pd.DataFrame, dict[tuple[str, int], str], list[dict]]:
    """(long predictions frame of `split`, data_md5 per (group, seed), the runs) from MLflow."""
    frames, md5s, runs = collect_splits(dataset, arch, split, (), progress)
    return frames[split], md5s, runs


def collect_splits(dataset: str, arch: str, split: str, optional: tuple[str, ...] = ("train", "train@epoch1"),
                   progress: bool = True, keep: set[tuple[str, int]] | None = None,
                   ) -> tuple[dict[str, pd.DataFrame], dict[tuple[str, int], str], list[dict]]:
    """Like `collect_predictions`, downloading each run's artifacts once for several splits.

    Every run must have `split`; the `optional` splits (train-split predictions for the EL2N
    analysis) are stacked from the runs that have them, and left out when none has. With
    `keep`, only runs whose (group, seed) is in it are collected."""
    from pie_mlops import tracking
    from pie_mlops.util.credentials import redact_url
    from pie_mlops.compare.predictions import read_split_frames

    runs = tracking.model_runs(dataset, arch)
    if keep is not None:
        runs = [r for r in runs if (r["group"], int(r["seed"])) in keep]
    if not runs:
        raise PieError(f"no finished runs for dataset {dataset!r} and arch {arch!r} in {redact_url(tracking.tracking_uri())}; "
                       f"run `pie-mlops train` and `pie-mlops prune` first, or pass --predictions DIR")
    if not any(r["group"] == "dense" for r in runs):
        raise PieError(f"no dense runs for {dataset!r}/{arch!r} in {redact_url(tracking.tracking_uri())}; run `pie-mlops train`")
    found: dict[str, list[pd.DataFrame]] = {s: [] for s in (split, *optional)}
    md5s = {}
    with tempfile.TemporaryDirectory(prefix="pie-collect-") as tmp:
        for run in tqdm(runs, desc=f"collect {dataset}/{arch} predictions", disable=progress_disabled(progress)):
            dst = Path(tmp) / run["run_id"]
            try:
                folder = tracking.download_run_artifacts(run["run_id"], "predictions", dst)
            except Exception as exc:  # a run whose artifacts were deleted: say which
                raise PieError(f"run {run['run_id']} ({run['group']} s{run['seed']}): cannot download its "
                               f"predictions ({str(exc).splitlines()[0]})") from None
            frames = read_split_frames(folder)  # one bundle file, or (older runs) one file per split
            if split not in frames:
                raise PieError(f"run {run['run_id']} ({run['group']} s{run['seed']}) has no {split} predictions")
            for name in found:
                if name in frames:
                    found[name].append(frames[name])
            md5s[(run["group"], run["seed"])] = run["data_md5"] or "missing"
    frames = {name: pd.concat(parts, ignore_index=True) for name, parts in found.items() if parts}
    return frames, md5s, runs


def local_models(root: str | Path) -> set[tuple[str, int]] | None:
    """The (group, seed) pairs with predictions under root (<root>/dense/s<seed>/,
    <root>/dense/dense-long/s<seed>/ and <root>/pruned/<group>/s<seed>/), i.e. what train and prune currently produce; None if
    root does not exist."""
    root = Path(root)
    if not root.is_dir():
        return None
    dirs = [*root.glob("dense/s*"), *root.glob("dense/dense-long/s*"), *root.glob("pruned/*/s*")]
    return {(d.parent.name, int(d.name[1:])) for d in dirs if d.is_dir() and d.name[1:].isdigit() and any(d.glob("*.parquet"))}
