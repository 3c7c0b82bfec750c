"""Issue 17 items 5-9: the tracking store under faults, with real processes and real stores.

An unreachable, silent, corrupt or read-only store is one line and exit 2 before anything is
written; two processes creating a SQLite store, or training the same model, at once are
serialised; a killed `mlflow run` does not leave its run RUNNING for ever.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from conftest import BIN, OFFLINE_ENV, ROOT, clone_project, run

PASSWORD = "s3cret-pw"


def _env(uri: str | None = None, **extra) -> dict:
    env = dict(os.environ, **OFFLINE_ENV, PYTHONPATH=str(ROOT), PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    for var in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI", "MLFLOW_RUN_ID", "MLFLOW_EXPERIMENT_NAME",
                "MLFLOW_HTTP_REQUEST_TIMEOUT", "MLFLOW_HTTP_REQUEST_MAX_RETRIES"):
        env.pop(var, None)
    if uri:
        env["MLFLOW_TRACKING_URI"] = uri
    return {**env, **extra}


def _project(tmp_path: Path) -> Path:
    """A directory with the tiny profile as params.yaml (no data needed: the check comes first)."""
    work = tmp_path / "work"
    work.mkdir()
    shutil.copy2(ROOT / "profiles" / "tiny.yaml", work / "params.yaml")
    return work


def _one_line_exit_2(cmd: list[str], cwd: Path, env: dict, limit: float = 60) -> tuple[str, float]:
    start = time.monotonic()
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=limit)
    took = time.monotonic() - start
    lines = [line for line in proc.stderr.splitlines() if line.strip() and "INFO" not in line]
    assert proc.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: "), (proc.returncode, proc.stderr)
    return lines[0], took


@pytest.fixture
def silent_port():
    """A local socket that accepts connections and never answers."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(64)
    held, stop = [], threading.Event()

    def accept():
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    stop.set()
    thread.join()
    for conn in held:
        conn.close()
    server.close()


def test_unreachable_and_silent_servers_fail_in_one_line(tmp_path, silent_port):
    work = _project(tmp_path)
    with socket.socket() as free:  # a port nobody listens on: connection refused
        free.bind(("127.0.0.1", 0))
        refused = free.getsockname()[1]
    for port, why in [(refused, "refused"), (silent_port, "timed out")]:
        # The password in MLflow's variable: one inside the URI is refused before any request (issue 30).
        uri = f"http://127.0.0.1:{port}"
        line, took = _one_line_exit_2([str(BIN / "pie-mlops"), "train", "--seeds", "0"], work,
                                      _env(uri, MLFLOW_TRACKING_USERNAME="pie", MLFLOW_TRACKING_PASSWORD=PASSWORD))
        assert uri in line and why in line.lower(), line
        assert PASSWORD not in line and took < 45, (line, took)
    assert sorted(p.name for p in work.iterdir()) == ["params.yaml"]  # no predictions/, nothing else


def test_corrupt_and_read_only_sqlite_store(tmp_path):
    work = _project(tmp_path)
    (work / "mlflow.db").write_bytes(b"this is not a database\n" * 100)
    line, _ = _one_line_exit_2([str(BIN / "pie-mlops"), "prune"], work, _env())
    assert line.startswith("error: mlflow.db: the MLflow store is not usable (file is not a database)"), line
    assert not (work / "predictions").exists() and not (work / "mlartifacts").exists()

    # Read-only: a store this user cannot write (as root: without the capability to ignore modes).
    shared = tmp_path / "ro"
    shared.mkdir()
    try:
        shutil.copy2(work / "params.yaml", shared / "params.yaml")
        sqlite = subprocess.run([sys.executable, "-c", "import sqlite3; sqlite3.connect('mlflow.db').execute("
                                 "'create table t (x)').connection.commit()"], cwd=shared, check=True)
        assert sqlite.returncode == 0
        os.chmod(shared / "mlflow.db", 0o444)
        os.chmod(shared, 0o555)
        drop = ["setpriv", "--bounding-set=-dac_override,-dac_read_search", "--"] if os.geteuid() == 0 else []
        start = time.monotonic()
        proc = subprocess.run([*drop, str(BIN / "pie-mlops"), "train"], cwd=shared, env=_env(), capture_output=True,
                              text=True, timeout=60)
        assert time.monotonic() - start < 60
        assert proc.returncode == 2 and proc.stderr.strip().splitlines() == [
            "error: mlflow.db: the MLflow store is read-only; make it and ./ writable, or set "
            "MLFLOW_TRACKING_URI to another store"], proc.stderr
        assert sorted(p.name for p in shared.iterdir()) == ["mlflow.db", "params.yaml"]
    finally:
        os.chmod(shared, 0o755)


