"""No import cycle inside pie_mlops (issue 28): a module never needs, even lazily, a module that
needs it back. Read from the sources (ast), so nothing is imported.

Counted: every `import` and `from ... import` anywhere in a module, inside functions too (a lazy
import only hides a cycle until the day it runs first). An edge goes to the module named (and to
`pkg.name` when `from pkg import name` names a submodule), not to the parent packages Python also
runs: those run before their child, so `pkg/__init__.py` importing `pkg.sub` while `pkg.sub` imports
`pkg.other` is no loop, but `pkg.sub` importing names from `pkg` itself is one. A package that
imports its parts on first use (tracking/, its `LAZY` table) leads to the part a name comes from.
"""

import ast
from pathlib import Path

from pie_mlops.util.fingerprint import lazy_parts

ROOT = Path(__file__).resolve().parents[2]


def _modules(package_dir: Path) -> dict[str, Path]:
    out = {}
    for path in sorted(package_dir.rglob("*.py")):
        parts = list(path.relative_to(package_dir.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def import_graph(package_dir: Path) -> dict[str, set[str]]:
    """module -> the modules of the package it imports, anywhere in its source."""
    modules = _modules(package_dir)
    graph = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        found = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
            if isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = package.split(".")
                    base = ".".join(parts[: len(parts) - node.level + 1] + ([base] if base else []))
                subs = {f"{base}.{alias.name}" for alias in node.names} & modules.keys()
                found.update(subs or {base})
                found.update(lazy_parts(base)[a.name] for a in node.names if a.name in lazy_parts(base))
        graph[name] = (found & modules.keys()) - {name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    index, low, stack, on_stack, out = {}, {}, [], set(), []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_pie_mlops_has_no_import_cycle():
    graph = import_graph(ROOT / "pie_mlops")
    assert len(graph) > 100 and "pie_mlops.stages.train" in graph
    found = cycles(graph)
    detail = [" <-> ".join(c) + ": " + "; ".join(f"{a} -> {b}" for a in c for b in sorted(graph[a] & set(c)))
              for c in found]
    assert not found, "import cycles:\n" + "\n".join(detail)


def test_a_lazy_or_package_cycle_is_found(tmp_path):
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("from pkg.sub import a\n")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "sub" / "a.py").write_text("def f():\n    from pkg.sub.b import g\n")  # lazy
    (pkg / "sub" / "b.py").write_text("from . import a\n")  # relative, back
    (pkg / "c.py").write_text("from pkg import d\n")
    (pkg / "d.py").write_text("import pkg.e\n")
    (pkg / "e.py").write_text("from pkg import VALUE\n")  # the package itself, which imports sub.a only
    graph = import_graph(pkg)
    assert cycles(graph) == [["pkg.sub.a", "pkg.sub.b"]]
    (pkg / "sub" / "a.py").write_text("from pkg import c\n")
    assert cycles(import_graph(pkg)) == [["pkg", "pkg.c", "pkg.d", "pkg.e", "pkg.sub.a"]]
