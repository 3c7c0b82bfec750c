"""A computed model's per-example prediction frames (the contract of docs/design.md §3,
compare/predictions.py): the splits it predicts and its early-training snapshots."""

from __future__ import annotations

import numpy as np
import pandas as pd

from pie_mlops.compare.predictions import predictions_frame
from pie_mlops.models.predict import FP32, predict_logits


def predict_split(model, df: pd.DataFrame, *, split: str, group: str, seed: int,
                  threshold: float | None = None, batch_size: int = 128, device="auto",
                  autocast: str | None = FP32) -> pd.DataFrame:
    """Predict `df` and return the predictions contract frame (docs/design.md §3)."""
    logits = predict_logits(model, df, batch_size, device, autocast=autocast)
    return predictions_frame(df, logits, split=split, group=group, seed=seed, task=model.task, threshold=threshold)


def predict_frames(model, splits: dict, names, *, group: str, seed: int, threshold: float | None = None,
                   batch_size: int = 128, val_logits: np.ndarray | None = None,
                   autocast: str | None = FP32) -> dict[str, pd.DataFrame]:
    """The predictions frames of the splits `names`; validation from `val_logits` when training
    left them (TrainResult.val_logits: the final weights' pass), else predicted."""
    return {split: predictions_frame(splits[split], val_logits, split=split, group=group, seed=seed, task=model.task,
                                     threshold=threshold)
            if split == "validation" and val_logits is not None else
            predict_split(model, splits[split], split=split, group=group, seed=seed, threshold=threshold,
                          batch_size=batch_size, autocast=autocast)
            for split in names}


def snapshot_frames(result, train_df: pd.DataFrame, *, group: str, seed: int,
                    task: str) -> dict[str, pd.DataFrame]:
    """The early-training train-split snapshots (a training.TrainResult's) as contract frames, keyed by
    split name."""
    return {split: predictions_frame(train_df, logits, split=split, group=group, seed=seed, task=task,
                                     threshold=result.threshold)
            for split, logits in result.snapshots.items()}
