"""All MLflow calls live here (DESIGN.md §2). mlflow is imported lazily: it is slow to import."""

from __future__ import annotations

import sys
from pathlib import Path


def active_run_id() -> str | None:
    """The id of this process's active MLflow run, or None.

    A run can only be active once mlflow has been imported and a run started in this
    process, so when mlflow is not imported yet there is none, and importing it just
    to learn that would cost seconds.
    """
    if "mlflow" not in sys.modules:
        return None
    import mlflow

    run = mlflow.active_run()
    return run.info.run_id if run is not None else None


def log_artifacts_if_active(paths: list[Path], artifact_path: str) -> bool:
    """Log files and directories under `artifact_path` of the active run; False if none is active.

    A directory keeps its own name below `artifact_path` (data_docs/ stays data_docs/).
    """
    if active_run_id() is None:
        return False
    import mlflow

    for path in map(Path, paths):
        if path.is_dir():
            mlflow.log_artifacts(str(path), artifact_path=f"{artifact_path}/{path.name}")
        else:
            mlflow.log_artifact(str(path), artifact_path=artifact_path)
    return True
