"""Shared fixtures. Offline and telemetry-free, as docs/design.md §4 asks, whatever the caller set."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

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

def run(cmd: list[str], cwd: Path, check: bool = True) -> subprocess.CompletedProcess:
    env = dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
    return proc


@pytest.fixture
def project_repo(tmp_path: Path) -> Path:
    """A real git repo holding the project's files, as a fresh clone would: every file git
    tracks (or would track), from the working tree, committed, with no DVC cache."""
    return clone_project(tmp_path / "repo")


def clone_project(repo: Path, profile: str | None = None) -> Path:
    """`project_repo` at `repo`; with `profile`, that profile's effective params are its params.yaml."""
    files = run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"], ROOT).stdout
    for rel in filter(None, files.split("\0")):
        if (ROOT / rel).is_file():
            (repo / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / rel, repo / rel)
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t"]
    if profile:
        use_profile(repo, profile)
    run(["git", "init", "-q"], repo)
    run([*git, "add", "-A"], repo)
    run([*git, "commit", "-qm", "fresh clone"], repo)
    return repo


@pytest.fixture
def tiny_repo(project_repo: Path) -> Path:
    """`project_repo` switched to the tiny profile (profiles/tiny.yaml)."""
    use_profile(project_repo, "tiny")
    return project_repo


def use_profile(repo: Path, profile: str) -> None:
    """Write the profile's effective params (defaults + overlay) as the repo's params.yaml, the
    way a user runs a profile through DVC: `pie-mlops --profile NAME params > params.yaml`."""
    from pie_mlops.config.params import render
    from pie_mlops.config.plans import load_all

    (repo / "params.yaml").write_text(render(load_all(repo / "profiles" / f"{profile}.yaml")), encoding="utf-8")


# Test tiers by directory (make test-fast runs `-m unit`): tests/code is pure or small-file
# code (seconds), tests/model trains and prunes tiny models, tests/data drives real DVC, GX,
# MLflow servers, PostgreSQL and Chromium.
_TIERS = {"code": "unit", "model": "integration", "data": "e2e"}


def pytest_collection_modifyitems(config, items):
    for item in items:
        tier = _TIERS.get(Path(str(item.fspath)).parent.name)
        if tier:
            item.add_marker(getattr(pytest.mark, tier))
