"""The paper's names (docs/design.md §1) and the one check that a name read from a user, a file or
a params section is one of them. Architecture and group names become path parts
(`predictions/<dataset>/<arch>/pruned/<group>/`, `reports/compare/<dataset>/<arch>`), so a
name outside the vocabulary (`../..`, `a/b`) must never reach a path. Pure: no I/O, no torch.
"""

from __future__ import annotations

import re

from pie_mlops.errors import PieError

ARCHS = ("bert", "bilstm")
CRITERIA = ("magnitude", "impact", "random")
SCHEDULES = ("ft", "wr", "ai", "os")
DENSE = "dense"
# <criterion>-<schedule>[-structured|-layer]@<sparsity in [0, 1)>, as prune.group_name writes it.
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
    """A group of the paper's methods (ft/wr/ai pruning); os, quantized and dense groups are not."""
    m = _GROUP.fullmatch(group)
    return m is not None and m.group(2) in PAPER_SCHEDULES


def check_name(kind: str, name: object, where: str = "") -> str:
    """`name` if it is a valid `kind` ("arch" or "group"), else PieError naming `where`."""
    text = name if isinstance(name, str) else None
    if kind == "arch":
        ok = text in ARCHS
        expected = f"one of {', '.join(ARCHS)}"
    elif kind == "group":
        ok = text is not None and (text == DENSE or _GROUP.fullmatch(text) is not None
                                   or _QUANT.fullmatch(text) is not None)
        expected = f"'{DENSE}', <criterion>-<schedule>@<sparsity> (e.g. magnitude-os@0.50) or quant-<method>"
    else:
        raise ValueError(f"unknown kind of name {kind!r}")
    if not ok:
        raise PieError(f"{where + ': ' if where else ''}{kind} {name!r} is not {expected}")
    return text
