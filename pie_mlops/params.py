"""Read one stage's section of a params file, validated against the schema (pie_mlops/schema.py).

Every params file is an overlay on the schema's defaults: params.yaml spells all of them out
(DVC tracks each key), a profile (profiles/NAME.yaml) states only what differs.
"""

from __future__ import annotations

import re
from pathlib import Path

from pie_mlops.errors import PieError

DEFAULT_PARAMS = "params.yaml"
PROFILES_DIR = "profiles"
_TYPE_TAGS = {"int", "float", "str", "bool", "none", "literal['bert','bilstm']"}
_PROFILE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


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
    import yaml

    path = Path(path)
    if str(path) == DEFAULT_PARAMS and not path.exists():
        return {}  # no params.yaml here: the schema's defaults, which params.yaml spells out anyway
    if not path.is_file():
        raise PieError(f"{path}: no such params file (run from the project root, or give --params FILE "
                       f"or --profile NAME)")
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise PieError(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from None
    if doc is None:
        return {}
    if not isinstance(doc, dict):
        raise PieError(f"{path}: must be a mapping of sections (materialize:, train:, ...), "
                       f"not a {type(doc).__name__}")
    return doc


def validate(section: str, values: dict, source: str | Path = DEFAULT_PARAMS) -> dict:
    """`values` over the section's schema defaults, checked and typed; exit 2 naming the key."""
    from pydantic import ValidationError

    from pie_mlops.schema import SECTIONS

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
        err = max(exc.errors(), key=lambda e: len(e["loc"]))
        loc = [p for p in err["loc"] if not (isinstance(p, str) and ("[" in p or p in _TYPE_TAGS))]
        where = ".".join(str(p) for p in (section, *loc))
        if err["type"] == "extra_forbidden":
            known = ", ".join(SECTIONS[section].model_fields)
            raise PieError(f"{source}: unknown key {where}; known keys of {section!r}: {known}") from None
        raise PieError(f"{source}: {where}: {err['msg']} (got {err.get('input')!r})") from None


def load_section(section: str, defaults: dict | None = None, path: str | Path = DEFAULT_PARAMS) -> dict:
    """One section of the params file at `path`, over the schema's defaults, validated.

    `defaults` is only used for a section the schema does not know (a plugin's own).
    """
    from pie_mlops.schema import SECTIONS

    values = read_file(path).get(section) or {}
    if not isinstance(values, dict):
        raise PieError(f"{path}: section {section!r} must be a mapping, not {type(values).__name__}")
    if section in SECTIONS:
        return validate(section, values, path)
    unknown = sorted(set(values) - set(defaults or {}))
    if unknown:
        raise PieError(f"{path}: unknown key(s) in {section!r}: {', '.join(unknown)}")
    return {**(defaults or {}), **values}


def load_all(path: str | Path = DEFAULT_PARAMS) -> dict:
    """Every section of the params file at `path`, over the defaults: what the study runs with."""
    from pie_mlops.schema import SECTIONS

    doc = read_file(path)
    unknown = sorted(set(doc) - set(SECTIONS))
    if unknown:
        raise PieError(f"{path}: unknown section(s) {', '.join(unknown)}; known: {', '.join(SECTIONS)}")
    return {name: load_section(name, None, path) for name in SECTIONS}


def render(params: dict) -> str:
    """The params as YAML, one line per key, in the schema's order (for `pie-mlops params`)."""
    import yaml

    def flow(value) -> str:
        return yaml.safe_dump(value, default_flow_style=True, width=10**6, sort_keys=False).strip().removesuffix("\n...")

    return "\n".join(f"{section}:\n" + "".join(f"  {k}: {flow(v)}\n" for k, v in values.items())
                     for section, values in params.items())
