"""Scale-out on real infrastructure (issue 7): PostgreSQL, an `mlflow server` on it, and
parallel `pie-mlops worker` processes, one of them SIGKILLed mid-job; then two parallel
`pie-mlops tune` processes on one Optuna study. Nothing is mocked.

Each worker runs in its own clone of the project (as on its own machine): the MLflow server
and the PostgreSQL-backed Optuna storage are all they share.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from conftest import BIN, clone_project, run
from servers import add_user, create_database, mlflow_server, postgres_url

MODEL = "pie-synthetic_longtail-bert"


def scale_params(repo: Path, n_trials: int = 2) -> Path:
    """The tiny profile on bert only, at 2 seeds: 2 dense seeds, 2 pruned groups x 2 seeds, 1 compare.
    The workers run without tune (--no-tune), so train takes the profile's one tuned point (its
    tune space has a single choice per key): the dense models must pass the baseline gate."""
    doc = yaml.safe_load((repo / "profiles" / "tiny.yaml").read_text())  # an overlay on the defaults
    doc.setdefault("study", {})["arch"] = ["bert"]
    doc["train"] |= {k: v["choices"][0] for k, v in doc["tune"]["space"]["bert"].items()}
    doc["train"]["seeds"] = doc["prune"]["seeds"] = [0, 1]
    doc["compare"]["min_seeds"] = 2
    doc["tune"]["n_trials"] = n_trials
    # A space where 6 trials can differ (the profile's is one point): duplicates would mean the
    # joining workers sampled alike. One epoch each, as the tuning itself is not under test.
    doc["tune"]["space"] = {"bert": {"lr": {"low": 3.0e-4, "high": 3.0e-3, "log": True}, "epochs": {"choices": [1]},
                                     "batch_size": {"choices": [16, 32]}, "warmup_ratio": {"low": 0.0, "high": 0.2}}}
    path = repo / "scale.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def worker_env(tracking_uri: str | None) -> dict:
    # One thread each: two cores, several workers; and bit-identical math across processes.
    env = dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", OMP_NUM_THREADS="1",
               MKL_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    env.pop("MLFLOW_TRACKING_URI", None)
    env.pop("MLFLOW_REGISTRY_URI", None)
    if tracking_uri:
        env["MLFLOW_TRACKING_URI"] = tracking_uri
    return env


def start_worker(repo: Path, storage: str, tracking_uri: str | None, log: Path) -> subprocess.Popen:
    cmd = [str(BIN / "pie-mlops"), "--params", "scale.yaml", "worker", "--storage", storage, "--no-tune",
           "--grace-period", "6"]
    return subprocess.Popen(cmd, cwd=repo, env=worker_env(tracking_uri), stdout=open(log, "w"),
                            stderr=subprocess.STDOUT, start_new_session=True)


def pie_ids(client, run_filter: str = "tags.stage = 'compare'") -> set[tuple[str, str]]:
    exps = [e.experiment_id for e in client.search_experiments()]
    runs = client.search_runs(exps, run_filter + " and attributes.status = 'FINISHED'")
    assert len(runs) == 1, [r.info.run_id for r in runs]
    path = client.download_artifacts(runs[0].info.run_id, "compare/pies.parquet")
    frame = pd.read_parquet(path)
    return set(map(tuple, frame.loc[frame["is_pie"], ["group", "example_id"]].to_numpy().tolist()))


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """PostgreSQL + an mlflow server on it (artifacts proxied to a shared folder)."""
    base = postgres_url()
    root = tmp_path_factory.mktemp("cluster")
    backend = create_database(base, "pie_mlflow")
    with mlflow_server(backend, root / "artifacts", root, auth=True) as url:
        # docs/scaling.md's recipe: basic-auth, a worker user, its credentials in the environment
        # (of the workers, and of this process's clients).
        creds = {"MLFLOW_TRACKING_USERNAME": "pie-worker", "MLFLOW_TRACKING_PASSWORD": secrets.token_urlsafe(16)}
        add_user(url, "worker", creds["MLFLOW_TRACKING_USERNAME"], creds["MLFLOW_TRACKING_PASSWORD"])
        saved = {k: os.environ.get(k) for k in creds}
        os.environ.update(creds)
        try:
            yield {"base": base, "url": url, "root": root}
        finally:
            for k, v in saved.items():
                os.environ.pop(k) if v is None else os.environ.__setitem__(k, v)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The same grid with one worker on the embedded default (SQLite store, SQLite Optuna)."""
    repo = clone_project(tmp_path_factory.mktemp("single") / "repo")
    scale_params(repo)
    run([str(BIN / "pie-mlops"), "materialize", "-d", "synthetic_longtail"], repo)
    proc = subprocess.run([str(BIN / "pie-mlops"), "--params", "scale.yaml", "worker", "--storage",
                           "sqlite:///optuna.db", "--no-tune"], cwd=repo, env=worker_env(None),
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    from mlflow import MlflowClient

    return pie_ids(MlflowClient(tracking_uri=f"sqlite:///{repo}/mlflow.db"))


def test_three_workers_one_killed_finish_the_grid_exactly_once(cluster, reference, tmp_path):
    import optuna
    from mlflow import MlflowClient

    storage = create_database(cluster["base"], "pie_optuna_grid")
    repos = [clone_project(tmp_path / f"machine{i}") for i in range(3)]
    for repo in repos:
        scale_params(repo)
    logs = [tmp_path / f"worker{i}.log" for i in range(3)]
    procs = [start_worker(repo, storage, cluster["url"], log) for repo, log in zip(repos, logs)]
    try:
        # SIGKILL the first worker seen inside a prune job (after its "worker host:pid: prune:"
        # line). Not a fixed one: the tiny grid has 4 prune jobs, and two fast workers may
        # take them all before a third gets one (seen in CI).
        deadline, victim = time.time() + 300, None
        while time.time() < deadline and victim is None:
            victim = next((i for i, log in enumerate(logs) if ": prune:" in log.read_text()), None)
            if victim is None:
                assert any(p.poll() is None for p in procs), [log.read_text()[-2000:] for log in logs]
                time.sleep(0.2)
        assert victim is not None, "no worker reached a prune job within 300 s"
        time.sleep(0.5)
        os.killpg(procs[victim].pid, signal.SIGKILL)
        survivors = [i for i in range(3) if i != victim]
        for i in survivors:
            assert procs[i].wait(timeout=600) == 0, logs[i].read_text()[-4000:]
    finally:
        for proc in procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)

    # Every job of the grid finished exactly once (a skipped duplicate attempt does no work).
    studies = [s for s in optuna.get_all_study_names(storage) if s.startswith("pie-grid-")]
    assert len(studies) == 3  # train, prune, compare
    done, failed = {}, []
    for name in studies:
        for t in optuna.load_study(study_name=name, storage=storage).get_trials():
            if t.state.name == "COMPLETE" and "facts" in t.user_attrs:  # not a skipped duplicate
                done[t.params["job"]] = done.get(t.params["job"], 0) + 1
            failed += [t] if t.state.name == "FAIL" else []
    assert len(done) == 2 + 4 + 1 and set(done.values()) == {1}, done
    # Against a server a worker runs 2 lanes: some of its jobs were in flight together (one
    # uploading and registering while the next computed).
    assert all("2 lane(s)" in logs[i].read_text() for i in survivors)
    spans: dict = {}
    for name in studies:
        for t in optuna.load_study(study_name=name, storage=storage).get_trials():
            if t.state.name == "COMPLETE" and "facts" in t.user_attrs:
                spans.setdefault(t.user_attrs["facts"]["worker"], []).append((t.datetime_start, t.datetime_complete))
    overlapping = [w for w, ts in spans.items()
                   if any(a[0] < b[1] and b[0] < a[1] for i, a in enumerate(ts) for b in ts[i + 1:])]
    assert overlapping, spans
    assert failed, "the killed worker's job was never failed by the heartbeat"
    assert all("error" not in t.user_attrs for t in failed), [(t.params, t.user_attrs) for t in failed]  # stale, not crashed

    # The registry holds exactly one version per (group, seed); no run is left RUNNING.
    client = MlflowClient(tracking_uri=cluster["url"])
    versions = client.search_model_versions(f"name = '{MODEL}'")
    keys = [(v.tags["group"], v.tags["seed"]) for v in versions]
    assert len(keys) == 6 and len(set(keys)) == 6, sorted(keys)  # 2 dense + 2 groups x 2 seeds
    exps = [e.experiment_id for e in client.search_experiments()]
    assert not client.search_runs(exps, "attributes.status = 'RUNNING'")
    workers = {r.data.tags.get("pie.worker") for r in client.search_runs(exps, "tags.stage = 'prune'")}
    assert len(workers) >= 2  # the work really was shared

    # The comparison is the single-worker one: the same PIEs, example by example.
    assert pie_ids(client) == reference


