"""The rules the claims are decided by, fixed before the data (docs/claims.md, its changelog).
Pure: group names and summary/analysis dicts in.

- **Which groups are the paper's.** Criteria magnitude/impact/random with the schedules ft, wr
  and ai, unstructured, with the paper's per-layer threshold (`-layer` groups). `os`,
  structured and global-threshold groups are ours: they go to the "our methods" table, with
  the same statistics, and never decide a paper claim. `dense-long` is a control.
- **Eligibility** comes from summary.json: `above_floor` (the calibrated test against the noise
  floor) and `collapsed`; a dense group that predicts one class makes every group ineligible.
- **Across groups.** The groups of a dataset share their dense models and their test set, so
  they are not independent replications. Each claim is decided by one *primary* group, chosen
  by an order fixed here (or by `compare.claims.primary`) among the eligible paper groups; the
  other eligible paper groups are reported as secondary, with their own statistics.
"""

from __future__ import annotations

import re

from pie_mlops.config.vocabulary import DENSE_LONG, is_paper_group

RULES_VERSION = "2026-12-07.1"  # bump with every change of a rule; docs/claims.md keeps the changelog
_NAME = re.compile(r"(?P<criterion>magnitude|impact|random)-(?P<schedule>ft|wr|ai|os)(?P<variant>-structured|-layer)?"
                   r"@(?P<sparsity>[0-9.]+)")
# The pre-set order of primary groups: the paper's headline schedules first, magnitude first,
# the sparsity closest to 0.5, then the transformer (the paper's main model).
SCHEDULE_ORDER = {"ft": 0, "wr": 1, "ai": 2}
CRITERION_ORDER = {"magnitude": 0, "impact": 1, "random": 2}
ARCH_ORDER = {"bert": 0, "bilstm": 1}


def parse(group: str) -> dict | None:
    m = _NAME.fullmatch(group)
    return None if m is None else {**m.groupdict(), "sparsity": float(m["sparsity"])}


def method_kind(group: str) -> str:
    """`paper`, `ours` or `control` (dense-long)."""
    if group == DENSE_LONG:
        return "control"
    return "paper" if is_paper_group(group) else "ours"


def groups_of(summary: dict) -> dict:
    """The pruned groups of a summary.json (everything but its `noise_floor`)."""
    return {g: s for g, s in summary.items() if g != "noise_floor" and isinstance(s, dict)}


def eligibility(summary: dict) -> tuple[list[str], dict[str, str]]:
    """(eligible groups, {excluded group: why}) of one architecture's summary, every kind."""
    floor = summary.get("noise_floor") or {}
    ok, excluded = [], {}
    for g, s in sorted(groups_of(summary).items()):
        if floor.get("dense_collapsed"):
            excluded[g] = "the dense models themselves predict one class"
        elif s.get("collapsed"):
            excluded[g] = f"collapsed ({s.get('majority_pred_share') or float('nan'):.2f} one class)"
        elif not s.get("above_floor"):
            test = s.get("floor_test") or {}
            p = test.get("p_holm")
            excluded[g] = "not above the noise floor" + (f" (Holm p = {p:.3g})" if p is not None else "")
        else:
            ok.append(g)
    return ok, excluded


def primary_order(candidates: list[str], preferred: list[str] | None = None) -> list[str]:
    """`arch/group` names in the pre-set order: first those named in `preferred` (`arch/group`
    or a bare group, in the order given), then the default order of the module docstring."""
    def default(key: str):
        arch, g = key.split("/", 1)
        p = parse(g) or {"schedule": "", "criterion": "", "sparsity": 9.0}
        return (SCHEDULE_ORDER.get(p["schedule"], 9), CRITERION_ORDER.get(p["criterion"], 9),
                abs(p["sparsity"] - 0.5), p["sparsity"], ARCH_ORDER.get(arch, 9), key)

    ranked = sorted(candidates, key=default)
    named = []
    for want in preferred or []:
        named += [c for c in ranked if (c == want or c.split("/", 1)[1] == want) and c not in named]
    return named + [c for c in ranked if c not in named]


def supersede(new: dict, old: dict | None) -> dict:
    """`new` claims with the verdicts of `old` (an earlier claims.json of the same study,
    computed under other rules) beside each: `original: {rules_version, verdict}`."""
    if not old or old.get("rules_version") == new.get("rules_version"):
        return new
    version = old.get("rules_version") or "before 2026-12-06 (unversioned)"
    out = dict(new, superseded_rules_version=version)
    for key, entry in new.items():
        prev = old.get(key)
        if isinstance(entry, dict) and "verdict" in entry:
            out[key] = dict(entry, original={"rules_version": version,
                                             "verdict": prev.get("verdict") if isinstance(prev, dict) else None})
    # (d) was one claim before 2026-12-06: both halves show its old verdict.
    if isinstance(old.get("d_class_independent"), dict):
        for key in ("d1_class_proportional", "d2_damage_every_class"):
            if key in out:
                out[key]["original"] = {"rules_version": version, "verdict": old["d_class_independent"].get("verdict"),
                                        "claim": "d_class_independent"}
    return out
