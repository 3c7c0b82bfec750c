"""The claims step of `compare` (docs/design.md §3): `<dataset dir>/claims.json` from every
architecture's comparison of one dataset.

The compare stage runs arch by arch (one DVC stage each), and claim (e) needs two of them,
so this step reads what is on disk: every `<out>/<arch>/` beside the one just written that
holds a summary.json and an analysis.json. Each compare run ends with it, so after the last
architecture the file covers them all; the `report` stage (which depends on the whole
reports/compare tree) then shows it. With another `out` layout, only the architectures of
the call are read, and claims.json goes inside the first one's directory.
"""

from __future__ import annotations

import json
from pathlib import Path

from pie_mlops.util.errors import PieError

ARCH_FIELD = "{arch}"


def _archs(params: dict) -> list[str]:
    arch = params["arch"]
    return [str(a) for a in arch] if isinstance(arch, (list, tuple)) else [str(arch)]


def _siblings(params: dict) -> bool:
    """True for the usual layout, `.../<dataset>/{arch}`: one directory per arch side by side."""
    return str(params["out"]).rstrip("/").endswith("/" + ARCH_FIELD)


def claims_path(params: dict) -> Path:
    """Where claims.json goes: beside the per-arch directories (`<out parent>/claims.json`),
    or, for another `out` layout, inside the first architecture's directory."""
    out = str(params["out"]).rstrip("/")
    if _siblings(params):
        return Path(out[:-len(ARCH_FIELD)].format(dataset=params["dataset"])) / "claims.json"
    return Path(out.format(dataset=params["dataset"], arch=_archs(params)[0])) / "claims.json"


def compare_dirs(params: dict) -> dict[str, Path]:
    """{arch: directory} of every finished comparison of params' dataset: every sibling
    directory in the usual layout (the other architectures' DVC stages wrote them), else
    those of params' architectures."""
    if _siblings(params):
        parent = claims_path(params).parent
        candidates = sorted(p for p in parent.iterdir() if p.is_dir() and not p.name.startswith(".")) \
            if parent.is_dir() else []
    else:
        out = str(params["out"])
        candidates = [Path(out.format(dataset=params["dataset"], arch=a)) for a in _archs(params)]
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


def rules_of(params: dict) -> dict:
    """The claims' rules of these params: compare.claims, and compare.alpha where it is set."""
    from pie_mlops.config.schema import defaults

    rules = dict(defaults("compare")["claims"], **(params.get("claims") or {}))
    if params.get("alpha") is not None:
        rules["alpha"] = float(params["alpha"])
    return rules


def claims_code_hash() -> str:
    """sha256 over the source of the modules that decide the claims, so a claims.json names the
    exact rules it was computed under (beside `rules_version`)."""
    import hashlib

    from pie_mlops.analysis import claim_rules, claims, classes, el2n, enrichment_perm, heldout

    h = hashlib.sha256()
    for mod in (claim_rules, claims, classes, el2n, enrichment_perm, heldout):
        h.update(Path(mod.__file__).read_bytes())
    return h.hexdigest()


def _previous(path: Path) -> dict | None:
    """The claims.json already at `path` (a committed result being recomputed), or None."""
    if not path.is_file():
        return None
    try:
        old = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(old, dict):
        return None
    # Carry the oldest verdicts: a result recomputed twice still shows what was first committed.
    if old.get("superseded_rules_version"):
        keep = {k: {"verdict": (v.get("original") or {}).get("verdict")} for k, v in old.items()
                if isinstance(v, dict) and "verdict" in v}
        return {**old, **keep, "rules_version": old["superseded_rules_version"]}
    return old


def write_claims(params: dict, run_ids: list[str] = ()) -> Path:
    """Compute the claims from every comparison on disk and write claims.json atomically;
    then log it on each compare run of `run_ids` (MLflow mode), or on the active run (under
    `mlflow run`)."""
    from pie_mlops.analysis.claims import claims
    from pie_mlops.analysis.run import clean
    from pie_mlops.util.atomic import write_text

    dirs = compare_dirs(params)
    if not dirs:
        raise PieError(f"{claims_path(params).parent}: no comparison (summary.json + analysis.json) to test "
                       f"the claims on; run `pie-mlops compare` first")
    summaries = {a: _load(d / "summary.json") for a, d in dirs.items()}
    analyses = {a: _load(d / "analysis.json") for a, d in dirs.items()}
    result = claims(summaries, analyses, rules=rules_of(params))
    result = {"dataset": params["dataset"], "architectures": sorted(dirs), "claims_code_sha256": claims_code_hash(),
              **result}
    path = claims_path(params)
    from pie_mlops.analysis.claim_rules import supersede
    result = supersede(result, _previous(path))
    write_text(path, json.dumps(clean(result), indent=2, sort_keys=True, allow_nan=False) + "\n")
    verdicts = {k: v["verdict"] for k, v in result.items() if isinstance(v, dict) and "verdict" in v}
    if run_ids:
        from pie_mlops.tracking.compare import log_claims
        for run_id in run_ids:
            log_claims(run_id, path, verdicts)
    else:
        from pie_mlops.tracking import log_artifacts_if_active
        log_artifacts_if_active([path], "compare")
    return path
