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
    values = doc.get(section) or {}
    if not isinstance(values, dict):
        raise PieError(f"{path}: section {section!r} must be a mapping")
    unknown = sorted(set(values) - set(defaults))
    if unknown:
        raise PieError(f"{path}: unknown key(s) in {section!r}: {', '.join(unknown)}; known: {', '.join(sorted(defaults))}")
    merged.update(values)
    return merged
