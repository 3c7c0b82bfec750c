"""Write each dvc.yaml stage's code deps as its import closure (docs/design.md §2).

    .venv/bin/python scripts/dvc_deps.py          # say which stages' deps differ (exit 1 if any)
    .venv/bin/python scripts/dvc_deps.py --write  # rewrite them in dvc.yaml

A stage's code is what its `pie-mlops <command>` function imports, transitively, lazy imports
included (pie_mlops/util/fingerprint.py): a whole package is listed as its folder, the rest file by
file, with the report templates those modules name. Nothing else in dvc.yaml changes. tests/code/test_code_identity.py fails when they drift.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TEMPLATES = "pie_mlops/report/templates"
sys.path.insert(0, str(ROOT))

from pie_mlops.util.fingerprint import command_imports, imported_modules, module_file  # noqa: E402


def command_modules(command: str) -> set[str]:
    """Our modules the CLI function `command` imports, and theirs."""
    return {m for d in command_imports(command) for m in imported_modules(d)}


def code_deps(command: str) -> list[str]:
    """The closure's files, a package folder where every module in it is in the closure."""
    files = {module_file(m).relative_to(ROOT).as_posix() for m in command_modules(command)}
    folders = sorted({str(Path(f).parent) for f in files if f.count("/") > 1})
    whole = [d for d in folders if {p.relative_to(ROOT).as_posix() for p in (ROOT / d).rglob("*.py")} <= files]
    whole = [d for d in whole if not any(d.startswith(o + "/") for o in whole)]
    rest = [f for f in files if not any(f.startswith(d + "/") for d in whole)]
    named = {m for f in files for m in re.findall(r"[\"']([\w-]+\.html\.j2)[\"']", (ROOT / f).read_text())}
    rest += [f"{TEMPLATES}/{t}" for t in named if not any(TEMPLATES.startswith(d + "/") for d in whole)]
    return sorted(rest + whole, key=lambda p: (not (p.endswith(".py") and p.count("/") == 1), p))


def main(write: bool) -> int:
    text = (ROOT / "dvc.yaml").read_text()
    out, stale = [], []
    # one stage at a time: its `cmd: pie-mlops <command>` line, then its deps block
    blocks = re.split(r"(?m)^(?=  [a-z_]+:\n)", text)
    for block in blocks:
        cmd = re.search(r"cmd: pie-mlops (\w+)", block)
        deps = re.search(r"(?m)^( +)deps:\n((?:\1  - .*\n)+)", block)
        if not cmd or not deps:
            out.append(block)
            continue
        indent = deps.group(1) + "  - "
        lines = [ln[len(indent):] for ln in deps.group(2).splitlines()]
        wanted = [ln for ln in lines if not ln.startswith("pie_mlops")] + code_deps(cmd.group(1))
        if wanted != lines:
            stale.append(cmd.group(1))
        block = block[:deps.start(2)] + "".join(indent + ln + "\n" for ln in wanted) + block[deps.end(2):]
        out.append(block)
    if write:
        (ROOT / "dvc.yaml").write_text("".join(out))
    print(("rewrote" if write else "stale:") + " " + (", ".join(stale) or "nothing"))
    return 1 if stale and not write else 0


if __name__ == "__main__":
    sys.exit(main("--write" in sys.argv[1:]))
