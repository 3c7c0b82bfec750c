"""The claims table, first on the report page: each of the paper's claims in plain words, the
measure and the figure that decided it (its primary group's statistic with its CI or p-value),
and the verdict; then the same statistics for our own methods (claims.json,
pie_mlops.analysis.claims)."""

from __future__ import annotations

from html import escape

TITLES = {
    "a_pie_accuracy_collapse": "(a) Accuracy collapses on PIEs",
    "b_el2n_enrichment": "(b) PIEs are high-EL2N examples",
    "c_longer_more_complex": "(c) PIEs are longer and more complex",
    "d1_class_proportional": "(d1) PIEs occur in proportion to the classes",
    "d2_damage_every_class": "(d2) PIEs hurt every class",
    "d_class_independent": "(d) PIEs arise in every class (rules before 2026-12-06)",
    "e_transformer_more_prone": "(e) The transformer is more prone",
}
COLOURS = {"holds": "#1a7f37", "refuted": "#b42318", "inconclusive": "#8a6d00"}


def _num(v) -> str:
    if v is None:
        return "n/a"
    return f"{v:.3g}" if abs(v) < 1e-2 and v != 0 else f"{v:.3f}"


def figure(entry: dict) -> str:
    """The figure that decided: the statistic with its CI and/or p-value."""
    if entry.get("statistic") is None:
        return "n/a"
    text = f"{escape(entry.get('statistic_name') or 'statistic')} = {_num(entry['statistic'])}"
    ci = entry.get("ci")
    if ci and ci[0] is not None:
        text += f", 95% CI [{_num(ci[0])}, {_num(ci[1])}]"
    if entry.get("p_value") is not None:
        text += f", p = {_num(entry['p_value'])}"
    return text


def _verdict(v: str) -> str:
    return f"<b style='color:{COLOURS.get(v, '#222')}'>{escape(v)}</b>"


def _original(e: dict) -> str:
    o = e.get("original")
    return (f"<br><span class='muted'>under rules {escape(str(o.get('rules_version')))}: "
            f"{escape(str(o.get('verdict')))}</span>" if o else "")


def _ours(claims: dict) -> str:
    ours = claims.get("our_methods") or {}
    rows = [f"<tr><td>{escape(TITLES.get(k, k))}</td><td>{escape(r['group'])}</td><td>{figure(r)}</td>"
            f"<td>{_verdict(r.get('verdict', 'inconclusive'))}</td></tr>" for k, rs in ours.items() for r in rs]
    if not rows:
        return ""
    return ("<h3>Our methods (os, structured, global threshold): the same statistics, outside the paper's "
            "verdicts</h3><table><tr><th>claim</th><th>group</th><th>we measure</th><th>verdict</th></tr>"
            + "".join(rows) + "</table>")


def claims_html(claims: dict) -> str:
    """One table per dataset's claims.json: claim, the paper's statement, ours, verdict."""
    seeds = ", ".join(f"{a}: {v.get('dense')} dense / {v.get('pruned')} pruned seeds"
                      for a, v in sorted(claims.get("seeds_per_group", {}).items()))
    rows = []
    for key, title in TITLES.items():
        e = claims.get(key)
        if not e:
            continue
        decided = f"decided by {escape(e['decided_by'])}; " if e.get("decided_by") else ""
        rows.append(f"<tr><td>{escape(title)}</td><td>{escape(e.get('paper', ''))}</td>"
                    f"<td>{escape(e.get('measure', ''))}: {figure(e)}<br><span class='muted'>{decided}"
                    f"{escape(e.get('note', ''))}</span></td><td>{_verdict(e.get('verdict', 'inconclusive'))}"
                    f"{_original(e)}</td></tr>")
    excluded = next((e.get("excluded") for e in claims.values() if isinstance(e, dict) and e.get("excluded")), {})
    note = (f"<p class='how'>{len(excluded)} paper-method group(s) left out of every claim (collapsed, or not "
            f"above the noise floor): {escape(', '.join(sorted(excluded)))}</p>" if excluded else "")
    version = escape(str(claims.get("rules_version", "before 2026-12-06 (unversioned)")))
    return (f"<h2>The paper's claims on {escape(str(claims.get('dataset', '?')))}</h2>"
            f"<p class='how'>Rules {version}. Verdicts use only the paper's methods (ft/wr/ai, per-layer "
            f"threshold), groups not collapsed and above the noise floor; each claim is decided by one primary "
            f"group, the others are secondary ({escape(seeds)}). How each is tested: docs/claims.md.</p>"
            "<table><tr><th>claim</th><th>the paper says</th><th>we measure</th><th>verdict</th></tr>"
            + "".join(rows) + "</table>" + note + _ours(claims))
