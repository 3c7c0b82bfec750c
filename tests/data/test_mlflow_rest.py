"""What MLflow 3's UI reads, through a real `mlflow server`'s REST API (issue 29): the project's
experiment is tagged as model training, so the UI opens on its runs table (untagged, it
guessed GenAI and showed an empty traces page), and no empty `Default` experiment sits beside it."""

from __future__ import annotations

import json
import urllib.request

from servers import mlflow_server


def _call(url: str, path: str, body: dict | None = None) -> dict:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(f"{url}{path}", data=data, headers={"Content-Type": "application/json"})
    return json.loads(urllib.request.urlopen(req, timeout=30).read())


def test_the_experiment_is_model_training_and_alone(tmp_path, monkeypatch):
    from pie_mlops import tracking
    from pie_mlops.tracking import store  # a lazy package: its submodules are not attributes until imported

    uri = f"sqlite:///{tmp_path}/mlflow.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    for name in ("MLFLOW_RUN_ID", "MLFLOW_EXPERIMENT_NAME", "MLFLOW_REGISTRY_URI"):
        monkeypatch.delenv(name, raising=False)
    store.forget_experiments()
    with tracking.model_run("synthetic_nli-bert-dense-s0", {"stage": "train", "group": "dense", "seed": "0"},
                            {"epochs": 1}, data_dir=str(tmp_path / "data")):
        pass

    with mlflow_server(uri, tmp_path / "mlartifacts", tmp_path, proxied=False) as url:
        exp = _call(url, "/api/2.0/mlflow/experiments/get-by-name?experiment_name=pie-mlops")["experiment"]
        listed = _call(url, "/api/2.0/mlflow/experiments/search", {"max_results": 100})["experiments"]
        runs = _call(url, "/api/2.0/mlflow/runs/search", {"experiment_ids": [exp["experiment_id"]]})["runs"]
    tags = {t["key"]: t["value"] for t in exp.get("tags", [])}
    assert tags.get("mlflow.experimentKind") == "custom_model_development"
    assert [e["name"] for e in listed] == ["pie-mlops"]  # the store's empty Default was dropped
    assert [r["info"]["run_name"] for r in runs] == ["synthetic_nli-bert-dense-s0"]
