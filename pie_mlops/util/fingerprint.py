"""Which of our modules a stage runs, and a fingerprint of the code that determines its models.

Skip-on-rerun must not restore a model trained by older code: the fingerprint (package
version plus a hash of the sources) is an identity tag, so a fix in training or pruning
makes the next run train again. The imports are read from the sources (ast, no import), lazy
ones inside functions included, transitively within pie_mlops. No MLflow, no state.
"""

from __future__ import annotations

import ast
import functools
import hashlib
from pathlib import Path

PACKAGE = "pie_mlops"
ROOT = Path(__file__).resolve().parents[1]  # the package directory
# Layers that log, schedule or report but never change a model's weights or predictions:
# a change there must not retrain the study (dvc.yaml still lists them, so DVC re-runs the
# stage, which then skips its finished models).
NOT_MODEL = ("pie_mlops.tracking", "pie_mlops.scale", "pie_mlops.util.errors", "pie_mlops.report", "pie_mlops.cli")


def module_file(name: str) -> Path | None:
    """The source file of one of our modules (a package's __init__.py), None if not ours.
    Found on disk, not by find_spec: that would import the parent packages (torch, seconds)."""
    if name != PACKAGE and not name.startswith(PACKAGE + "."):
        return None
    path = ROOT.joinpath(*name.split(".")[1:])
    for candidate in (path / "__init__.py", path.with_name(path.name + ".py")):
        if candidate.is_file():
            return candidate
    return None


@functools.lru_cache(maxsize=None)
def lazy_parts(package: str) -> dict[str, str]:
    """{name: module} of a package that imports its parts on first use (its `LAZY` table,
    e.g. pie_mlops/tracking/__init__.py); empty for any other module."""
    path = module_file(package)
    if path is None or path.name != "__init__.py":
        return {}
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "LAZY" for t in node.targets):
            return {k: f"{package}.{v}" for k, v in ast.literal_eval(node.value).items()}
    return {}


def _imports(name: str, path: Path) -> set[str]:
    """Modules of ours that `name` imports anywhere in its source (relative imports resolved).
    A lazy package's parts count where they are used: `from pkg import name` imports the module
    its table names, `import pkg` (or `from parent import pkg`) all of them."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
            found.update(m for alias in node.names for m in lazy_parts(alias.name).values())
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1] + ([base] if base else []))
            found.add(base)
            for alias in node.names:
                found.add(f"{base}.{alias.name}")  # `from pkg import submodule`
                found.update(lazy_parts(f"{base}.{alias.name}").values())  # `from pie_mlops import tracking`
                if alias.name in lazy_parts(base):
                    found.add(lazy_parts(base)[alias.name])
    # `import a.b.c` runs a and a.b too
    parents = {".".join(m.split(".")[:i]) for m in found for i in range(1, m.count(".") + 1)}
    return {m for m in found | parents if module_file(m) is not None}


def imported_modules(root: str) -> list[str]:
    """`root` and every module of ours it imports, transitively, sorted."""
    seen: set[str] = set()
    todo = [root, *(".".join(root.split(".")[:i]) for i in range(1, root.count(".") + 1))]  # its packages run too
    while todo:
        name = todo.pop()
        path = module_file(name)
        if name in seen or path is None:
            continue
        seen.add(name)
        todo.extend(_imports(name, path) - seen)
    return sorted(seen)


def command_imports(command: str) -> set[str]:
    """The pie_mlops modules the CLI function `command` imports directly (lazily, inside it)."""
    bodies = [n for f in sorted((ROOT / "cli").glob("*.py")) for n in ast.parse(f.read_text()).body]
    func = next(n for n in bodies if isinstance(n, ast.FunctionDef) and n.name == command)
    found = set()
    for node in ast.walk(func):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("pie_mlops"):
            found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names if module_file(f"{node.module}.{a.name}"))
    return found


def source_files(root: str) -> list[Path]:
    """The source files of `imported_modules(root)`."""
    return [module_file(m) for m in imported_modules(root)]


@functools.lru_cache(maxsize=None)  # per process: the code that runs is the code imported at start
def code_fingerprint(stage_module: str) -> str:
    """`<version>-<sha256[:12]>` over the sources of the modules that determine the stage's
    models (its imports less NOT_MODEL), by module name, so it is the same on any machine."""
    from pie_mlops import __version__

    digest = hashlib.sha256()
    for name in imported_modules(stage_module):
        if any(name == layer or name.startswith(layer + ".") for layer in NOT_MODEL):
            continue
        digest.update(name.encode() + b"\0" + module_file(name).read_bytes() + b"\0")
    return f"{__version__}-{digest.hexdigest()[:12]}"
