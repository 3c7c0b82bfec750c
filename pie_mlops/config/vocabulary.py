"""The paper's names (docs/design.md §1) and the one check that a name read from a user, a file or
a params section is valid. Dataset, architecture and group names become path parts
(`data/<dataset>/`, `predictions/<dataset>/<arch>/pruned/<group>/`, `reports/compare/<dataset>/<arch>`)
and registered-model names (`pie-<dataset>-<arch>`), so a name outside these rules (`../..`,
`a/b`, `x:y`) must never reach a path or the registry. Every entry point (the CLI, the params
schema, the stage functions a worker calls) checks through `check_name`. Pure: no I/O, no torch.
"""

from __future__ import annotations

import re

from pie_mlops.util.errors import PieError

ARCHS = ("bert", "bilstm")
CRITERIA = ("magnitude", "impact", "random")
SCHEDULES = ("ft", "wr", "ai", "os")
DENSE = "dense"
DENSE_LONG = "dense-long"  # dense models trained for the ft/wr length: the training-length control
# <criterion>-<schedule>[-structured|-layer]@<sparsity in [0, 1)>, as prune.group_name writes it.
# A dataset: a folder name that is also legal inside an MLflow model name (no '/', ':'), never
# hidden ('.name' is write_dataset's temporary copy) and never '..'.
_DATASET = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,199}")
_GROUP = re.compile(rf"({'|'.join(CRITERIA)})-({'|'.join(SCHEDULES)})(-structured|-layer)?@0(\.[0-9]+)?")
# Quantized groups (ours, not the paper's): quant-<method>, one version per dense seed, no training.
QUANT_BITS = {"int8-dyn": 8, "int8-wo": 8, "bf16": 16, "fp16": 16, "fp8": 8}  # models/quantize.py's recipes
QUANT_METHODS = tuple(QUANT_BITS)
QUANT_PREFIX = "quant-"
_QUANT = re.compile(rf"{QUANT_PREFIX}({'|'.join(re.escape(m) for m in QUANT_METHODS)})")
PAPER_SCHEDULES = ("ft", "wr", "ai")


def compression_of(group: str) -> str:
    """`dense`, `pruning` (<criterion>-<schedule>@<sparsity>) or `quantization` (quant-<method>)."""
    if group == DENSE:
        return DENSE
    return "quantization" if _QUANT.fullmatch(group) else "pruning"


def is_paper_group(group: str) -> bool:
    """A group of the paper's methods: ft/wr/ai pruning, unstructured, with the paper's per-layer
    threshold (`-layer`). os, structured, global-threshold, quantized and dense groups are ours."""
    m = _GROUP.fullmatch(group)
    return m is not None and m.group(2) in PAPER_SCHEDULES and m.group(3) == "-layer"


def check_name(kind: str, name: object, where: str = "") -> str:
    """`name` if it is a valid `kind` ("dataset", "arch" or "group"), else PieError naming `where`."""
    problem = name_problem(kind, name)
    if problem:
        raise PieError(f"{where + ': ' if where else ''}{problem}")
    return name


def name_problem(kind: str, name: object) -> str | None:
    """Why `name` is not a valid `kind`, or None (the schema's validators use this, as ValueError)."""
    text = name if isinstance(name, str) else None
    if kind == "dataset":
        ok = text is not None and _DATASET.fullmatch(text) is not None and ".." not in text
        expected = ("a dataset name: letters, digits, '_', '-' and '.', starting with a letter or digit, "
                    "at most 200 characters, no '..' (a name, not a path)")
    elif kind == "arch":
        ok = text in ARCHS
        expected = f"one of {', '.join(ARCHS)}"
    elif kind == "group":
        ok = text is not None and (text in (DENSE, DENSE_LONG) or _GROUP.fullmatch(text) is not None
                                   or _QUANT.fullmatch(text) is not None)
        expected = (f"'{DENSE}', '{DENSE_LONG}', <criterion>-<schedule>@<sparsity> (e.g. magnitude-os@0.50) "
                    "or quant-<method>")
    else:
        raise ValueError(f"unknown kind of name {kind!r}")
    return None if ok else f"{kind} {name!r} is not {expected}"
