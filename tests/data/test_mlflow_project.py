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
    logged = {a.path for a in client.list_artifacts(found.info.run_id, "data_checks/synthetic_nli")}
    assert logged == {f"data_checks/synthetic_nli/{f}" for f in ("result.json", "summary.html", "data_docs")}
