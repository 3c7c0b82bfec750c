"""The MLflow Projects front door, for real: `mlflow run . -e check` in a fresh clone logs the
gate's result and Data Docs to the run that MLflow made for it."""

import os

from conftest import run


def test_mlflow_run_check_logs_the_gate(tiny_repo, tmp_path):
    run(["pie-mlops", "materialize"], tiny_repo)
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    os.environ["MLFLOW_TRACKING_URI"] = uri  # inherited by `mlflow run` through conftest.run
    try:
        out = run(["mlflow", "run", ".", "-e", "check", "-P", "dataset=synthetic_nli", "--env-manager", "local"],
                  tiny_repo)
    finally:
        del os.environ["MLFLOW_TRACKING_URI"]
    assert "synthetic_nli: passed" in out.stdout

    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    [found] = client.search_runs([e.experiment_id for e in client.search_experiments()])
    assert found.info.status == "FINISHED" and found.data.params == {"dataset": "synthetic_nli"}
    # No --experiment-name: in the project directory MLflow still puts its run in the project's
    # experiment (pie_mlops/tracking/plugin.py), tagged as model training; no empty Default left.
    [experiment] = client.search_experiments()
    assert experiment.name == "pie-mlops" and found.info.experiment_id == experiment.experiment_id
    assert experiment.tags.get("mlflow.experimentKind") == "custom_model_development"
    logged = {a.path for a in client.list_artifacts(found.info.run_id, "data_checks/synthetic_nli")}
    assert logged == {f"data_checks/synthetic_nli/{f}" for f in ("result.json", "summary.html", "data_docs")}



def test_mlflow_run_compare_and_report_log_their_outputs(tiny_repo, tmp_path):
    from compare_fixture import make_study

    run(["pie-mlops", "materialize"], tiny_repo)
    _, preds = make_study(tmp_path / "study", seeds=3)  # the same synthetic_nli, byte for byte
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    os.environ["MLFLOW_TRACKING_URI"] = uri
    try:
        run(["mlflow", "run", ".", "-e", "compare", "-P", f"predictions={preds}", "-P", "dataset=synthetic_nli",
             "-P", "arch=bert", "-P", f"out={tmp_path}/cmp/synthetic_nli/bert", "--env-manager", "local"], tiny_repo)
        run(["mlflow", "run", ".", "-e", "report", "-P", f"compare_root={tmp_path}/cmp", "-P", f"out={tmp_path}/pies",
             "--env-manager", "local"], tiny_repo)
    finally:
        del os.environ["MLFLOW_TRACKING_URI"]
    assert (tmp_path / "cmp" / "synthetic_nli" / "bert" / "analysis.json").is_file()
    assert (tmp_path / "pies" / "index.html").is_file()

    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()],
                              order_by=["attributes.start_time ASC"])
    assert [r.info.status for r in runs] == ["FINISHED", "FINISHED"]
    compare_files = {a.path for a in client.list_artifacts(runs[0].info.run_id, "compare/bert")}
    assert {"compare/bert/summary.json", "compare/bert/pies.parquet", "compare/bert/report"} <= compare_files
    assert "report/index.html" in {a.path for a in client.list_artifacts(runs[1].info.run_id, "report")}
