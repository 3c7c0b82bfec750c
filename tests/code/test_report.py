from pie_mlops.report.data_check import render_check_html


def _summary(success):
    checks = [
        {"name": "example_id_unique", "expectation": "ExpectColumnValuesToBeUnique", "what": "unique ids",
         "severity": "critical", "success": True, "unexpected_count": 0, "element_count": 10, "observed": None,
         "sample_ids": [], "error": None},
        {"name": "no_train_test_leakage", "expectation": "ExpectColumnValuesToBeInSet", "what": "no leak",
         "severity": "critical", "success": success, "unexpected_count": 0 if success else 2,
         "element_count": 10, "observed": None, "sample_ids": [] if success else ["rt-<b>1</b>", "rt-2"],
         "error": None},
        {"name": "min_class_share", "expectation": "ExpectColumnValuesToBeBetween", "what": "balance",
         "severity": "warning", "success": False, "unexpected_count": 1, "element_count": 2, "observed": None,
         "sample_ids": ["neg"], "error": None},
    ]
    return {"dataset": "toy", "task": "single_label", "success": success, "n_checks": 3,
            "n_failed": 0 if success else 1, "n_warnings": 1, "n_examples": {"train": 7, "test": 3},
            "checks": checks}


def test_failed_check_is_marked_with_its_sample_ids_escaped():
    html = render_check_html(_summary(success=False))
    assert "Data check: toy <span class=\"badge fail\">FAILED</span>" in html
    assert 'class="failed"' in html and "2 of 10 unexpected" in html
    assert "rt-&lt;b&gt;1&lt;/b&gt;" in html and "<b>1</b>" not in html
    assert 'class="warned"' in html  # the warning-level check is shown as a warning, not a failure


def test_page_is_self_contained():
    html = render_check_html(_summary(success=True))
    assert "badge pass\">passed" in html
    assert "http://" not in html and "https://" not in html and "<script" not in html


def test_every_value_is_escaped_by_the_template():
    """The page comes from a Jinja2 template with autoescape (issue 29): a dataset name, a
    check's description or a GX error carrying markup shows as text, never as markup."""
    summary = _summary(success=False)
    summary["dataset"] = "<script>alert(1)</script>"
    summary["task"] = "a & b"
    summary["checks"][0].update(what="<img src=x onerror=alert(2)>", error="bad <b>value</b>", success=False)
    html = render_check_html(summary)
    assert "<script>" not in html and "<img" not in html and "<b>value" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "a &amp; b" in html
    assert "error: bad &lt;b&gt;value&lt;/b&gt;" in html


def test_data_check_page_is_a_template():
    import inspect

    import pie_mlops.report.data_check as page
    from pie_mlops.report.templating import environment

    source = inspect.getsource(page)
    assert "<table" not in source and "from html import" not in source
    env = environment()
    assert env.autoescape("data_check.html.j2") and env.autoescape(None)


def test_pie_report_blocks_are_templates_that_escape_text():
    """report/pies.py builds its page and blocks from Jinja2 templates (issue 29): text passed
    in is escaped by the engine, HTML made by the report itself is kept."""
    from pie_mlops.report import pies

    section = pies._section("<b>title</b>", "how & why", "<p>body</p>")
    assert section == '<h3>&lt;b&gt;title&lt;/b&gt;</h3><p class="how">how &amp; why</p><p>body</p>'
    table = pies._table([{"group": "<x>", "n": 3, "share": None}], ["group", "n", "share"])
    assert "<td class=\"\">&lt;x&gt;</td>" in table and '<td class="num">3</td>' in table
    assert '<span class="muted">n/a</span>' in table and "<x>" not in table
    img = pies._img(b"\x89PNG", 'a "quoted" alt')
    assert img.startswith('<img alt="a &#34;quoted&#34; alt" src="data:image/png;base64,')
