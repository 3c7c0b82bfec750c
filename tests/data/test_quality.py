"""The data-quality gate's expectations (pie_mlops/data/quality.py) with the real great-expectations.

Small datasets are written with the contract writer, one defect planted at a time, and
each test asserts that exactly the expected expectation fails, naming the planted ids.
The `check` stage around it (names, CLI, MLflow): test_check_stage.py.
"""

from __future__ import annotations

import json

import pandas as pd
import pytest

from pie_mlops.data.contract import SPLITS
from pie_mlops.data.quality import validate_dataset
from quality_fixture import (CLASSES, duplicate_id, failing, gx_imported, gx_project_here, leak,  # noqa: F401
                             make_splits, params, write)


def test_clean_dataset_passes_and_writes_reports(tmp_path):
    path = write(tmp_path / "data", make_splits())
    summary = validate_dataset(path, tmp_path / "rep", params())
    assert summary["success"] and summary["n_failed"] == 0 and summary["n_warnings"] == 0
    assert failing(summary) == {}
    names = [c["name"] for c in summary["checks"]]
    assert {"example_id_unique", "text_not_blank", "text_length", "label_in_range", "no_train_test_leakage",
            "class_in_every_split", "min_class_share", "type_label"} <= set(names)
    text = (tmp_path / "rep" / "result.json").read_text(encoding="utf-8")
    assert json.loads(text) == summary
    assert text == json.dumps(summary, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    assert (tmp_path / "rep" / "data_docs" / "index.html").is_file()
    assert "toy" in (tmp_path / "rep" / "data_docs" / "index.html").read_text(encoding="utf-8")
    assert sorted(p.name for p in (tmp_path / "rep").iterdir()) == ["data_docs", "result.json"]  # no temp leftovers


def _missing_class(s):
    s["validation"] = s["validation"][s["validation"]["label"] != 2].reset_index(drop=True)
    return "validation/pos"


def _blank_text(s):
    s["test"].loc[1, "text"] = " \t\n "
    return "ex-0034"


def _invisible_text(s):  # issue 30 §8: only zero-width spaces passed the \S regex
    s["test"].loc[1, "text"] = "\u200b\u200b\u200b"
    return "ex-0034"


def _label_out_of_range(s):
    s["train"].loc[2, "label"] = 3
    return "ex-0002"


def _too_long(s):
    s["train"].loc[5, "text"] = "x" * 201
    return "ex-0005"



@pytest.mark.parametrize(("plant", "expected"), [
    (leak, "no_train_test_leakage"),
    (_missing_class, "class_in_every_split"),
    (duplicate_id, "example_id_unique"),
    (_blank_text, "text_not_blank"),
    (_invisible_text, "text_not_blank"),
    (_label_out_of_range, "label_in_range"),
    (_too_long, "text_length"),
])
def test_each_defect_is_caught_alone(tmp_path, plant, expected):
    splits = make_splits()
    bad_id = plant(splits)
    summary = validate_dataset(write(tmp_path / "data", splits), tmp_path / "rep", params(max_chars=200))
    assert not summary["success"]
    assert list(failing(summary)) == [expected]
    assert bad_id in failing(summary)[expected]
    entry = next(c for c in summary["checks"] if c["name"] == expected)
    assert entry["severity"] == "critical" and entry["unexpected_count"] >= 1


def test_schema_problems_are_reported_not_crashed(tmp_path):
    path = write(tmp_path / "data", make_splits())
    for split in SPLITS:  # a hand-made file: no text_pair column, labels stored as floats
        rewrite_split(path, split, lambda df: df.drop(columns=["text_pair"]).assign(label=df["label"].astype(float)))
    summary = validate_dataset(path, tmp_path / "rep", params())
    assert not summary["success"]
    assert {"column_text_pair", "type_label"} <= set(failing(summary))
    assert next(c for c in summary["checks"] if c["name"] == "type_label")["observed"] == "float64"


def test_small_class_share_warns_but_passes(tmp_path):
    splits = make_splits()
    summary = validate_dataset(write(tmp_path / "data", splits), tmp_path / "rep", params(min_class_share=0.4))
    assert summary["success"] and summary["n_failed"] == 0 and summary["n_warnings"] == 1
    warn = next(c for c in summary["checks"] if c["name"] == "min_class_share")
    assert warn["severity"] == "warning" and not warn["success"]
    assert warn["unexpected_count"] == 3 and sorted(warn["sample_ids"]) == sorted(CLASSES)


def test_sample_ids_are_capped(tmp_path):
    splits = make_splits()
    splits["train"]["label"] = 7  # every train row out of range
    summary = validate_dataset(write(tmp_path / "data", splits), tmp_path / "rep", params(sample_ids=2))
    entry = next(c for c in summary["checks"] if c["name"] == "label_in_range")
    assert entry["unexpected_count"] == 24 and entry["sample_ids"] == ["ex-0000", "ex-0001"]


def rewrite_split(path, split, change):
    """Rewrite one split with plain pandas, bypassing the contract writer, to plant what it refuses."""
    file = path / f"{split}.parquet"
    change(pd.read_parquet(file)).to_parquet(file)


def test_multi_label_passes_and_its_defects_are_caught(tmp_path):
    summary = validate_dataset(write(tmp_path / "ok", make_splits("multi_label"), task="multi_label"),
                               tmp_path / "rep_ok", params())
    assert summary["success"] and failing(summary) == {}
    assert {"labels_in_range", "labels_binary", "labels_at_least_one"} <= {c["name"] for c in summary["checks"]}

    splits = make_splits("multi_label")
    splits["train"].at[1, "labels"] = [0, 0, 0]
    path = write(tmp_path / "bad", splits, task="multi_label")

    def plant(df):
        df.at[0, "labels"] = [1, 0, 0, 1]  # a fourth label that label_names does not have
        df.at[1, "labels"] = [1, 2, 0]
        return df

    rewrite_split(path, "test", plant)
    summary = validate_dataset(path, tmp_path / "rep_bad", params())
    assert failing(summary) == {"labels_at_least_one": ["ex-0001"], "labels_in_range": ["ex-0033"],
                                "labels_binary": ["ex-0034"]}


def test_text_pair_dataset_passes_and_blank_pair_fails(tmp_path):
    splits = make_splits(pairs=True)
    # Same premise with another hypothesis is a different example, not leakage (as in NLI).
    splits["test"].loc[2, "text"] = splits["train"].loc[0, "text"]
    summary = validate_dataset(write(tmp_path / "ok", splits), tmp_path / "rep_ok", params())
    assert summary["success"] and failing(summary) == {}
    assert "text_pair_not_blank" in {c["name"] for c in summary["checks"]}

    splits["validation"].loc[0, "text_pair"] = "   "
    summary = validate_dataset(write(tmp_path / "bad", splits), tmp_path / "rep_bad", params())
    assert failing(summary) == {"text_pair_not_blank": ["ex-0024"]}


def test_data_docs_keep_every_run_and_render_offline(tmp_path):
    """Issue 29: the Checkpoint `<dataset>.data` and its suites are saved in `gx/`; each run's
    results stay in its store, so the Data Docs beside the report list them all; and the
    copy fetches nothing from the network (GX's own pages load Bootstrap and jQuery from CDNs)."""
    import re

    import great_expectations as gx

    path = write(tmp_path / "data", make_splits())
    for _ in range(3):
        validate_dataset(path, tmp_path / "rep", params())
    context = gx.get_context(mode="file", project_root_dir=str(tmp_path))
    suites = {v.suite.name for v in context.checkpoints.get("toy.data").validation_definitions}
    assert suites == {f"toy.data.{f}" for f in ("examples", "train_test_keys", "class_counts", "class_share")}
    docs = tmp_path / "rep" / "data_docs"
    index = (docs / "index.html").read_text(encoding="utf-8")
    runs = set(re.findall(r"\d{8}T\d{6}\.\d+Z", index))
    assert len(runs) == 3 and index.count('class="passed"') == 3 * 4  # 3 runs x 4 suites
    for link in re.findall(r'href="([^"]+)"', index):
        assert (docs / link).is_file(), link
    for page in docs.rglob("*.html"):
        html = page.read_text(encoding="utf-8")
        fetched = re.findall(r'(?:src|<link[^>]*href)="(https?://[^"]+)"|url\([\'"]?(https?://[^)]+)\)', html)
        assert not fetched, (page, fetched[:3])


def test_leakage_is_an_expectation_on_the_texts(tmp_path):
    """Not a boolean computed in pandas: the normalised texts of train and test, each once per
    split, are expected to be unique; a leaked text names both of its examples."""
    splits = make_splits()
    leak(splits)
    summary = validate_dataset(write(tmp_path / "data", splits), tmp_path / "rep", params(max_chars=200))
    entry = next(c for c in summary["checks"] if c["name"] == "no_train_test_leakage")
    assert entry["expectation"] == "ExpectColumnValuesToBeUnique" and entry["frame"] == "train_test_keys"
    assert sorted(entry["sample_ids"]) == ["ex-0000", "ex-0033"] and entry["unexpected_count"] == 2
