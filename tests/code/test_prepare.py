import pandas as pd

from pie_mlops.data.prepare import assign_ids, dedup_key, deduplicate, make_example_id


def test_dedup_key_ignores_case_and_whitespace():
    assert dedup_key("A  good\nfilm ") == dedup_key("a good film")
    assert dedup_key("a", "b") != dedup_key("a", None)


def test_example_id_is_stable_and_content_derived():
    assert make_example_id("rt", "A good film") == make_example_id("rt", "a  good film")
    assert make_example_id("rt", "A good film") != make_example_id("bbc", "A good film")
    assert make_example_id("rt", "x").startswith("rt-") and len(make_example_id("rt", "x")) == 3 + 16


def test_deduplicate_keeps_first_copy_and_drops_conflicts():
    df = pd.DataFrame({"text": ["good", "Good ", "bad", "meh", "MEH"], "label": [1, 1, 0, 0, 1]})
    kept, stats = deduplicate(df, "label")
    assert kept["text"].tolist() == ["good", "bad"]
    assert stats == {"n_duplicates_removed": 1, "n_conflicting_removed": 2}


def test_deduplicate_multilabel_compares_label_sets():
    df = pd.DataFrame({"text": ["a", "a", "b", "b"], "labels": [[0, 1], [1, 0], [0], [1]]})
    kept, stats = deduplicate(df, "labels")
    assert kept["text"].tolist() == ["a"]
    assert stats == {"n_duplicates_removed": 1, "n_conflicting_removed": 2}


def test_assign_ids_unique_after_dedup():
    df = pd.DataFrame({"text": ["x", "y", "x"], "text_pair": ["p", "p", "q"], "label": [0, 1, 0]})
    ids = assign_ids(df, "nli")["example_id"]
    assert ids.is_unique
