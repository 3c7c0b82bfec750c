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
