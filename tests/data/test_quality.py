"""The data-quality gate (`pie-mlops check`) with the real great-expectations and MLflow.

Small datasets are written with the contract writer, one defect planted at a time, and
each test asserts that exactly the expected expectation fails, naming the planted ids.
"""

from __future__ import annotations

import json

import pandas as pd
import pytest

from pie_mlops.cli import main
from pie_mlops.data.contract import SPLITS, write_dataset
from pie_mlops.data.quality import validate_dataset
from pie_mlops.util.errors import DataQualityError, PieError
from plans import plan
from pie_mlops.stages.check import check, resolve_names

CLASSES = ["neg", "neu", "pos"]
PER_CLASS = {"train": 8, "validation": 3, "test": 3}
WORDS = ["apple", "river", "stone", "cloud", "tiger", "piano", "lemon", "forest", "candle", "rocket", "violet"]


@pytest.fixture(scope="module", autouse=True)
def _gx_imported():
    """Pay great-expectations' slow import once, up front, not inside the first test's timing."""
    import great_expectations  # noqa: F401


@pytest.fixture(autouse=True)
def _gx_project_here(tmp_path, monkeypatch):
    """The GX project (`gx/`) goes where a command would put it: its working directory."""
    monkeypatch.chdir(tmp_path)


def make_splits(task: str = "single_label", pairs: bool = False) -> dict[str, pd.DataFrame]:
    splits, i = {}, 0
    for split in SPLITS:
        rows = []
        for c in range(len(CLASSES)):
            for _ in range(PER_CLASS[split]):
                text = f"{WORDS[i % len(WORDS)]} story number {i} about {CLASSES[c]}"
                row = {"example_id": f"ex-{i:04d}", "text": text, "text_pair": f"a claim about item {i}" if pairs else None}
                if task == "multi_label":  # multi-hot, as the contract says; odd rows carry two labels
                    row["labels"] = [int(k == c or (i % 2 and k == (c + 1) % 3)) for k in range(len(CLASSES))]
                else:
                    row["label"] = c
                rows.append(row)
                i += 1
        splits[split] = pd.DataFrame(rows)
    return splits


def write(root, splits, name="toy", task="single_label"):
    meta = {"name": name, "task": task, "label_names": CLASSES, "source": "tests", "license": "CC0-1.0",
            "synthetic": True}
    return write_dataset(root, name, splits, meta)


def params(**overrides):
    return plan("check", **overrides).model_dump()


def failing(summary: dict) -> dict[str, list[str]]:
    return {c["name"]: c["sample_ids"] for c in summary["checks"] if not c["success"]}


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


def _leak(s):  # a test text that is a train text up to case and spacing
    s["test"].loc[0, "text"] = "  " + s["train"].loc[0, "text"].upper().replace(" ", "   ") + " "
    return "ex-0033"  # first test row: 24 train and 9 validation rows come before it


def _missing_class(s):
    s["validation"] = s["validation"][s["validation"]["label"] != 2].reset_index(drop=True)
    return "validation/pos"


def _duplicate_id(s):
    s["validation"].loc[0, "example_id"] = "ex-0003"
    return "ex-0003"


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
    (_leak, "no_train_test_leakage"),
    (_missing_class, "class_in_every_split"),
    (_duplicate_id, "example_id_unique"),
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


def test_resolve_names(tmp_path):
    write(tmp_path, make_splits(), name="b")
    write(tmp_path, make_splits(), name="a")
    (tmp_path / ".a.tmp-1").mkdir()
    (tmp_path / ".a.tmp-1" / "meta.json").write_text("{}")
    assert resolve_names(["all"], tmp_path) == ["a", "b"]
    assert resolve_names(["b", "a", "b"], tmp_path) == ["b", "a"]
    with pytest.raises(PieError, match="pie-mlops materialize"):
        resolve_names(["c"], tmp_path)
    with pytest.raises(PieError, match="no datasets"):
        resolve_names(["all"], tmp_path / "empty")


