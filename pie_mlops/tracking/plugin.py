"""pie-mlops' MLflow plugin (entry point `mlflow.default_experiment_provider`, pyproject.toml).

MLflow loads it in every process that imports mlflow from this environment, so it does two
small things and nothing else:

- In the project directory (an MLproject named pie-mlops), a run that names no experiment,
  `mlflow run . -e main` included, goes to the project's experiment, not to `Default`
  (MLFLOW_EXPERIMENT_NAME / _ID, or --experiment-name, still win: MLflow asks them first).
- `mlflow models serve --env-manager local` starts its scoring server as `uvicorn` looked up
  on PATH, so `.venv/bin/mlflow models serve` failed with "uvicorn: not found" unless the
  venv was on PATH. When PATH has no uvicorn but this interpreter's bin directory has one,
  that directory is appended to PATH (after the user's entries, which still win).
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

PROJECT = "pie-mlops"  # MLproject's name:, and the default experiment (store.DEFAULT_EXPERIMENT)


def _serve_path() -> None:
    """Let MLflow's scoring-server command find the uvicorn installed beside this Python."""
    here = Path(sys.executable).parent
    if shutil.which("uvicorn") is None and (here / "uvicorn").is_file():
        os.environ["PATH"] = os.pathsep.join(p for p in (os.environ.get("PATH"), str(here)) if p)


_serve_path()


def _in_project(folder: Path) -> bool:
    mlproject = folder / "MLproject"
    try:
        return mlproject.is_file() and any(line.strip() == f"name: {PROJECT}"
                                           for line in mlproject.read_text(encoding="utf-8").splitlines())
    except OSError:
        return False


class ProjectExperiment:
    """MLflow's DefaultExperimentProvider interface (in_context, get_experiment_id)."""

    def in_context(self) -> bool:
        return _in_project(Path.cwd())

    def get_experiment_id(self) -> str:
        from mlflow import get_tracking_uri

        from pie_mlops.tracking.store import project_experiment

        return project_experiment(get_tracking_uri(), PROJECT)
