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
DENSE_LONG = "dense-long"  # dense models trained for the ft/wr length: the training-length control
# <criterion>-<schedule>[-structured|-layer]@<sparsity in [0, 1)>, as prune.group_name writes it.
_GROUP = re.compile(rf"({'|'.join(CRITERIA)})-({'|'.join(SCHEDULES)})(-structured|-layer)?@0(\.[0-9]+)?")


def check_name(kind: str, name: object, where: str = "") -> str:
    """`name` if it is a valid `kind` ("arch" or "group"), else PieError naming `where`."""
    text = name if isinstance(name, str) else None
    if kind == "arch":
        ok = text in ARCHS
        expected = f"one of {', '.join(ARCHS)}"
    elif kind == "group":
        ok = text is not None and (text in (DENSE, DENSE_LONG) or _GROUP.fullmatch(text) is not None)
        expected = f"'{DENSE}', '{DENSE_LONG}' or <criterion>-<schedule>@<sparsity>, e.g. magnitude-os@0.50"
    else:
        raise ValueError(f"unknown kind of name {kind!r}")
    if not ok:
        raise PieError(f"{where + ': ' if where else ''}{kind} {name!r} is not {expected}")
    return text
