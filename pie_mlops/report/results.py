"""The README of a committed reproduction (docs/results/<name>/), rendered from its JSON files.

Pure: dicts in, Markdown out. `scripts/reproduce.py` writes the JSON and calls `render`; a
test renders the committed JSON again and compares, so the README's figures are the JSON's.
"""

from __future__ import annotations

CLAIMS = ("a_pie_accuracy_collapse", "b_el2n_enrichment", "c_longer_more_complex", "d_class_independent",
          "d1_class_proportional", "d2_damage_every_class", "e_transformer_more_prone")  # d: rules before 2026-12-06
VERDICT = {"holds": "**holds**", "refuted": "**refuted**", "inconclusive": "inconclusive"}


def _num(v, digits: int = 3) -> str:
    if v is None:
        return "n/a"
    if isinstance(v, float) and (abs(v) < 10 ** -digits) and v != 0:
        return f"{v:.1e}"
    return f"{v:.{digits}f}" if isinstance(v, float) else str(v)


def _ci(ci) -> str:
    return f"[{_num(ci[0])}, {_num(ci[1])}]" if ci and None not in ci else "n/a"


def figure(entry: dict) -> str:
    """Our figure for one claim: the statistic, then its CI or p-value, and the group that decided it
    (the first eligible paper group in the rules' pre-set order) or how many groups a pooled test used."""
    if entry.get("statistic") is None:
        return f"no test ({entry.get('note', '')})"
    text = f"{entry.get('statistic_name') or 'statistic'} = {_num(entry['statistic'])}"
    if entry.get("ci") is not None and None not in entry["ci"]:  # one group: no interval over groups
        text += f", 95% CI {_ci(entry['ci'])}"
    if entry.get("p_value") is not None:
        text += f", p = {_num(entry['p_value'])}"
    n = len(entry.get("groups") or [])
    if entry.get("decided_by"):  # one primary group decides; the others are reported, not counted
        return text + f"; decided by {entry['decided_by']} (1 of {n} eligible group(s))"
    return text + f"; {n} group(s)"


def claims_table(claims: dict) -> list[str]:
    rows = ["| claim | the paper | ours | verdict |", "| --- | --- | --- | --- |"]
    for key in CLAIMS:
        e = claims.get(key)
        if e is None:
            continue
        label = key.split("_", 1)[0]
        rows.append(f"| {label} | {e.get('paper', '')} | {figure(e)} | {VERDICT.get(e['verdict'], e['verdict'])} |")
    return rows


def groups_table(summary: dict) -> list[str]:
    floor = summary.get("noise_floor") or {}
    rows = [f"Noise floor (dense vs dense, {floor.get('seeds_per_side', '?')} vs {floor.get('seeds_per_side', '?')} "
            f"seeds): {_num(floor.get('share'))} {_ci(floor.get('ci'))}", "",
            "| group | models | PIE share [95% CI] | pruned acc. all | pruned modal acc. on PIEs | collapsed |",
            "| --- | --- | --- | --- | --- | --- |"]
    for g, s in sorted((g, s) for g, s in summary.items() if g != "noise_floor" and isinstance(s, dict)):
        rows.append(f"| {g} | {s.get('n_models', 'n/a')} | {_num(s.get('pie_share'))} {_ci(s.get('pie_share_ci'))} "
                    f"| {_num(s.get('pruned_acc_all'))} | {_num(s.get('pruned_modal_acc_pie'))} "
                    f"| {'yes' if s.get('collapsed') else 'no'} |")
    return rows


def gate_line(gate: dict | None) -> list[str]:
    """The baseline gate as run.json lists it (recomputed from the committed dense logits)."""
    if not gate:
        return []
    scores = list(gate["scores"].values())
    return [f"Baseline gate: {gate['baseline']} {_num(gate['value'])} on {gate['split']}; the {len(scores)} dense "
            f"seeds score {_num(min(scores))} to {_num(max(scores))}, every one at least "
            f"{_num(gate['value'] + gate['min_gain'])} (+{gate['min_gain']:g}): {'yes' if gate['passed'] else '**no**'}.",
            ""]


def _rules_line(claims: dict) -> list[str]:
    """Under which claims rules the verdicts were computed (docs/claims.md, its changelog)."""
    if claims.get("rules_version"):
        return [f"Verdicts under the claims rules {claims['rules_version']} (docs/claims.md).", ""]
    return ["**Verdicts computed under the old rules** (before 2026-12-06, unversioned): superseded by the "
            "rules of docs/claims.md, pending a new reproduction. They are kept as they were committed, not "
            "as evidence for or against the paper.", ""]


def _status(run: dict) -> list[str]:
    """A reproduction collected while part of it still runs says so first (scripts/reproduce.py --pending)."""
    if run.get("status") != "running":
        return []
    return [f"**In progress.** Collected {run.get('collected', 'n/a')} while {', '.join(run.get('pending') or [])} "
            "still ran: their logits so far are committed under `predictions/`, and their verdicts come when the run "
            "ends. The wall time and memory below are the collected part's (the notes say how).", ""]


