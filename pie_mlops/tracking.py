"""All MLflow calls live here (DESIGN.md §2). mlflow is imported lazily: it is slow to import."""

from __future__ import annotations

import os
import sys
from pathlib import Path


def active_run_id() -> str | None:
    """The id of the MLflow run this process works for, or None.

    That is the run started in this process, or the one `mlflow run` made for us (it
    passes MLFLOW_RUN_ID to the entry point's command). Otherwise a run can only be
    active once mlflow has been imported here, so when it is not imported yet there is
    none, and importing it just to learn that would cost seconds.
    """
    if os.environ.get("MLFLOW_RUN_ID"):
        return os.environ["MLFLOW_RUN_ID"]
    if "mlflow" not in sys.modules:
        return None
    import mlflow

    run = mlflow.active_run()
    return run.info.run_id if run is not None else None


def log_artifacts_if_active(paths: list[Path], artifact_path: str) -> bool:
    """Log files and directories under `artifact_path` of the active run; False if none is active.

    A directory keeps its own name below `artifact_path` (data_docs/ stays data_docs/).
    """
    run_id = active_run_id()
    if run_id is None:
        return False
    from mlflow import MlflowClient

    client = MlflowClient()  # by run id: works for a run started here or by `mlflow run`
    for path in map(Path, paths):
        if path.is_dir():
            client.log_artifacts(run_id, str(path), artifact_path=f"{artifact_path}/{path.name}")
        else:
            client.log_artifact(run_id, str(path), artifact_path=artifact_path)
    return True
