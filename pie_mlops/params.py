"""Read one stage's section of params.yaml (each stage reads only its own keys)."""

from __future__ import annotations

from pathlib import Path

from pie_mlops.errors import PieError

DEFAULT_PARAMS = "params.yaml"


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
