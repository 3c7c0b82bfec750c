"""Read one stage's section of params.yaml (each stage reads only its own keys)."""

from __future__ import annotations

from pathlib import Path

from pie_mlops.errors import PieError

DEFAULT_PARAMS = "params.yaml"
PROFILES_DIR = "profiles"


def profile_path(name: str) -> Path:
    """The params file of a profile: `default` is params.yaml, NAME is profiles/NAME.yaml."""
    if name == "default":
        return Path(DEFAULT_PARAMS)
    import re

    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_-]*", name):  # never a path: no '/', '..' or absolute
        raise PieError(f"--profile {name!r}: a profile is a name (profiles/NAME.yaml); give a file with --params FILE")
    path = Path(PROFILES_DIR) / f"{name}.yaml"
    if not path.is_file():
        known = sorted(p.stem for p in Path(PROFILES_DIR).glob("*.yaml")) if Path(PROFILES_DIR).is_dir() else []
        raise PieError(f"{path}: no such profile; choose default or one of {', '.join(known) or '(none found)'} "
                       f"(run from the project root)")
    return path


def load_section(section: str, defaults: dict, path: str | Path = DEFAULT_PARAMS) -> dict:
    """`defaults` overlaid with `section` from the params file; a missing file means defaults.

    Unknown keys are an error: a typo in params.yaml must not silently fall back to a default.
    """
    import yaml

    merged = dict(defaults)
    path = Path(path)
    if not path.is_file():
        return merged
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise PieError(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from None
    if not isinstance(doc, dict):
        raise PieError(f"{path}: must be a mapping of sections (materialize:, train:, ...), not a YAML {type(doc).__name__}")
    values = doc.get(section) or {}
    if not isinstance(values, dict):
        raise PieError(f"{path}: section {section!r} must be a mapping")
    unknown = sorted(set(values) - set(defaults))
    if unknown:
        raise PieError(f"{path}: unknown key(s) in {section!r}: {', '.join(unknown)}; known: {', '.join(sorted(defaults))}")
    merged.update(values)
    for key, value in values.items():
        check_type(f"{path}: {section}.{key}", value, defaults[key])
    return merged


def check_type(where: str, value, default) -> None:
    """A value of the default's kind: a whole number where the default is one, a number where
    it is a float, true/false where it is a bool (null is left to the stage)."""
    if value is None or default is None:
        return
    if isinstance(value, dict):  # a per-architecture value ({bert: ..., bilstm: ...})
        for k, v in value.items():
            check_type(f"{where}.{k}", v, default)
        return
    if isinstance(default, bool):
        ok, kind = isinstance(value, bool), "true or false"
    elif isinstance(default, int):
        ok, kind = isinstance(value, int) and not isinstance(value, bool), "a whole number"
    elif isinstance(default, float):
        ok, kind = isinstance(value, (int, float)) and not isinstance(value, bool), "a number"
    else:
        return
    if not ok:
        raise PieError(f"{where} must be {kind}, got {value!r}")