def test_two_tune_workers_share_one_study(cluster, tmp_path):
    import optuna
    from mlflow import MlflowClient

    storage = create_database(cluster["base"], "pie_optuna_tune")
    repo = clone_project(tmp_path / "repo")
    scale_params(repo, n_trials=6)
    run([str(BIN / "pie-mlops"), "materialize", "-d", "synthetic_longtail"], repo)
    cmd = [str(BIN / "pie-mlops"), "--params", "scale.yaml", "tune", "--storage", storage]
    procs = [subprocess.Popen(cmd, cwd=repo, env=worker_env(cluster["url"]), stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=600)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    assert not any("database is locked" in out for out in outs)

    [name] = optuna.get_all_study_names(storage)  # the study alone: no lock tokens beside it
    assert name.startswith("pie-synthetic_longtail-bert-")
    study = optuna.load_study(study_name=name, storage=storage)
    finished = [t for t in study.get_trials() if t.state.name in ("COMPLETE", "PRUNED")]
    assert len(finished) == 6
    draws = [tuple(sorted(t.params.items())) for t in finished]
    assert len(set(draws)) == 6  # no duplicate trials
    client = MlflowClient(tracking_uri=cluster["url"])
    exps = [e.experiment_id for e in client.search_experiments()]
    parents = client.search_runs(exps, "tags.stage = 'tune'")
    assert len(parents) == 1  # one parent for both workers
    parent = parents[0]
    children = client.search_runs(exps, f"tags.mlflow.parentRunId = '{parent.info.run_id}'")
    assert len(children) == 6  # one nested run per trial that ran (a surplus draw makes none)
    assert sorted(t.user_attrs["mlflow_run_id"] for t in finished) == sorted(r.info.run_id for r in children)
    history = client.get_metric_history(parent.info.run_id, "best_val_accuracy")
    assert len(history) == 1  # the best parameters were logged once
    assert {f"best_{k}" for k in study.best_params} <= set(parent.data.params)
    assert float(parent.data.params["best_lr"]) == pytest.approx(study.best_params["lr"])
