"""Resume after a crash, for real: `pie-mlops prune` in a subprocess, killed with SIGKILL in the
middle of a run, then run again. It finishes the work without redoing finished pairs, leaves no
run RUNNING and no duplicate version, and no half-written file."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from stage_fixtures import tiny_study

from pie_mlops.stages.prune import DEFAULTS as PRUNE
from pie_mlops.stages.train import DEFAULTS as TRAIN
from pie_mlops.stages.train import train as train_stage

NAME = "pie-synthetic_nli-bert"
BIN = Path(sys.executable).parent


def _client(uri):
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=uri)


def _prune_runs(client):
    exps = [e.experiment_id for e in client.search_experiments()]
    return client.search_runs(exps, "tags.stage = 'prune'", max_results=1000)


def test_sigkill_mid_prune_then_rerun_finishes_cleanly(tmp_path, tokenizer, monkeypatch):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    for var in ("MLFLOW_REGISTRY_URI", "MLFLOW_RUN_ID", "MLFLOW_EXPERIMENT_NAME"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.chdir(tmp_path)
    common = tiny_study(tmp_path, tokenizer)
    train_stage(dict(TRAIN, **common, seeds=[0, 1], epochs=1), progress=False)
    prune = dict(PRUNE, **common, criteria=["magnitude", "random"], schedules=["os"], sparsities=[0.3, 0.6, 0.9],
                 seeds=[0, 1], recovery_steps=40)  # a few seconds per model: time to kill one mid-run
    (tmp_path / "params.yaml").write_text(yaml.safe_dump({"prune": prune}))
    cmd = [str(BIN / "pie-mlops"), "prune"]
    env = dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ['PATH']}")

    proc = subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    client = _client(uri)
    deadline = time.time() + 240
    try:
        while time.time() < deadline:  # wait for one finished model and one in flight
            runs = _prune_runs(client)
            statuses = [r.info.status for r in runs]
            if statuses.count("FINISHED") >= 1 and "RUNNING" in statuses:
                break
            assert proc.poll() is None, "prune ended before it could be killed"
            time.sleep(0.2)
        else:
            pytest.fail("no prune run started in time")
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    killed = [r for r in _prune_runs(client) if r.info.status == "RUNNING"]
    assert killed, "SIGKILL left no run RUNNING: nothing to recover from"
    done_before = {r.info.run_id for r in _prune_runs(client) if r.info.status == "FINISHED"}

    out = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "left RUNNING by a killed process" in out.stderr + out.stdout

    runs = _prune_runs(client)
    assert not [r for r in runs if r.info.status == "RUNNING"]
    for r in killed:
        again = client.get_run(r.info.run_id)
        assert again.info.status == "KILLED" and "pie.reaped" in again.data.tags
    finished = [r for r in runs if r.info.status == "FINISHED"]
    pairs = [(r.data.tags["group"], r.data.tags["seed"]) for r in finished]
    assert len(pairs) == len(set(pairs)) == 3 * 2 * 2  # every (group, seed) exactly once
    assert done_before <= {r.info.run_id for r in finished}  # finished work was not redone
    versions = client.search_model_versions(f"name = '{NAME}'")
    assert len(versions) == 2 + 12  # dense seeds + one per pruned (group, seed): no duplicate
    assert {v.run_id for v in versions} >= {r.info.run_id for r in finished}
    leftovers = [p for p in (tmp_path / "predictions").rglob("*") if p.name.startswith(".") or ".tmp" in p.name]
    assert not leftovers
    assert len(list((tmp_path / "predictions").rglob("test.parquet"))) == 2 + 12
