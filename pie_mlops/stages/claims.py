"""The claims step of `compare` (DESIGN.md §3): `<dataset dir>/claims.json` from every
architecture's comparison of one dataset.

The compare stage runs arch by arch (one DVC stage each), and claim (e) needs two of them,
so this step reads what is on disk: every `<out>/<arch>/` beside the one just written that
holds a summary.json and an analysis.json. Each compare run ends with it, so after the last
architecture the file covers them all; the `report` stage (which depends on the whole
reports/compare tree) then shows it. With an `out` template without `{arch}`, the one
directory is the only architecture and claims.json goes inside it.
"""

from __future__ import annotations

import json
from pathlib import Path

from pie_mlops.errors import PieError

ARCH_FIELD = "{arch}"


def claims_path(params: dict) -> Path:
    """Where claims.json goes for params' dataset: the parent of `out`'s per-arch directories."""
    out = str(params["out"])
    if ARCH_FIELD in out:
        return Path(out.split(ARCH_FIELD)[0].format(dataset=params["dataset"])) / "claims.json"
    return Path(out.format(dataset=params["dataset"])) / "claims.json"


def compare_dirs(params: dict) -> dict[str, Path]:
    """{arch: directory} of every finished comparison of params' dataset."""
    path = claims_path(params)
    if ARCH_FIELD not in str(params["out"]):
        candidates = [path.parent]
    else:
        candidates = sorted(p for p in path.parent.iterdir() if p.is_dir() and not p.name.startswith(".")) \
            if path.parent.is_dir() else []
    found = {}
    for d in candidates:
        if (d / "summary.json").is_file() and (d / "analysis.json").is_file():
            found[_arch_of(d)] = d
    return found


def _arch_of(d: Path) -> str:
    try:
        return str(json.loads((d / "analysis.json").read_text(encoding="utf-8"))["meta"]["arch"])
    except (OSError, ValueError, KeyError, TypeError):
        return d.name


def _load(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise PieError(f"{path}: unreadable ({str(exc).splitlines()[0]}); re-run `pie-mlops compare`") from None


def write_claims(params: dict) -> Path:
    """Compute the claims from every comparison on disk and write claims.json atomically."""
    from pie_mlops.analysis.claims import claims
    from pie_mlops.analysis.run import clean
    from pie_mlops.atomic import write_text

    dirs = compare_dirs(params)
    if not dirs:
        raise PieError(f"{claims_path(params).parent}: no comparison (summary.json + analysis.json) to test "
                       f"the claims on; run `pie-mlops compare` first")
    summaries = {a: _load(d / "summary.json") for a, d in dirs.items()}
    analyses = {a: _load(d / "analysis.json") for a, d in dirs.items()}
    result = claims(summaries, analyses, seed=int(params.get("seed", 0)))
    result = {"dataset": params["dataset"], "architectures": sorted(dirs), **result}
    path = claims_path(params)
    write_text(path, json.dumps(clean(result), indent=2, sort_keys=True, allow_nan=False) + "\n")
    return path
