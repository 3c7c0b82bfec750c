"""A self-contained HTML page for one data-quality result (result.json).

GX Data Docs fetch Bootstrap, jQuery and their table plugin from CDNs, so offline they
show an unstyled page with empty tables. This page inlines its CSS and needs nothing
from the network, so the gate's verdict is always readable in a browser.
"""

from __future__ import annotations

from html import escape

CSS = """
body{font:14px/1.45 system-ui,sans-serif;margin:2rem auto;max-width:1100px;color:#222}
h1{font-size:1.4rem;margin-bottom:.2rem} .sub{color:#666;margin-bottom:1.2rem}
.badge{display:inline-block;padding:.15rem .6rem;border-radius:1rem;color:#fff;font-weight:600}
.pass{background:#2e7d32} .fail{background:#c62828} .warn{background:#ef6c00}
table{border-collapse:collapse;width:100%} th,td{padding:.35rem .6rem;border-bottom:1px solid #e3e3e3;
text-align:left;vertical-align:top} th{background:#f5f5f5} tr.failed td{background:#fdecea}
tr.warned td{background:#fff4e5} code{font-size:12px;color:#555}
"""


def _status(check: dict) -> tuple[str, str]:
    if check["success"]:
        return "ok", "pass"
    return ("FAILED", "fail") if check["severity"] == "critical" else ("warning", "warn")


def _detail(check: dict) -> str:
    if check.get("error"):
        return f"error: {check['error']}"
    if check.get("unexpected_count") is not None:
        return f"{check['unexpected_count']} of {check['element_count']} unexpected"
    return f"observed {check['observed']}" if check.get("observed") is not None else ""


def render_check_html(summary: dict) -> str:
    """HTML text for one dataset's result (the dict `validate_dataset` returns)."""
    ok = summary["success"]
    verdict = f'<span class="badge {"pass" if ok else "fail"}">{"passed" if ok else "FAILED"}</span>'
    sizes = ", ".join(f"{k} {v:,}" for k, v in summary.get("n_examples", {}).items())
    rows = []
    for c in summary["checks"]:
        label, css = _status(c)
        row_class = {"fail": "failed", "warn": "warned"}.get(css, "")
        ids = ", ".join(escape(i) for i in c.get("sample_ids") or []) if not c["success"] else ""
        rows.append(
            f'<tr class="{row_class}"><td><span class="badge {css}">{label}</span></td>'
            f"<td>{escape(c['name'])}<br><code>{escape(c['expectation'])}</code></td>"
            f"<td>{escape(c.get('what') or '')}</td><td>{escape(c['severity'])}</td>"
            f"<td>{escape(_detail(c))}</td><td><code>{ids}</code></td></tr>"
        )
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>Data check: {escape(summary['dataset'])}"
        f"</title><style>{CSS}</style></head><body>"
        f"<h1>Data check: {escape(summary['dataset'])} {verdict}</h1>"
        f"<div class='sub'>{escape(summary.get('task', ''))} · {escape(sizes)} · {summary['n_checks']} checks, "
        f"{summary['n_failed']} failed, {summary['n_warnings']} warning(s) · great-expectations suite; full "
        f"GX Data Docs in <a href='data_docs/index.html'>data_docs/</a> (they need internet for styling)</div>"
        "<table><tr><th>status</th><th>check</th><th>what</th><th>severity</th><th>result</th>"
        f"<th>sample ids</th></tr>{''.join(rows)}</table></body></html>\n"
    )
