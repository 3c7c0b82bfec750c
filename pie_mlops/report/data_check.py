"""A self-contained HTML page for one data-quality result (result.json).

Rendered from templates/data_check.html.j2 by Jinja2 with autoescape on: every value from
the data (ids, texts, GX messages) is escaped by the template engine, never by hand. The
page inlines its CSS and needs nothing from the network.
"""

from __future__ import annotations

from pie_mlops.report.templating import render

CSS = """
body{font:14px/1.45 system-ui,sans-serif;margin:2rem auto;max-width:1100px;color:#222}
h1{font-size:1.4rem;margin-bottom:.2rem} .sub{color:#666;margin-bottom:1.2rem}
.badge{display:inline-block;padding:.15rem .6rem;border-radius:1rem;color:#fff;font-weight:600}
.pass{background:#2e7d32} .fail{background:#c62828} .warn{background:#ef6c00}
table{border-collapse:collapse;width:100%} th,td{padding:.35rem .6rem;border-bottom:1px solid #e3e3e3;
text-align:left;vertical-align:top} th{background:#f5f5f5} tr.failed td{background:#fdecea}
tr.warned td{background:#fff4e5} code{font-size:12px;color:#555}
"""


# GX Data Docs without their CDN stylesheets (pie_mlops/data/gx_project.py): enough of
# Bootstrap's classes for GX's pages to read well, and the history index's own.
OFFLINE_CSS = CSS + """
.container,.container-fluid{padding:0 1rem} .row{display:flex;flex-wrap:wrap;gap:1rem}
.col-md-2,.col-md-3,.col-lg-2,.col-lg-3,.col-xl-2{flex:0 0 220px} .col,.col-md-9,.col-md-10,.col-lg-9,
.col-lg-10,.col-xl-10,.col-12{flex:1 1 600px;min-width:0} .card{border:1px solid #ddd;border-radius:6px;
margin:.6rem 0} .card-header{background:#f5f5f5;padding:.4rem .8rem;font-weight:600} .card-body{padding:.6rem .8rem}
.table{width:100%} .text-success{color:#2e7d32} .text-danger{color:#c62828} .alert{padding:.5rem;border-radius:4px;
background:#fff4e5} .navbar{padding:.5rem 1rem;border-bottom:1px solid #ddd} .d-none,.sr-only{display:none}
ul.nav{list-style:none;padding-left:0} .fa,.fas,.far{display:none} img{max-height:40px}
.pie-index tr.failed td{background:#fdecea}
"""


def render_docs_index(checkpoint: str, rows: list[dict], keep: int) -> str:
    """The offline index of one checkpoint's Data Docs (GX's own fills its table by JavaScript
    from a CDN): `rows` are {suite, run_time, success, evaluated, passed, page, suite_page};
    `keep`: how many runs the store keeps."""
    return render("gx_index.html.j2", checkpoint=checkpoint, rows=rows, keep=keep)


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


def render_check_html(summary: dict, docs: str = "data_docs/index.html") -> str:
    """HTML text for one dataset's result (the dict `validate_dataset` returns)."""
    rows = []
    for c in summary["checks"]:
        label, css = _status(c)
        rows.append({"c": c, "label": label, "css": css, "row_class": {"fail": "failed", "warn": "warned"}.get(css, ""),
                     "detail": _detail(c), "ids": (c.get("sample_ids") or []) if not c["success"] else []})
    sizes = ", ".join(f"{k} {v:,}" for k, v in summary.get("n_examples", {}).items())
    return render("data_check.html.j2", s=summary, css=CSS, sizes=sizes, rows=rows, docs=docs)
