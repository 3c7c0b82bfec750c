"""Issue 17 items 3 and 4: the code fingerprint, dvc.yaml deps that cover every module a stage
imports, and a params file that is not there."""

import hashlib
import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from pie_mlops.util import fingerprint
from pie_mlops.util.fingerprint import code_fingerprint, command_imports, imported_modules, module_file
from pie_mlops.tracking import IDENTITY_TAGS

ROOT = Path(__file__).resolve().parents[2]


def test_dvc_deps_cover_every_module_a_stage_imports():
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    assert {"check", "tune", "train", "prune", "compare", "report"} <= set(stages)
    missing = {}
    for name, stage in stages.items():
        body = stage.get("do", stage)
        command = body["cmd"].split()[1]  # pie-mlops <command> ...
        deps = [d for d in body.get("deps", []) if d.startswith("pie_mlops")]
        modules = set()
        for module in command_imports(command):
            modules.update(imported_modules(module))
        assert f"pie_mlops.stages.{name}" in modules or name == "compare", (name, sorted(modules))
        files = {str(module_file(m).relative_to(ROOT)) for m in modules}
        uncovered = sorted(f for f in files if not any(f == d or f.startswith(d.rstrip("/") + "/") for d in deps))
        if uncovered:
            missing[name] = uncovered
    assert not missing, f"dvc.yaml deps miss modules the stages import: {missing}"


def _dvc_deps_script():
    spec = importlib.util.spec_from_file_location("dvc_deps", ROOT / "scripts" / "dvc_deps.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_dvc_deps_are_exactly_each_stages_import_closure(capsys):
    assert _dvc_deps_script().main(write=False) == 0, capsys.readouterr().out  # scripts/dvc_deps.py --write


def test_a_model_change_leaves_every_dep_of_the_data_gate_as_it_was(tmp_path):
    """Issue 28: editing pie_mlops/models/ must not re-run `check` (the data-quality gate)."""
    check = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]["check"]["do"]
    deps = [d for d in check["deps"] if d.startswith("pie_mlops")]

    copy = tmp_path / "pie_mlops"  # edited in a copy: the sources under test stay untouched
    shutil.copytree(ROOT / "pie_mlops", copy, ignore=shutil.ignore_patterns("__pycache__"))

    def hashes():  # what DVC hashes for check's code deps
        found = {f for d in deps for f in ([tmp_path / d] if (tmp_path / d).is_file() else (tmp_path / d).rglob("*"))}
        return {f: hashlib.md5(f.read_bytes()).hexdigest() for f in found if f.is_file()}

    before = hashes()
    assert copy / "data" / "quality.py" in before and copy / "stages" / "check.py" in before
    for model_file in sorted((copy / "models").glob("*.py")):
        model_file.write_bytes(model_file.read_bytes() + b"\n# an edit\n")
        assert hashes() == before, f"editing models/{model_file.name} changes a dep of check"
    # and running it imports no model, training, pruning or model-tracking code
    code = ("import sys; import pie_mlops.stages.check, pie_mlops.config.params; from pie_mlops import tracking; "
            "tracking.log_artifacts_if_active; "
            "print([m for m in sys.modules if m.startswith(('pie_mlops.models', 'pie_mlops.jobs', "
            "'pie_mlops.pruning', 'pie_mlops.tracking.models', 'pie_mlops.tracking.loading'))])")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0 and proc.stdout.strip() == "[]", (proc.stdout, proc.stderr)


def test_imports_are_found_lazily_and_transitively():
    train = imported_modules("pie_mlops.stages.train")
    # lazy imports inside functions: training, the models, the tracking layer
    assert {"pie_mlops.jobs.training", "pie_mlops.models.bert", "pie_mlops.tracking.store"} <= set(train)
    prune = imported_modules("pie_mlops.stages.prune")
    assert {"pie_mlops.jobs.training", "pie_mlops.pruning.criteria", "pie_mlops.pruning.plan"} <= set(prune)
    assert "pie_mlops.stages.train" not in prune  # a stage never imports another stage's helpers


def test_code_fingerprint_follows_model_code_only(tmp_path, monkeypatch):
    assert "code_fingerprint" in IDENTITY_TAGS
    first = code_fingerprint("pie_mlops.stages.prune")
    assert first.startswith(__import__("pie_mlops").__version__ + "-")
    # A copy of the package with a fix in the pruning code gets a new fingerprint; a change in
    # the tracking layer (which never changes a model) does not.
    copy = tmp_path / "pie_mlops"
    subprocess.run(["cp", "-r", str(ROOT / "pie_mlops"), str(copy)], check=True)
    monkeypatch.setattr(fingerprint, "ROOT", copy)
    code_fingerprint.cache_clear()
    try:
        assert code_fingerprint("pie_mlops.stages.prune") == first
        (copy / "tracking" / "store.py").write_text((copy / "tracking" / "store.py").read_text() + "\n# note\n")
        assert code_fingerprint("pie_mlops.stages.prune") == first
        code_fingerprint.cache_clear()
        assert code_fingerprint("pie_mlops.stages.prune") == first
        crit = copy / "pruning" / "criteria.py"
        crit.write_text(crit.read_text() + "\n# a bug fix\n")
        code_fingerprint.cache_clear()
        changed = code_fingerprint("pie_mlops.stages.prune")
        assert changed != first
        assert code_fingerprint("pie_mlops.stages.train") != changed  # train does not run pruning code
    finally:
        code_fingerprint.cache_clear()


def test_missing_params_file_is_exit_2_with_one_line(tmp_path):
    exe = [sys.executable, "-m", "pie_mlops.cli"]
    env = {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}
    for args, line in [
        (["--params", "nope.yaml", "train"], "error: nope.yaml: no such params file"),
        (["--params", "nope.yaml", "prune"], "error: nope.yaml: no such params file"),
        (["train"], "error: params.yaml: no such params file"),  # outside the project root
        (["compare"], "error: params.yaml: no such params file"),  # MLflow mode
    ]:
        proc = subprocess.run([*exe, *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
        assert proc.returncode == 2, (args, proc.stderr)
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(line) and "--params FILE" in lines[0], lines
    # import, check and compare file mode still work outside the project on their defaults
    proc = subprocess.run([*exe, "compare", "--predictions", "nothing", "--out", "o"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=60)
    assert "params" not in proc.stderr, proc.stderr
