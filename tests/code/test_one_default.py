"""One source per default: a literal default in pie_mlops/ for a key of the params schema
(pie_mlops/config/schema.py) is a second default, which drifts (issue 28 found six that had:
n_boot 200 vs 100, TrainConfig.epochs 3 vs 2, the BiLSTM's max_length 256 vs 128, ...).

Scanned (AST, every module but the schema): `.get("<key>", <literal>)`, and keyword defaults of
functions and class fields (dataclasses) named like a key. A default taken from the schema by
name (`Train().epochs`, `OURS["optimizer"]`, `FILE_MODE`) is not a literal and passes. What is
left is listed below, each with why it is not the plan's key; a new one fails here.
"""

from __future__ import annotations

import ast
from pathlib import Path

from pie_mlops.config.schema import SECTIONS, ClaimsRules

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "pie_mlops"
KEYS = {k for model in (*SECTIONS.values(), ClaimsRules) for k in model.model_fields}
# Names that are keys but mean something else wherever they are defaulted in code.
GENERIC = {
    "seed": "an RNG seed argument: every pipeline call passes its section's seed",
}
PLACEHOLDERS = ("?", "")  # what a report shows for a missing field: not a default value (nor is an empty list)
# (module, name): why a literal default there is not a second default of the plan's key.
ALLOWED = {
    **{("analysis", k): "pure statistics library: compare passes the plan's value to every call "
                        "(StatOptions, analyse); several are other quantities of the same name"
       for k in ("n_boot", "n_perm", "n_splits", "tie_rule")},
    ("compare/pies.py", "tie_rule"): "pure core's own default; the study and file mode pass theirs",
    ("compare/pies.py", "min_seeds"): "pure core's own default; the study and file mode pass theirs",
    ("data/build.py", "validation_frac"): "dataset builder library; materialize passes its section's",
    ("data/build.py", "test_frac"): "dataset builder library; materialize passes its section's",
    ("data/prediction_quality.py", "sample_ids"): "GX library; check passes check.sample_ids",
    ("jobs/context.py", "lanes"): "the resolved lane count (worker.lanes None means: decide)",
    ("jobs/seed_training.py", "batch_size"): "a prediction batch, not train.batch_size",
    ("jobs/frames.py", "batch_size"): "a prediction batch, not train.batch_size",
    ("jobs/training.py", "batch_size"): "prediction and impact-gradient batches, not train.batch_size",
    ("models/predict.py", "batch_size"): "a prediction batch, not train.batch_size",
    ("models/bilstm.py", "dropout"): "the architecture's own default, which train.dropout None selects",
    ("pruning/masks.py", "scope"): "the threshold scope (prune.threshold's values), not prune.scope",
    ("pruning/schedules.py", "scope"): "the threshold scope (prune.threshold's values), not prune.scope",
    ("pruning/schedules.py", "epochs_per_step"): "a resolved E (an int), not prune.epochs_per_step ('dense')",
    ("pruning/schedules.py", "steps"): "pure schedule library; prune passes prune.steps",
    ("pruning/schedules.py", "prunable"): "pure schedule library; the runner passes the plan's option",
    ("pruning/schedules.py", "clip_grads"): "pure schedule library; the runner passes the plan's option",
    ("pruning/prunable.py", "prunable"): "pure library; the runner passes the plan's option",
    ("pruning/plan.py", "scope"): "a group's name from explicit parts; plan_jobs passes them",
    ("pruning/plan.py", "threshold"): "a group's name from explicit parts; plan_jobs passes them",
    ("report/build.py", "claims"): "a flag (render the claims table), not compare.claims",
    ("tracking/lineage.py", "data_dir"): "tracking library; every stage passes its section's data_dir",
    ("tracking/provenance.py", "data_dir"): "data.dvc's folder for provenance; stages pass their data_dir",
}


def _allowed(rel: str, name: str) -> bool:
    return name in GENERIC or any((rel == where or rel.startswith(where + "/")) and name == key
                                  for where, key in ALLOWED)


def _literal(node) -> bool:
    if isinstance(node, ast.Constant):
        return node.value is not None and node.value not in PLACEHOLDERS
    if isinstance(node, (ast.List, ast.Tuple, ast.Set)):
        return bool(node.elts)  # an empty one stands for "none", not a value
    return isinstance(node, ast.Dict) and bool(node.keys)


def _defaults(tree: ast.AST):
    """(line, name, default node) of every `.get(key, default)`, keyword default and class field."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "get" \
                and len(node.args) == 2 and isinstance(node.args[0], ast.Constant):
            yield node.lineno, node.args[0].value, node.args[1]
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            a = node.args
            positional = a.posonlyargs + a.args
            pairs = list(zip(positional[len(positional) - len(a.defaults):], a.defaults))
            pairs += [(arg, d) for arg, d in zip(a.kwonlyargs, a.kw_defaults) if d is not None]
            yield from ((node.lineno, arg.arg, d) for arg, d in pairs)
        elif isinstance(node, ast.ClassDef):
            yield from ((st.lineno, st.target.id, st.value) for st in node.body
                        if isinstance(st, ast.AnnAssign) and isinstance(st.target, ast.Name) and st.value is not None)


def second_defaults() -> list[str]:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE).as_posix()
        if rel == "config/schema.py":  # the one source
            continue
        for line, name, default in _defaults(ast.parse(path.read_text(encoding="utf-8"))):
            if name in KEYS and _literal(default) and not _allowed(rel, name):
                found.append(f"pie_mlops/{rel}:{line}: {name} = {ast.unparse(default)}")
    return found


def test_no_literal_default_duplicates_the_schema():
    found = second_defaults()
    assert not found, ("a literal default for a params key (take it from pie_mlops/config/schema.py, or "
                       "list it in ALLOWED with why it is another quantity):\n" + "\n".join(found))


def test_the_allowlist_holds_only_what_is_still_there():
    """An entry whose default is gone (or moved) is removed, so the list shrinks as code is fixed."""
    seen = set()
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE).as_posix()
        for _, name, default in _defaults(ast.parse(path.read_text(encoding="utf-8"))):
            if name in KEYS and _literal(default):
                seen |= {(where, key) for where, key in ALLOWED
                         if (rel == where or rel.startswith(where + "/")) and name == key}
    assert set(ALLOWED) <= seen, sorted(set(ALLOWED) - seen)


def test_the_scan_finds_a_second_default(tmp_path):
    tree = ast.parse("def f(params, epochs=3):\n    return params.get('n_boot', 200)\n")
    names = {(name, ast.unparse(d)) for _, name, d in _defaults(tree)}
    assert {("epochs", "3"), ("n_boot", "200")} <= names
