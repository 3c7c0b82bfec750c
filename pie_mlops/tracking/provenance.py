"""Provenance: the tags that say where a model came from (docs/design.md §3 "Registry") and their
values, read without MLflow: the data version, the commit, the params' hash, and the exact
requirements a logged model needs to load."""

from __future__ import annotations

import functools
from pathlib import Path

# The version tags of docs/design.md §3 "Registry"; runs carry the same ones.
VERSION_TAGS = ("group", "criterion", "schedule", "scope", "sparsity", "achieved_sparsity", "seed",
                "data_md5", "git_sha", "params_hash", "code_fingerprint",
                "compression", "method", "bits", "size_mb")  # the last four: quantized versions
# What makes two runs "the same model" for skip-on-rerun (code_fingerprint: pie_mlops/util/fingerprint.py).
IDENTITY_TAGS = ("dataset", "arch", "group", "seed", "data_md5", "params_hash", "code_fingerprint")
# Needed to load a logged model (the pyfunc imports pie_mlops); the pins come from our own
# package metadata (pyproject). pie-mlops installs from the project directory (docs/serving.md).
MODEL_REQUIREMENTS = ("pie-mlops", "mlflow", "torch", "transformers", "safetensors", "numpy", "pandas", "pyarrow")


def data_md5(data_dir: str | Path = "data") -> str:
    """`outs[0].md5` of `<data_dir>.dvc` (data.dvc tracks data/), or 'untracked'."""
    import yaml

    dvc_file = Path(f"{Path(data_dir)}.dvc")
    try:
        outs = (yaml.safe_load(dvc_file.read_text(encoding="utf-8")) or {}).get("outs") or []
        return str(outs[0]["md5"]) if outs and outs[0].get("md5") else "untracked"
    except (OSError, yaml.YAMLError, AttributeError, KeyError, TypeError):
        return "untracked"


def git_sha(start: str | Path = ".") -> str:
    """HEAD's commit, read from .git directly (no git process), or 'unknown'."""
    try:
        for folder in [Path(start).resolve(), *Path(start).resolve().parents]:
            dot = folder / ".git"
            if dot.is_file():  # a worktree or submodule: "gitdir: <path>"
                dot = (folder / dot.read_text().split(":", 1)[1].strip()).resolve()
            if not dot.is_dir():
                continue
            head = (dot / "HEAD").read_text().strip()
            if not head.startswith("ref:"):
                return head
            ref = head.split(":", 1)[1].strip()
            common = Path((dot / "commondir").read_text().strip()) if (dot / "commondir").is_file() else None
            roots = [dot] + ([(dot / common).resolve()] if common else [])
            for root in roots:
                if (root / ref).is_file():
                    return (root / ref).read_text().strip()
                packed = root / "packed-refs"
                if packed.is_file():
                    for line in packed.read_text().splitlines():
                        if line.endswith(" " + ref):
                            return line.split()[0]
            return "unknown"  # a repository without commits
    except OSError:
        pass
    return "unknown"


def params_hash(params: dict) -> str:
    """A short, order-independent hash of the parameters a model was trained with."""
    import hashlib
    import json

    blob = json.dumps(params, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def model_requirements() -> list[str]:
    """Exact requirements for loading a logged model: the versions running now (pyproject
    states ranges). A local version label (torch's `+cpu`) is dropped: PyPI has no such wheel.
    Read once per process (~5 ms of package-metadata parsing, once per logged model before):
    the modules a process runs are the ones it imported, whatever is installed since."""
    return list(_requirements())


@functools.cache
def _requirements() -> tuple[str, ...]:
    from importlib import metadata

    out = []
    for name in MODEL_REQUIREMENTS:
        try:
            out.append(f"{name}=={metadata.version(name).split('+')[0]}")
        except metadata.PackageNotFoundError:
            continue
    return tuple(out)
