"""Plans for tests: the real, resolved plan of a profile, shrunk by a few keys (config/plans.py).

Tests compose the plan the CLI and `study` would run with, then narrow it, instead of building
stage dicts by hand, so a test can never run with a value the schema would refuse, and a new
key reaches every test with its real default.

    plan("train", arch="bilstm", data_dir=str(tmp / "data"), seeds=[0])      # tiny, for bilstm
    plan("compare", profile="default", split="test")                          # params.yaml's
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def profile_file(profile: str = "tiny") -> Path:
    """profiles/NAME.yaml; `default` is params.yaml (the schema's defaults written out)."""
    return ROOT / "params.yaml" if profile == "default" else ROOT / "profiles" / f"{profile}.yaml"


def plan(section: str, arch: str | None = None, profile: str = "tiny", **overrides):
    """`section`'s plan of `profile` with `overrides` over it (None values count: `lr=None`),
    validated; with `arch`, resolved for that architecture (tuned values of the plan's
    best_params pattern applied, except the keys overridden here)."""
    from pie_mlops.config.plans import for_arch, resolve, shrink

    if arch is not None:
        overrides["arch"] = arch
    out = shrink(resolve(section, profile_file(profile)), **overrides)
    one = overrides.get("arch")
    if isinstance(one, str) and section in ("tune", "train", "prune"):  # one architecture: resolved for it
        return for_arch(out, one)
    return out


def params_doc(**sections) -> dict:
    """A params file's document that resolves to these sections (plans or dicts of their values):
    the keys every stage shares under `study`, as a params file states them, the rest under each
    section's name. The sections must agree on a shared key."""
    from pie_mlops.config.schema import shared_keys

    doc: dict = {"study": {}}
    for name, values in sections.items():
        values = values.model_dump() if hasattr(values, "model_dump") else dict(values)
        for key in shared_keys(name):
            if key in values:
                value = values.pop(key)
                assert doc["study"].setdefault(key, value) == value, f"{name}.{key}: {value!r} vs {doc['study'][key]!r}"
        doc[name] = values
    return doc
