"""A small but real comparison: a materialized synthetic dataset and synthetic per-model logits
written in the predictions contract, so the compare stage runs end to end in seconds."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pie_mlops.data.contract import read_meta, read_split
from pie_mlops.compare.predictions import predictions_frame, write_predictions
from pie_mlops.stages.materialize import materialize
from plans import plan

# Per group: how often a model flips the gold label (dense rarely, random-os@0.90 often).
NOISE = {"dense": 0.1, "magnitude-os@0.50": 0.15, "random-os@0.90": 0.45}


def _logits(labels: np.ndarray, n_classes: int, flip: float, rng, multi: bool) -> np.ndarray:
    if multi:
        target = np.where(rng.random(labels.shape) < flip, 1 - labels, labels)
        return (np.where(target == 1, 2.0, -2.0) + rng.normal(0, 0.3, labels.shape)).astype(np.float32)
    pred = np.where(rng.random(len(labels)) < flip, rng.integers(0, n_classes, len(labels)), labels)
    z = rng.normal(0, 0.3, (len(labels), n_classes))
    z[np.arange(len(labels)), pred] += 2.0
    return z.astype(np.float32)


def make_study(root: Path, dataset: str = "synthetic_nli", seeds: int = 4, text_hook=None,
               extra: dict | None = None) -> tuple[Path, Path]:
    """(data_dir, predictions_dir) under `root`. `text_hook(frame)` may edit the test texts;
    `extra`: more groups and their flip rates (e.g. a quantized group) beside NOISE's."""
    data_dir = root / "data"
    materialize(plan("materialize", data_dir=str(data_dir)), [dataset], progress=False)
    if text_hook is not None:
        path = data_dir / dataset / "test.parquet"
        frame = read_split(data_dir / dataset, "test")
        text_hook(frame)
        frame.to_parquet(path, index=False)
    meta = read_meta(data_dir / dataset)
    multi = meta["task"] == "multi_label"
    n_classes = len(meta["label_names"])
    preds = root / "predictions"
    for split in ("test", "train", "train@epoch1"):
        df = read_split(data_dir / dataset, "train" if split.startswith("train") else split)
        labels = np.stack(df["labels"].to_numpy()).astype(np.int64) if multi else df["label"].to_numpy()
        for group, flip in {**NOISE, **(extra or {})}.items():
            if split == "train@epoch1" and group != "dense":
                continue  # EL2N snapshots come from dense models only
            for seed in range(seeds):
                rng = np.random.default_rng([seed, len(group), len(split)])
                logits = _logits(labels, n_classes, flip * (2 if split == "train@epoch1" else 1), rng, multi)
                frame = predictions_frame(df, logits, split=split, group=group, seed=seed, task=meta["task"])
                write_predictions(frame, preds / group / f"s{seed}" / f"{split}.parquet")
    return data_dir, preds
