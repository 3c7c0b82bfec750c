"""The train stage with its tracking writer (pie_mlops/jobs/writer.py): a failure while tracking
one model stops the stage with that error, leaves nothing half-written, and a rerun resumes."""

from __future__ import annotations

import pytest

from pie_mlops.stages.materialize import materialize
from pie_mlops.stages.train import train as train_stage
from pie_mlops.util.errors import PieError
from plans import plan

NAME = "pie-synthetic_nli-bert"


def test_a_tracking_failure_stops_the_stage_and_a_rerun_resumes(tmp_path, monkeypatch):
    from mlflow import MlflowClient

    from pie_mlops.tracking.models import ModelRun

    materialize(plan("materialize", data_dir=str(tmp_path / "data")), ["synthetic_nli"], progress=False)
    params = plan("train", profile="default", dataset="synthetic_nli", arch="bert", model_path="tiny-random",
                  data_dir=str(tmp_path / "data"), seeds=[0, 1, 2], epochs=1, max_length=64, predict_train=False,
                  snapshot_epochs=[], max_train_examples=100, seed_processes=1,
                  predictions_dir=str(tmp_path / "predictions"), best_params=str(tmp_path / "best_{dataset}_{arch}.yaml"))
    for var in ("MLFLOW_REGISTRY_URI", "MLFLOW_RUN_ID", "MLFLOW_EXPERIMENT_NAME"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/mlflow.db")
    real, tried = ModelRun.register, []

    def flaky(self, name, alias):
        tried.append(alias)
        if alias == "dense-s1":
            raise PieError("the store went away")
        return real(self, name, alias)

    with monkeypatch.context() as mp:
        mp.setattr(ModelRun, "register", flaky)
        with pytest.raises(PieError, match="the store went away"):
            train_stage(params, progress=False)
    assert tried == ["dense-s0", "dense-s1"]  # seed 2 was never tracked: the loop stopped
    client = MlflowClient()
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()])
    assert sorted((r.data.tags["seed"], r.info.status) for r in runs) == [("0", "FINISHED"), ("1", "FAILED")]
    assert [v.tags["seed"] for v in client.search_model_versions(f"name = '{NAME}'")] == ["0"]
    out = tmp_path / "predictions" / "synthetic_nli" / "bert" / "dense"
    assert sorted(p.parent.name for p in out.glob("s*/*.parquet")) == ["s0", "s0"]  # validation, test
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no staging left

    records = train_stage(params, progress=False)
    assert [(r["seed"], r["status"]) for r in records] == [(0, "skipped"), (1, "trained"), (2, "trained")]
    versions = client.search_model_versions(f"name = '{NAME}'")
    assert sorted(v.tags["seed"] for v in versions) == ["0", "1", "2"]
