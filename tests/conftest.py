"""Shared fixtures. Offline and telemetry-free, as DESIGN.md §4 asks, whatever the caller set."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

OFFLINE_ENV = {
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "DO_NOT_TRACK": "true",
    "DVC_NO_ANALYTICS": "1",
    "HF_HUB_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "HF_DATASETS_OFFLINE": "1",
    "GX_ANALYTICS_ENABLED": "false",
}
os.environ.update(OFFLINE_ENV)

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
# Files a fresh clone carries that the pipeline needs (the tiny repo copies them).
PROJECT_FILES = ["dvc.yaml", "data.dvc", ".dvcignore", ".dvc/config", ".dvc/.gitignore", "params.yaml"]

# The tiny profile: the two small synthetic sets, so a whole pipeline runs in seconds.
TINY_PARAMS = {
    "materialize": {"datasets": ["synthetic_nli", "synthetic_topics"], "data_dir": "data",
                    "validation_frac": 0.1, "test_frac": 0.2, "seed": 0},
    "check": {"report_dir": "reports/data_checks", "min_chars": 1, "max_chars": 30000,
              "min_class_share": 0.02, "sample_ids": 5},
}


def run(cmd: list[str], cwd: Path, check: bool = True) -> subprocess.CompletedProcess:
    env = dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
    return proc


@pytest.fixture
def project_repo(tmp_path: Path) -> Path:
    """A real git repo holding the project's pipeline files, as a fresh clone would."""
    repo = tmp_path / "repo"
    for rel in PROJECT_FILES:
        (repo / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / rel, repo / rel)
    # dvc.yaml lists the stage code as dependencies, so the repo carries it too.
    shutil.copytree(ROOT / "pie_mlops", repo / "pie_mlops", ignore=shutil.ignore_patterns("__pycache__"))
    (repo / ".gitignore").write_text("/data\n/reports\n")
    run(["git", "init", "-q"], repo)
    run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "add", "-A"], repo)
    run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "init"], repo)
    return repo


@pytest.fixture
def tiny_repo(project_repo: Path) -> Path:
    """`project_repo` switched to the tiny profile (profiles/tiny in spirit: two small sets)."""
    (project_repo / "params.yaml").write_text(yaml.safe_dump(TINY_PARAMS, sort_keys=False))
    return project_repo