BEGIN, END = "<!-- reproduction: begin", "<!-- reproduction: end -->"


def opening(name: str, run: dict, datasets: dict[str, dict]) -> str:
    """The README's opening block for the current reproduction: each claim's verdict and figure per
    dataset, the same text as the results page's tables (scripts/reproduce.py --readme writes it;
    a test renders it again)."""
    keys = list(datasets)
    state = (f"in progress: {', '.join(keys)} collected, {', '.join(run.get('pending') or [])} still running"
             if run.get("status") == "running" else f"finished {run.get('finished', 'n/a')}")
    rules = sorted({d["claims"].get("rules_version", "n/a") for d in datasets.values()})
    out = [f"{BEGIN} {name} -->",
           f"**What our data says** ([`{name}`](docs/results/{name}/README.md), {state}; claims rules "
           f"{', '.join(rules)}). Each cell: the verdict, then its figure (the statistic, its 95% interval or "
           "p-value, and the eligible paper-method group that decided it):", "",
           "| claim | the paper | " + " | ".join(keys) + " |", "| --- | --- | " + " | ".join("---" for _ in keys) + " |"]
    for claim in CLAIMS:
        entries = [d["claims"].get(claim) for d in datasets.values()]
        if all(e is None for e in entries):
            continue
        paper = next(e.get("paper", "") for e in entries if e is not None)
        cells = [f"{VERDICT.get(e['verdict'], e['verdict'])}: {figure(e)}" if e else "n/a" for e in entries]
        out.append(f"| {claim.split('_', 1)[0]} | {paper} | " + " | ".join(cells) + " |")
    return "\n".join([*out, END]) + "\n"


def readme_block(readme: str) -> tuple[str, str] | None:
    """(the reproduction's name, the block) of the README's opening, None without one."""
    start = readme.find(BEGIN)
    if start < 0:
        return None
    stop = readme.index(END, start) + len(END) + 1
    return readme[start + len(BEGIN):readme.index("-->", start)].strip(), readme[start:stop]


def render(name: str, run: dict, datasets: dict[str, dict]) -> str:
    """`datasets`: {dataset: {"claims": claims.json, "summaries": {arch: summary.json}}}, shown by
    folder name, the order `load` reads them in, whatever order the caller collected them."""
    datasets = dict(sorted(datasets.items()))
    out = [f"# Reproduction `{name}`: the paper's claims on our data", "",
           "Rendered from the JSON files beside this page (a test keeps them equal). "
           "Verdicts follow docs/claims.md: a claim never holds on collapsed groups or on groups "
           "whose PIE share is not above the dense-seed noise floor.", "",
           *_status(run),
           "## How it was run", "",
           f"- command: `{run.get('command', '')}`",
           f"- wall time: {_num(run.get('wall_s'), 0)} s ({_num((run.get('wall_s') or 0) / 3600, 2)} h), "
           f"peak RSS {_num(run.get('peak_rss_gib'), 2)} GiB",
           f"- machine: {run.get('machine', 'n/a')}",
           f"- code: {run.get('git_sha', 'n/a')}; params: the `params-<dataset>.yaml` files here", ""]
    if run.get("notes"):  # deviations from the paper and from the plain command, written down
        out += ["## Deviations and notes", "", *[f"- {note}" for note in run["notes"]], ""]
    for dataset, d in datasets.items():
        claims = d["claims"]
        seeds = claims.get("seeds_per_group")
        out += [f"## {dataset}", "", *_rules_line(claims), f"Seeds per group: {seeds}", "", *claims_table(claims), ""]
        for arch, summary in d["summaries"].items():
            gate = ((run.get("dense_gate") or {}).get(dataset) or {}).get(arch)
            out += [f"### {dataset} / {arch}", "", *gate_line(gate), *groups_table(summary), ""]
    return "\n".join(out).rstrip() + "\n"


def load(result_dir) -> tuple[str, dict, dict]:
    """(name, run, datasets) from a committed reproduction directory, as `render` takes them."""
    import json
    from pathlib import Path

    d = Path(result_dir)
    run = json.loads((d / "run.json").read_text(encoding="utf-8"))
    datasets = {}
    for claims in sorted(d.glob("*/claims.json")):
        summaries = {p.parent.name: json.loads(p.read_text(encoding="utf-8"))
                     for p in sorted(claims.parent.glob("*/summary.json"))}
        datasets[claims.parent.name] = {"claims": json.loads(claims.read_text(encoding="utf-8")), "summaries": summaries}
    return d.name, run, datasets


def write_opening(readme_path, result_dir) -> None:
    """Put a committed reproduction's verdicts into the README's opening block (`opening`)."""
    from pathlib import Path

    from pie_mlops.util.atomic import write_text
    from pie_mlops.util.errors import PieError

    readme = Path(readme_path).read_text(encoding="utf-8")
    block = readme_block(readme)
    if block is None:
        raise PieError(f"{readme_path}: no `{BEGIN} NAME -->` ... `{END}` block to fill")
    write_text(readme_path, readme.replace(block[1], opening(*load(result_dir))))
