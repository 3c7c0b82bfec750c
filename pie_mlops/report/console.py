"""The closing lines of `compare` (and of `study`): the claims table, the champion of each
architecture (or why there is none) and where the report is. Pure: dicts in, text out.

It prints what claims.json and the compare results say, word for word: the verdicts are
claims.json's, never recomputed or paraphrased here.
"""

from __future__ import annotations

from pie_mlops.report.claims import TITLES, figure


def claims_lines(claims: dict) -> list[str]:
    """One line per claim: title, verdict, our figure (plain text; `figure` escapes HTML)."""
    from html import unescape

    width = max(len(t) for t in TITLES.values())
    lines = []
    for key, title in TITLES.items():
        entry = claims.get(key)
        if not isinstance(entry, dict):
            continue
        verdict = entry.get("verdict", "inconclusive")
        groups = len(entry.get("groups", []))
        lines.append(f"  {title:<{width}}  {verdict:<12}  {unescape(figure(entry))} ({groups} group(s))")
    return lines


def champion_line(result: dict) -> str:
    """`<arch>: champion <group> seed s (models:/NAME@champion)` or why there is none."""
    arch, champ = result.get("arch", "?"), result.get("champion")
    if champ:
        name = f"pie-{result.get('dataset')}-{arch}"
        version = f" v{champ['version']}" if champ.get("version") is not None else ""
        return (f"  {arch}: champion {champ.get('group')} seed {champ.get('seed')}{version} "
                f"(models:/{name}@champion)")
    return f"  {arch}: no champion: {result.get('champion_reason') or 'no pruned model qualified'}"


def details(results: list[dict]) -> list[str]:
    """Per architecture: each group's PIE count, share and accuracies, and the noise floor."""
    fmt = lambda v: "n/a" if v is None else f"{v:.3f}"  # noqa: E731
    lines = []
    for res in results:
        lines += [f"{res.get('dataset')}/{res.get('arch')}: {res.get('out')}"
                  + (f"  (MLflow run {res['run_id']})" if res.get("run_id") else ""),
                  f"  {'group':<28} {'PIEs':>6} {'share':>7} {'dense@PIE':>10} {'pruned@PIE':>11} {'pruned@all':>11}"]
        for group, s in res.get("summary", {}).items():
            if isinstance(s, dict) and "n_pies" in s:
                lines.append(f"  {group:<28} {s['n_pies']:>6} {s['pie_share']:>7.3f} {fmt(s.get('dense_acc_pie')):>10} "
                             f"{fmt(s.get('pruned_acc_pie')):>11} {fmt(s.get('pruned_acc_all')):>11}")
        floor = res.get("noise_floor") or {}
        if floor.get("floor_share") is not None:
            lines.append(f"  noise floor (dense vs dense, {floor.get('k')} vs {floor.get('k')} seeds): "
                         f"{fmt(floor['floor_share'])} [{fmt(floor.get('floor_low'))}, {fmt(floor.get('floor_high'))}]")
    return lines


def summary_text(claims: dict | None, results: list[dict], stopped: list[str] = (),
                 report: str | None = None) -> str:
    """The whole summary block. `stopped`: the baseline gate's messages for the architectures
    it stopped; `report`: the HTML report's path (None: the per-architecture pages)."""
    dataset = (claims or {}).get("dataset") or next((r.get("dataset") for r in results), "?")
    lines = [f"compare summary ({dataset})", "claims (claims.json; docs/claims.md):"]
    lines += claims_lines(claims or {}) or ["  (no claims computed)"]
    lines.append("champion:")
    lines += [champion_line(r) for r in results]
    lines += [f"  {msg}" for msg in stopped]
    if report:
        lines.append(f"report: {report}")
    else:
        lines += [f"report: {r['out']}/report/index.html" for r in results if r.get("out")]
    return "\n".join(lines)
