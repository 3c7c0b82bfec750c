"""Prediction files of a skipped (already finished) model, fetched back from its MLflow run:
a fresh clone, or DVC having removed a stage's outputs before re-running it."""

from __future__ import annotations

from pathlib import Path

from pie_mlops.compare.predictions import publish_predictions, split_files
from pie_mlops.tracking.finished import download_run_artifacts


def restore_predictions(run_id: str, out_dir: Path) -> None:
    """A skipped model whose prediction files are gone (a fresh clone): fetch them from its run."""
    import tempfile

    if out_dir.is_dir() and any(out_dir.glob("*.parquet")):
        return
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".restore-", dir=out_dir.parent) as tmp:
        got = download_run_artifacts(run_id, "predictions", tmp)
        publish_predictions(split_files(got), out_dir)
