"""The wheel installs into a fresh venv under the constraints file, and its console script works
from there (issue 29, packaging).

The venv is fresh (its own site-packages, its own `pie-mlops` script) but sees the project's
venv's packages through a path file, as `--system-site-packages` would, so nothing is
downloaded and the test takes seconds, not the minutes of a full install. pip still resolves
the wheel's dependency ranges against those installed distributions and the exact
constraints (`--no-index`: a requirement they do not satisfy fails the install), and
pie_mlops itself is imported from the wheel, not from the source tree.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import pandas as pd

from compare_fixture import make_study
from conftest import ROOT


def _run(cmd: list, cwd: Path, env: dict) -> subprocess.CompletedProcess:
    proc = subprocess.run([str(c) for c in cmd], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f"{' '.join(map(str, cmd))} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return proc


def test_wheel_installs_into_a_fresh_venv_with_the_constraints(tmp_path: Path):
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    # Built from a copy of what the wheel needs: setuptools writes build/ and egg-info beside it.
    src, dist = tmp_path / "src", tmp_path / "dist"
    shutil.copytree(ROOT / "pie_mlops", src / "pie_mlops", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, src / name)
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", dist, src],
         tmp_path, env)
    wheel = next(dist.glob("pie_mlops-*.whl"))

    fresh = tmp_path / "venv"
    venv.EnvBuilder(with_pip=False).create(fresh)
    py = fresh / "bin" / "python"
    site = Path(_run([py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], tmp_path, env)
                .stdout.strip())
    (site / "shared-venv.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    _run([py, "-m", "pip", "install", "--no-index", "-q", "-c", ROOT / "requirements" / "constraints.txt",
          wheel], tmp_path, env)

    # Imported from the wheel in the fresh venv, templates included.
    where = _run([py, "-c", "import pie_mlops, pathlib; p = pathlib.Path(pie_mlops.__file__).parent; "
                  "print(p); print(sorted(x.name for x in (p / 'report' / 'templates').glob('*.j2')))"],
                 tmp_path, env).stdout.splitlines()
    assert Path(where[0]).is_relative_to(fresh), where
    assert "data_check.html.j2" in where[1] and "gx_index.html.j2" in where[1]
    # The MLflow plugin (runs in the project's experiment; serve finds uvicorn) comes with the wheel.
    plugin = _run([py, "-c", "from importlib.metadata import distribution as d; p = d('pie-mlops'); "
                   "print(p.locate_file('')); print([e.value for e in p.entry_points if e.group == "
                   "'mlflow.default_experiment_provider'])"], tmp_path, env).stdout.splitlines()
    assert Path(plugin[0]).is_relative_to(fresh) and "pie_mlops.tracking.plugin:ProjectExperiment" in plugin[1]

    script = fresh / "bin" / "pie-mlops"
    assert "Usage: " in _run([script, "--help"], tmp_path, env).stdout

    _, preds = make_study(tmp_path / "study", seeds=3)
    out = tmp_path / "out"
    _run([script, "compare", "--predictions", preds, "--out", out, "--min-seeds", "3"], tmp_path, env)
    pies = pd.read_parquet(out / "pies.parquet")
    assert set(pies["group"]) == {"magnitude-os@0.50", "random-os@0.90"} and pies["is_pie"].any()
    assert (out / "summary.json").is_file()
