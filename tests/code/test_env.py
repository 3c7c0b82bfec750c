"""The environment files agree with each other, and every command documents itself."""

import re
import tomllib

import pytest
import yaml
from click.testing import CliRunner

from conftest import ROOT


def _pins(lines):
    return {re.split(r"[=<>\[]", line, maxsplit=1)[0].lower(): line.replace(" ", "") for line in lines}


def _constraints() -> dict[str, str]:
    """name -> exact version, from requirements/constraints.txt."""
    out = {}
    for line in (ROOT / "requirements" / "constraints.txt").read_text().splitlines():
        if line and not line.startswith("#"):
            name, version = line.split("==")
            out[name.lower().replace("_", "-")] = version
    return out


def _requirements(project: dict) -> list:
    from packaging.requirements import Requirement

    extras = [r for name in ("postgres", "auth", "hub") for r in project["optional-dependencies"][name]]
    return [Requirement(r) for r in [*project["dependencies"], *extras]]


def test_dependencies_are_ranges_that_the_constraints_satisfy():
    """pyproject states ranges (issue 29); the exact tested versions are the constraints file's."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pins = _constraints()
    for req in _requirements(project):
        spec = str(req.specifier)
        assert "==" not in spec and ">=" in spec, f"{req}: a range with a lower bound, not a pin"
        assert req.specifier.contains(pins[req.name.lower()], prereleases=True), f"{req} excludes {pins[req.name.lower()]}"
    # Lower bounds at the tested versions: the bound is the pinned version (torch without +cpu).
    for req in _requirements(project):
        lower = next(s.version for s in req.specifier if s.operator == ">=")
        assert lower == pins[req.name.lower()].split("+")[0], f"{req}: lower bound is not the tested version"
    # Unused ones dropped; the scale-out's drivers are extras, not everyone's dependencies.
    from packaging.requirements import Requirement

    core = {Requirement(r).name.lower() for r in project["dependencies"]}
    assert not core & {"scikit-learn", "python-dateutil", "psycopg", "flask-wtf", "datasets"}
    assert {"postgres", "auth", "hub"} <= set(project["optional-dependencies"])


def test_conda_yaml_mirrors_the_constraints():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    conda = yaml.safe_load((ROOT / "conda.yaml").read_text())
    assert any(str(d).startswith("python=3.11") for d in conda["dependencies"])
    pip = next(d["pip"] for d in conda["dependencies"] if isinstance(d, dict))
    # Beside the pins: the CPU torch index (no CUDA build) and the package itself, from the project dir.
    assert pip[0] == "--extra-index-url https://download.pytorch.org/whl/cpu" and pip[-1] == "."
    pins = _constraints()
    # flask-wtf is what mlflow[auth] adds; a conda pip list names it directly.
    wanted = {("flask-wtf" if r.name == "mlflow" and r.extras else r.name.lower()) for r in _requirements(project)}
    got = _pins(pip[1:-1])
    assert set(got) == wanted
    for name, line in got.items():
        assert line.endswith("==" + pins[name].split("+")[0]), f"conda.yaml {line}: constraints say {pins[name]}"
    assert "torch==2.13.0" in pip  # never a looser spec: that pulls a CUDA build
    # python_env.yaml (MLflow's virtualenv/uv format) carries the same list.
    python_env = yaml.safe_load((ROOT / "python_env.yaml").read_text())
    assert python_env["dependencies"] == pip and python_env["python"].startswith("3.11.")
    assert any(str(d) == f"python={python_env['python']}" for d in conda["dependencies"])


def test_assets_are_hash_pinned_and_match_the_installer():
    from pie_mlops.util.assets import ASSETS

    text = (ROOT / "requirements" / "assets.txt").read_text()
    names = re.findall(r"^([a-z0-9-]+)==\S+ \\\n\s+--hash=sha256:[0-9a-f]{64}$", text, flags=re.M)
    assert sorted(names) == sorted(ASSETS)


def test_mlproject_loads_with_mlflow():
    from mlflow.projects._project_spec import load_project

    project = load_project(str(ROOT))
    assert {"materialize", "check", "import", "main"} <= set(project._entry_points)
    cmd = project.get_entry_point("check").compute_command({"dataset": "rotten_tomatoes"}, "/tmp")
    assert cmd == "python -m pie_mlops.cli check rotten_tomatoes"


def _commands():
    from pie_mlops.cli import cli

    return [[]] + [[name] for name in cli.commands]


@pytest.mark.parametrize("args", _commands(), ids=lambda a: " ".join(a) or "top")
def test_every_command_has_help(args):
    from pie_mlops.cli import cli

    result = CliRunner().invoke(cli, [*args, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage: " in result.output and len(result.output.splitlines()) > 5


def test_cli_does_not_import_heavy_libraries_at_start():
    import subprocess
    import sys

    code = ("import sys, pie_mlops.cli; heavy = [m for m in ('pandas', 'torch', 'mlflow', 'great_expectations', "
            "'transformers', 'dvc') if m in sys.modules]; print(','.join(heavy))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == ""
