"""Read one stage's section of a params file, validated against the schema (pie_mlops/config/schema.py).

Every params file is an overlay on the schema's defaults: params.yaml spells all of them out
(DVC tracks each key), a profile (profiles/NAME.yaml) states only what differs. The keys every
stage shares (dataset, arch, model_path, data_dir) are the `study` section's (config/plans.py).
"""

from __future__ import annotations

import re
from pathlib import Path

from pie_mlops.util.errors import PieError

DEFAULT_PARAMS = "params.yaml"
PROFILES_DIR = "profiles"
_TYPE_TAGS = {"int", "float", "str", "bool", "none", "literal['bert','bilstm']"}
_PROFILE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
# A params file is a few KB; YAML aliases can make a 1 KB file expand to billions of values
# (the "billion laughs"), which validating or printing would take for ever. Both are refused.
MAX_FILE_BYTES = 1 * 2**20
MAX_VALUES = 100_000  # values once aliases are expanded; the paper profile has a few hundred


def profile_path(name: str) -> Path:
    """The params file of a profile: `default` is params.yaml, NAME is profiles/NAME.yaml."""
    if name == "default":
        return Path(DEFAULT_PARAMS)
    if not _PROFILE_NAME.match(name) or ".." in name:
        raise PieError(f"--profile {name!r}: a profile is a name (letters, digits, _ . -), not a path; "
                       f"give a file with --params FILE")
    path = Path(PROFILES_DIR) / f"{name}.yaml"
    if not path.is_file():
        known = sorted(p.stem for p in Path(PROFILES_DIR).glob("*.yaml")) if Path(PROFILES_DIR).is_dir() else []
        raise PieError(f"{path}: no such profile; choose default or one of {', '.join(known) or '(none found)'} "
                       f"(run from the project root)")
    return path


def read_file(path: str | Path) -> dict:
    """The params file as a mapping of sections; a missing or malformed file is exit 2."""

    path = Path(path)
    if str(path) == DEFAULT_PARAMS and not path.exists():
        return {}  # no params.yaml here: the schema's defaults, which params.yaml spells out anyway
    if not path.is_file():
        raise PieError(f"{path}: no such params file (run from the project root, or give --params FILE "
                       f"or --profile NAME)")
    doc = _load_bounded(path, "not valid YAML")
    if doc is None:
        return {}
    if not isinstance(doc, dict):
        raise PieError(f"{path}: must be a mapping of sections (materialize:, train:, ...), "
                       f"not a {type(doc).__name__}")
    return doc


def _load_bounded(path: Path, what: str, hint: str = ""):
    """yaml.safe_load of `path`, refused (PieError) over MAX_FILE_BYTES or MAX_VALUES expanded values."""
    import yaml

    if path.stat().st_size > MAX_FILE_BYTES:
        raise PieError(f"{path}: {path.stat().st_size:,} bytes; a params file is at most {MAX_FILE_BYTES:,}")
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError, RecursionError) as exc:
        raise PieError(f"{path}: {what} ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__}){hint}") from None
    if _expanded_size(doc, {}) > MAX_VALUES:
        raise PieError(f"{path}: expands to over {MAX_VALUES:,} values through YAML aliases (&/*); "
                       f"write the values out")
    return doc


def _expanded_size(value, memo: dict) -> int:
    """Values in `value` with every alias expanded, counted once per shared node (memo by id),
    so a billion-laughs document is measured in microseconds. Stops early past the bound."""
    if id(value) in memo:
        return memo[id(value)]
    if isinstance(value, dict):
        items = [*value.keys(), *value.values()]
    elif isinstance(value, list):
        items = value
    else:
        return 1
    memo[id(value)] = MAX_VALUES + 1  # a cycle (a recursive alias) counts as too large
    total = 1
    for item in items:
        total += _expanded_size(item, memo)
        if total > MAX_VALUES:
            break
    memo[id(value)] = total
    return total


def validate(section: str, values: dict, source: str | Path = DEFAULT_PARAMS, given=()) -> dict:
    """`values` over the section's schema defaults, checked and typed; exit 2 naming the key
    (and the command-line option, for a key in `given`)."""
    from pydantic import ValidationError

    from pie_mlops.config.schema import SECTIONS, own

    base = SECTIONS[section]().model_dump()
    archs = {"bert", "bilstm"}
    # A per-architecture overlay on a per-architecture default changes only the architectures
    # it names: `seeds: {bilstm: [0, 1]}` keeps bert's seeds.
    values = {k: ({**base[k], **v} if isinstance(v, dict) and isinstance(base.get(k), dict)
                  and v and base[k] and set(v) | set(base[k]) <= archs else v) for k, v in values.items()}
    try:
        return SECTIONS[section].model_validate(values).model_dump()
    except ValidationError as exc:
        # A per-architecture value is a union: report the branch that got furthest, without
        # pydantic's branch tags (`list[int]`, `dict[...]`) in the key path.
        def path(e: dict) -> list:
            return [p for p in e["loc"]
                    if not (isinstance(p, str) and ("[" in p or p in _TYPE_TAGS or p.startswith("constrained-")))]

        # The deepest, and of equals not a wrong key (`imdb` is no architecture, but is a dataset).
        err = max(exc.errors(), key=lambda e: (len(path(e)), e["type"] != "literal_error"))
        loc = path(err)
        where = ".".join(str(p) for p in (section, *loc))
        if loc and loc[0] in given:
            where, source = f"{where} (--{str(loc[0]).replace('_', '-')})", "command line"
        if err["type"] == "extra_forbidden":
            known = ", ".join(own(section, dict.fromkeys(SECTIONS[section].model_fields)))  # study's stay there
            raise PieError(f"{source}: unknown key {where}; known keys of {section!r}: {known}") from None
        raise PieError(f"{source}: {where}: {err['msg']} (got {err.get('input')!r})") from None


def render(params: dict) -> str:
    """The params as YAML, one line per key, in the schema's order (for `pie-mlops params`)."""
    import yaml

    def flow(value) -> str:
        return yaml.safe_dump(value, default_flow_style=True, width=10**6, sort_keys=False).strip().removesuffix("\n...")

    return "\n".join(f"{section}:\n" + "".join(f"  {k}: {flow(v)}\n" for k, v in values.items())
                     for section, values in params.items())


# The hyperparameters a tuned-params file holds (`tune` writes them; config/plans.py applies them).
TUNED = ("lr", "epochs", "batch_size", "warmup_ratio")


def as_list(value) -> list:
    if value is None:
        return []
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    return list(value) if isinstance(value, (list, tuple)) else [value]


def read_best_params(path: Path) -> dict:
    """The tuned hyperparameters in `path` ({} if there is none); PieError if it does not parse."""

    if not path.is_file():
        return {}
    doc = _load_bounded(path, "tuned-params file does not parse", "; re-run `pie-mlops tune` or delete it")
    if not isinstance(doc, dict):
        raise PieError(f"{path}: tuned-params file must be a mapping of {', '.join(TUNED)}")
    best = {k: v for k, v in doc.items() if k in TUNED}
    try:  # wrong types would only fail deep inside training, after the run started
        return {k: int(v) if k in ("epochs", "batch_size") else float(v) for k, v in best.items()}
    except (TypeError, ValueError):
        raise PieError(f"{path}: tuned-params values must be numbers, got {best}") from None
