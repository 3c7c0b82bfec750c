"""A self-contained HTML page for one data-quality result (result.json).

Rendered from templates/data_check.html.j2 by Jinja2 with autoescape on: every value from
the data (ids, texts, GX messages) is escaped by the template engine, never by hand. The
page inlines its CSS and needs nothing from the network.
"""

from __future__ import annotations

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


def environment():
    """Jinja2 over pie_mlops/report/templates, autoescaping every value (HTML and XML)."""
    from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

    return Environment(loader=PackageLoader("pie_mlops.report", "templates"),
                       autoescape=select_autoescape(default=True, default_for_string=True),
                       undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)


def render_check_html(summary: dict, docs: str = "data_docs/index.html") -> str:
    """HTML text for one dataset's result (the dict `validate_dataset` returns)."""
    rows = []
    for c in summary["checks"]:
        label, css = _status(c)
        rows.append({"c": c, "label": label, "css": css, "row_class": {"fail": "failed", "warn": "warned"}.get(css, ""),
                     "detail": _detail(c), "ids": (c.get("sample_ids") or []) if not c["success"] else []})
    sizes = ", ".join(f"{k} {v:,}" for k, v in summary.get("n_examples", {}).items())
    page = environment().get_template("data_check.html.j2").render(s=summary, css=CSS, sizes=sizes, rows=rows,
                                                                     docs=docs)
    return page.rstrip("\n") + "\n"
