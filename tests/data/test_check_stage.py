"""The `check` stage (`pie-mlops check`) around the data-quality gate: dataset names, the CLI's exit
codes, logging to an active MLflow run, the error listing the failures, and the shipped datasets.
The expectations themselves: test_quality.py.
"""

from __future__ import annotations

import json

import pytest

from pie_mlops.cli import main
from pie_mlops.util.errors import DataQualityError, PieError
from plans import plan
from pie_mlops.stages.check import check, resolve_names
from quality_fixture import (duplicate_id, failing, gx_imported, gx_project_here, leak,  # noqa: F401
                             make_splits, write)


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
    leaked = leak(splits)
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
    duplicate_id(splits)
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
