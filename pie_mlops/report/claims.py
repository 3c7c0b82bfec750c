"""The claims table, first on the report page: each of the paper's claims in plain words, our
figure with its CI or p-value, and the verdict (claims.json, pie_mlops.analysis.claims)."""

from __future__ import annotations

from html import escape

TITLES = {
    "a_pie_accuracy_collapse": "(a) Accuracy collapses on PIEs",
    "b_el2n_enrichment": "(b) PIEs are high-EL2N examples",
    "c_longer_more_complex": "(c) PIEs are longer and more complex",
    "d_class_independent": "(d) PIEs arise in every class",
    "e_transformer_more_prone": "(e) The transformer is more prone",
}
COLOURS = {"holds": "#1a7f37", "refuted": "#b42318", "inconclusive": "#8a6d00"}


def _num(v) -> str:
    if v is None:
        return "n/a"
    return f"{v:.3g}" if abs(v) < 1e-2 and v != 0 else f"{v:.3f}"


def figure(entry: dict) -> str:
    """Our figure in words: the statistic with its CI or p-value."""
    if entry.get("statistic") is None:
        return "n/a"
    text = f"{escape(entry.get('statistic_name', ''))} = {_num(entry['statistic'])}"
    ci = entry.get("ci")
    if ci and ci[0] is not None:
        text += f", 95% CI [{_num(ci[0])}, {_num(ci[1])}]"
    elif entry.get("p_value") is not None:
        text += f", p = {_num(entry['p_value'])}"
    return text


def claims_html(claims: dict) -> str:
    """One table per dataset's claims.json: claim, the paper's statement, ours, verdict."""
    seeds = ", ".join(f"{a}: {v.get('dense')} dense / {v.get('pruned')} pruned seeds, floor at "
                      f"{v.get('floor_per_side')} vs {v.get('floor_per_side')}"
                      for a, v in sorted(claims.get("seeds_per_group", {}).items()))
    rows = []
    for key, title in TITLES.items():
        e = claims.get(key)
        if not e:
            continue
        verdict = e.get("verdict", "inconclusive")
        rows.append(f"<tr><td>{escape(title)}</td><td>{escape(e.get('paper', ''))}</td>"
                    f"<td>{figure(e)}<br><span class='muted'>{escape(e.get('note', ''))}; "
                    f"{len(e.get('groups', []))} group(s) used</span></td>"
                    f"<td><b style='color:{COLOURS.get(verdict, '#222')}'>{escape(verdict)}</b></td></tr>")
    excluded = next((e.get("excluded") for e in claims.values() if isinstance(e, dict) and e.get("excluded")), {})
    note = (f"<p class='how'>{len(excluded)} group(s) left out of every claim (collapsed, or PIE share not "
            f"clearly above the dense-vs-dense noise floor): {escape(', '.join(sorted(excluded)))}</p>"
            if excluded else "")
    return (f"<h2>The paper's claims on {escape(str(claims.get('dataset', '?')))}</h2>"
            f"<p class='how'>Verdicts use only groups that are not collapsed and whose PIE share is above the "
            f"noise floor; a claim without such groups is inconclusive ({escape(seeds)}). "
            f"How each is tested: docs/claims.md.</p>"
            "<table><tr><th>claim</th><th>the paper says</th><th>we measure</th><th>verdict</th></tr>"
            + "".join(rows) + "</table>" + note)