def run_cli(argv, capsys) -> tuple[int, str, str]:
    try:
        main(argv)
        code = 0
    except SystemExit as exc:
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_exit_codes(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no params.yaml here: the stage defaults apply
    write(tmp_path / "data", make_splits(), name="good")
    splits = make_splits()
    leaked = _leak(splits)
    write(tmp_path / "data", splits, name="leaky")
    common = ["--data-dir", str(tmp_path / "data"), "--report-dir", str(tmp_path / "rep")]

    code, out, err = run_cli(["check", "good", *common], capsys)
    assert code == 0, err
    assert "good: passed" in out and (tmp_path / "rep" / "good" / "data_docs" / "index.html").is_file()

    code, out, err = run_cli(["check", "all", *common], capsys)
    assert code == 1
    assert "good: passed" in out and "leaky: FAILED" in out  # every dataset is reported before the gate
    assert "leaky/no_train_test_leakage: 2 unexpected" in err and leaked in err
    assert json.loads((tmp_path / "rep" / "leaky" / "result.json").read_text())["success"] is False

    code, _, err = run_cli(["check", "missing", *common], capsys)
    assert code == 2
    assert "missing" in err and "pie-mlops materialize" in err and len(err.strip().splitlines()) == 1


def test_logs_to_mlflow_only_when_a_run_is_active(tmp_path, monkeypatch):
    import mlflow
    from mlflow.tracking import MlflowClient

    write(tmp_path / "data", make_splits(), name="toy")
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    mlflow.set_tracking_uri(uri)
    try:
        # Outside a run nothing is logged (and nothing fails).
        check(plan("check", report_dir=str(tmp_path / "rep")), ["toy"], data_dir=str(tmp_path / "data"))
        experiment = mlflow.create_experiment("checks", artifact_location=(tmp_path / "artifacts").as_uri())
        with mlflow.start_run(experiment_id=experiment) as run:
            summaries = check(plan("check", report_dir=str(tmp_path / "rep")), ["toy"], data_dir=str(tmp_path / "data"))
        assert [s["success"] for s in summaries] == [True]
        client = MlflowClient()
        logged = {a.path for a in client.list_artifacts(run.info.run_id, "data_checks/toy")}
        assert logged == {f"data_checks/toy/{f}" for f in ("result.json", "summary.html", "data_docs")}
        docs = {a.path for a in client.list_artifacts(run.info.run_id, "data_checks/toy/data_docs")}
        assert "data_checks/toy/data_docs/index.html" in docs
        assert len(mlflow.search_runs([experiment])) == 1
    finally:
        mlflow.set_tracking_uri(None)


def test_check_raises_data_quality_error_listing_failures(tmp_path):
    splits = make_splits()
    _duplicate_id(splits)
    write(tmp_path / "data", splits, name="dups")
    with pytest.raises(DataQualityError, match=r"dups/example_id_unique: 2 unexpected \(e\.g\. ex-0003, ex-0003\)"):
        check(plan("check", report_dir=str(tmp_path / "rep")), ["dups"], data_dir=str(tmp_path / "data"))


@pytest.mark.slow
def test_shipped_datasets_all_pass(tmp_path):
    from plans import plan
    from pie_mlops.stages.materialize import materialize

    paths = materialize(plan("materialize", data_dir=str(tmp_path / "data")), progress=False)
    summaries = check(plan("check", report_dir=str(tmp_path / "rep")), ["all"], data_dir=str(tmp_path / "data"))
    assert sorted(s["dataset"] for s in summaries) == sorted(p.name for p in paths)
    assert all(s["success"] and s["n_warnings"] == 0 for s in summaries), [failing(s) for s in summaries]


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
    _leak(splits)
    summary = validate_dataset(write(tmp_path / "data", splits), tmp_path / "rep", params(max_chars=200))
    entry = next(c for c in summary["checks"] if c["name"] == "no_train_test_leakage")
    assert entry["expectation"] == "ExpectColumnValuesToBeUnique" and entry["frame"] == "train_test_keys"
    assert sorted(entry["sample_ids"]) == ["ex-0000", "ex-0033"] and entry["unexpected_count"] == 2