OPEN = [sys.executable, "-c", "from pie_mlops.tracking.guard import open_store; open_store(); print('ok')"]


def test_two_processes_create_one_sqlite_store(tmp_path):
    from mlflow import MlflowClient

    from pie_mlops.tracking.guard import file_lock

    env = _env("sqlite:///mlflow.db")
    # The lock is what serialises them: while it is held, a creator waits and the db stays absent.
    with file_lock(tmp_path / ".mlflow.db.lock"):
        waiting = subprocess.Popen(OPEN, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                   text=True)
        time.sleep(4)
        assert waiting.poll() is None and not (tmp_path / "mlflow.db").exists()
    out, err = waiting.communicate(timeout=120)
    assert waiting.returncode == 0 and out.strip() == "ok", err

    # Two real processes on a new store at once: both succeed and the store works afterwards.
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    procs = [subprocess.Popen(OPEN, cwd=fresh, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    results = [p.communicate(timeout=180) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [r[1][-2000:] for r in results]
    client = MlflowClient(tracking_uri=f"sqlite:///{fresh}/mlflow.db")
    client.create_experiment("after")
    assert client.get_experiment_by_name("after") is not None


PROJECT = """name: orphan
entry_points:
  main:
    command: "python -c 'from pie_mlops.tracking.guard import open_store; open_store(); print(\\"TAGGED-\\" + \\"OK\\", flush=True); import time; time.sleep(600)'"
"""


def test_a_killed_mlflow_run_is_reaped(tmp_path):
    from mlflow import MlflowClient

    from pie_mlops.tracking.recovery import OWNER_TAG

    (tmp_path / "proj").mkdir()
    (tmp_path / "proj" / "MLproject").write_text(PROJECT)
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    client = MlflowClient(tracking_uri=uri)
    log = (tmp_path / "run.log").open("w")
    proc = subprocess.Popen(["mlflow", "run", str(tmp_path / "proj"), "-e", "main", "--env-manager", "local"],
                            cwd=tmp_path, env=_env(uri), stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    try:
        deadline = time.time() + 120
        while "TAGGED-OK" not in (tmp_path / "run.log").read_text():  # not the echoed command line
            assert proc.poll() is None and time.time() < deadline, (tmp_path / "run.log").read_text()[-3000:]
            time.sleep(0.5)
        [parent] = client.search_runs([e.experiment_id for e in client.search_experiments()])
        assert parent.data.tags[OWNER_TAG] == "mlflow run" and parent.data.tags["pie.pid"] == str(proc.pid)
        # While `mlflow run` lives, another stage's start-up leaves its run alone.
        subprocess.run(OPEN, cwd=tmp_path, env=_env(uri), check=True, capture_output=True, timeout=120)
        assert client.get_run(parent.info.run_id).info.status == "RUNNING"
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # `mlflow run`, its shell and the stage: nothing ends the run
        proc.wait()
    assert client.get_run(parent.info.run_id).info.status == "RUNNING"
    reaper = subprocess.run(OPEN, cwd=tmp_path, env=_env(uri), capture_output=True, text=True, timeout=120)
    assert reaper.returncode == 0 and f"run {parent.info.run_id} was left RUNNING" in reaper.stderr, reaper.stdout + reaper.stderr
    run_ = client.get_run(parent.info.run_id)
    assert run_.info.status == "KILLED" and "mlflow run" in run_.data.tags["pie.reaped"]


def test_two_identical_train_commands_register_once(tmp_path):
    repo = clone_project(tmp_path / "repo", profile="tiny")
    run(["pie-mlops", "materialize", "--dataset", "synthetic_longtail"], repo)
    cmd = [str(BIN / "pie-mlops"), "--profile", "tiny", "train", "--seeds", "0"]
    procs = [subprocess.Popen(cmd, cwd=repo, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for _ in range(2)]
    outs = [p.communicate(timeout=600)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [o[-3000:] for o in outs]
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{repo}/mlflow.db")
    for arch in ("bert", "bilstm"):
        versions = client.search_model_versions(f"name = 'pie-synthetic_longtail-{arch}'")
        assert len(versions) == 1, (arch, [(v.version, v.run_id) for v in versions])
        assert client.get_model_version_by_alias(f"pie-synthetic_longtail-{arch}", "dense-s0").version == versions[0].version
    exps = [e.experiment_id for e in client.search_experiments()]
    runs = client.search_runs(exps, "tags.stage = 'train'")
    assert sorted(r.info.status for r in runs) == ["FINISHED", "FINISHED"]  # the duplicate trained nothing


def test_missing_artifacts_a_damaged_store_and_an_emptied_store_are_one_line(tmp_path):
    """Issue 30 §5: mlartifacts/ removed before `prune`, a store damaged past its header, and a
    0-byte mlflow.db beside a full mlartifacts/: each one line, exit 2, naming the file and the fix."""
    import sqlite3

    repo = clone_project(tmp_path / "repo", profile="tiny")
    run(["pie-mlops", "materialize", "--dataset", "synthetic_longtail"], repo)
    run(["pie-mlops", "train", "--arch", "bilstm", "--seeds", "0"], repo)
    prune = [str(BIN / "pie-mlops"), "prune", "--arch", "bilstm", "--seeds", "0", "-c", "magnitude",
             "--sparsities", "0.5"]

    (repo / "mlartifacts").rename(repo / "aside")
    line, _ = _one_line_exit_2(prune, repo, _env(), limit=300)
    assert "model pie-synthetic_longtail-bilstm@dense-s0: its files are missing from" in line, line
    assert f"{repo}/mlartifacts/" in line and "re-run `pie-mlops train`" in line, line
    (repo / "predictions").rename(repo / "predictions-aside")  # a skipped model restores its predictions
    line, _ = _one_line_exit_2([str(BIN / "pie-mlops"), "train", "--arch", "bilstm", "--seeds", "0"], repo, _env(),
                               limit=300)
    assert line.startswith("error: run ") and "cannot download its predictions/ from the artifact store" in line, line
    assert not list((repo / "predictions").rglob("*.parquet"))  # nothing half-restored
    shutil.rmtree(repo / "predictions")
    (repo / "predictions-aside").rename(repo / "predictions")
    (repo / "aside").rename(repo / "mlartifacts")

    db = repo / "mlflow.db"
    saved = db.read_bytes()
    with sqlite3.connect(db) as conn:  # the runs table's root page: queries on experiments still answer
        root = conn.execute("SELECT rootpage FROM sqlite_master WHERE name = 'runs'").fetchone()[0]
        page = conn.execute("PRAGMA page_size").fetchone()[0]
    with open(db, "r+b") as handle:
        handle.seek((root - 1) * page)
        handle.write(b"\xff" * page)
    line, _ = _one_line_exit_2(prune, repo, _env(), limit=300)
    assert line.startswith("error: mlflow.db: the MLflow store is damaged (") and ".recover" in line, line

    db.write_bytes(b"")  # emptied (a failed copy, a truncation): MLflow would make a new store of it
    line, _ = _one_line_exit_2(prune, repo, _env(), limit=300)
    assert line.startswith("error: mlflow.db: the MLflow store is empty (0 bytes) but ") and "mlartifacts/ holds runs" in line
    assert db.stat().st_size == 0  # never silently replaced
    db.write_bytes(saved)

    # Damage met mid-stage, in an Optuna SQLite storage the start-up check does not cover.
    import optuna

    storage = f"sqlite:///{repo}/optuna-damaged.db"
    optuna.create_study(storage=storage, study_name="x").optimize(lambda t: t.suggest_float("a", 0, 1), n_trials=2)
    with sqlite3.connect(repo / "optuna-damaged.db") as conn:
        root = conn.execute("SELECT rootpage FROM sqlite_master WHERE name = 'studies'").fetchone()[0]
        page = conn.execute("PRAGMA page_size").fetchone()[0]
    with open(repo / "optuna-damaged.db", "r+b") as handle:
        handle.seek((root - 1) * page)
        handle.write(b"\xff" * page)
    line, _ = _one_line_exit_2([str(BIN / "pie-mlops"), "tune", "--arch", "bilstm", "--storage", storage], repo, _env(),
                               limit=300)
    assert line.startswith("error: a SQLite database is damaged (database disk image is malformed)"), line
