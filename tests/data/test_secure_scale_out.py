"""The scale-out recipe is secure by default (issue 17, items 13 and 14), on real servers:
an `mlflow server --app-name basic-auth` on 127.0.0.1 refuses anonymous writes and serves a
worker that authenticates through MLflow's credential variables; a storage password given in
params, --storage or a URL never lands in dvc.lock, the stores, files or logs of a run."""

from __future__ import annotations

import json
import os
import subprocess
import urllib.error
import urllib.request
from base64 import b64encode
from pathlib import Path
from urllib.parse import quote

import pytest
import yaml

from conftest import BIN, run
from servers import add_user, auth_env, create_database, mlflow_server, postgres_url

pytestmark = pytest.mark.slow  # a real server or PostgreSQL and a tiny training each: minutes on 2 cores

PASSWORD = "Kn0wn/p@ss:w0rd-17"  # '/', '@' and ':' on purpose: the characters redaction got wrong


def _post(url: str, path: str, body: dict, user: tuple[str, str] | None = None) -> int:
    req = urllib.request.Request(f"{url}{path}", json.dumps(body).encode(), {"Content-Type": "application/json"})
    if user:
        req.add_header("Authorization", "Basic " + b64encode(":".join(user).encode()).decode())
    try:
        return urllib.request.urlopen(req, timeout=30).status
    except urllib.error.HTTPError as exc:
        return exc.code


def _env(**extra) -> dict:
    env = dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", OMP_NUM_THREADS="1", **extra)
    for key in ("MLFLOW_TRACKING_URI", "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD", "MLFLOW_RUN_ID"):
        env.pop(key, None)
    return env | extra


def test_basic_auth_refuses_anonymous_and_viewer_writes_and_a_worker_trains_with_env_credentials(tiny_repo, tmp_path):
    run(["pie-mlops", "materialize", "-d", "synthetic_longtail"], tiny_repo)
    with mlflow_server(f"sqlite:///{tmp_path}/mlflow.db", tmp_path / "artifacts", tmp_path, auth=True) as url:
        create = "/api/2.0/mlflow/experiments/create"
        assert _post(url, create, {"name": "anon"}) == 401
        assert _post(url, create, {"name": "guess"}, ("admin", "wrong")) == 401
        add_user(url, "worker", "worker-1", "w1-" + PASSWORD)
        add_user(url, "viewer", "viewer-1", "v1-" + PASSWORD)
        # A real stage as the worker: credentials from the environment only.
        env = auth_env("worker-1", "w1-" + PASSWORD) | {"MLFLOW_TRACKING_URI": url, "OMP_NUM_THREADS": "1",
                                                        "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
        env.pop("MLFLOW_RUN_ID", None)
        proc = subprocess.run(["pie-mlops", "train", "--arch", "bert", "--seeds", "0"], cwd=tiny_repo, env=env,
                              capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, proc.stderr[-3000:]
        from mlflow import MlflowClient

        os.environ.update(MLFLOW_TRACKING_USERNAME="viewer-1", MLFLOW_TRACKING_PASSWORD="v1-" + PASSWORD)
        try:  # the viewer reads what the worker registered
            version = MlflowClient(url).get_model_version_by_alias("pie-synthetic_longtail-bert", "dense-s0")
        finally:
            os.environ.pop("MLFLOW_TRACKING_USERNAME")
            os.environ.pop("MLFLOW_TRACKING_PASSWORD")
        assert version.tags["seed"] == "0"
        # Moving `champion`: refused to anyone without credentials and to a viewer; a worker may.
        alias = ("/api/2.0/mlflow/registered-models/alias",
                 {"name": "pie-synthetic_longtail-bert", "alias": "champion", "version": version.version})
        assert _post(url, *alias) == 401
        assert _post(url, *alias, ("viewer-1", "v1-" + PASSWORD)) == 403
        assert _post(url, *alias, ("worker-1", "w1-" + PASSWORD)) == 200


def _leaks(root: Path, *texts: str) -> list[str]:
    """Files under `root` (and texts) holding the password, raw or URL-quoted."""
    needles = [PASSWORD.encode(), quote(PASSWORD, safe="").encode()]
    files = [root] if root.is_file() else [p for p in root.rglob("*") if p.is_file() and "tests" not in p.relative_to(root).parts]
    found = [str(p) for p in files if any(n in p.read_bytes() for n in needles)]  # (this file holds it: skipped)
    return found + [t[:200] for t in texts if any(n.decode() in t for n in needles)]


def test_a_storage_password_is_refused_everywhere_and_never_written(tiny_repo, tmp_path):
    base = postgres_url()
    storage = create_database(base, "pie_secrets")
    with_password = storage.replace("://pie@", f"://pie:{quote(PASSWORD, safe='')}@")
    raw_password = storage.replace("://pie@", f"://pie:{PASSWORD}@")  # unquoted, as users type it
    run(["pie-mlops", "materialize", "-d", "synthetic_longtail"], tiny_repo)
    params = yaml.safe_load((tiny_repo / "params.yaml").read_text())
    params["tune"]["storage"] = with_password
    (tiny_repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    outputs = []
    for cmd in (["pie-mlops", "tune"],  # tune.storage, a DVC param
                ["pie-mlops", "tune", "--storage", raw_password],
                ["pie-mlops", "worker", "--storage", with_password, "--max-jobs", "1"],
                ["dvc", "repro", "tune"]):
        proc = subprocess.run(cmd, cwd=tiny_repo, env=_env(), capture_output=True, text=True, timeout=900)
        assert proc.returncode != 0, cmd
        errors = [line for line in proc.stderr.splitlines() if "carries a password" in line]
        assert errors and "PGPASSWORD or ~/.pgpass" in errors[0], (cmd, proc.stderr[-2000:])
        outputs += [proc.stdout, proc.stderr]
    # The way it is meant: the URL without the password, the password in the environment.
    params["tune"]["storage"] = storage
    (tiny_repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    assert _leaks(tiny_repo) == []  # dvc.lock (materialize and check ran), mlflow.db, data, logs
    proc = subprocess.run(["dvc", "repro", "tune"], cwd=tiny_repo, env=_env(PGPASSWORD=PASSWORD),
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    lock = yaml.safe_load((tiny_repo / "dvc.lock").read_text())
    tunes = [s for name, s in lock["stages"].items() if name.startswith("tune@")]  # one per architecture
    assert tunes and all(s["params"]["params.yaml"]["tune.storage"] == storage for s in tunes)
    # Nothing in the repository (dvc.lock, mlflow.db, artifacts, params/best_*.yaml), the
    # Optuna database or any output holds the password.
    assert _leaks(tiny_repo, *outputs, proc.stdout, proc.stderr) == []
    import psycopg

    with psycopg.connect(storage.replace("postgresql+psycopg://", "postgresql://")) as conn:
        dump = json.dumps([list(map(str, r)) for t in ("studies", "study_user_attributes", "study_system_attributes",
                                                       "trial_params", "trial_user_attributes",
                                                       "trial_system_attributes")
                           for r in conn.execute(f"SELECT * FROM {t}").fetchall()])
    assert "synthetic_longtail" in dump and PASSWORD not in dump and quote(PASSWORD, safe="") not in dump


def test_a_tracking_uri_with_a_password_is_refused_and_never_printed(tiny_repo, tmp_path):
    """Issue 30 §1: MLflow printed `View run ... at: http://admin:PW@...` with rc 0. A password in
    MLFLOW_TRACKING_URI (or MLFLOW_REGISTRY_URI) is now one line, exit 2, before MLflow sees it."""
    from servers import ADMIN

    run(["pie-mlops", "materialize", "-d", "synthetic_longtail"], tiny_repo)
    with mlflow_server(f"sqlite:///{tmp_path}/mlflow.db", tmp_path / "artifacts", tmp_path, auth=True) as url:
        secret_url = url.replace("http://", f"http://{ADMIN[0]}:{quote(ADMIN[1], safe='')}@")
        outputs = []
        for cmd, var in ((["pie-mlops", "train", "--arch", "bilstm", "--seeds", "0"], "MLFLOW_TRACKING_URI"),
                         (["pie-mlops", "check", "synthetic_longtail"], "MLFLOW_TRACKING_URI"),
                         (["pie-mlops", "train", "--arch", "bilstm", "--seeds", "0"], "MLFLOW_REGISTRY_URI")):
            env = _env(**{"MLFLOW_TRACKING_URI": url, var: secret_url})
            proc = subprocess.run(cmd, cwd=tiny_repo, env=env, capture_output=True, text=True, timeout=600)
            assert proc.returncode == 2, (cmd, proc.stdout[-2000:], proc.stderr[-2000:])
            lines = proc.stderr.strip().splitlines()
            assert len(lines) == 1 and "MLFLOW_TRACKING_USERNAME" in lines[0] and f"{var}=" in lines[0], lines
            outputs += [proc.stdout, proc.stderr]
        # The way it is meant: the same server, the password in MLflow's variable; the run link printed
        # at the end of the run holds no password either.
        proc = subprocess.run(["pie-mlops", "train", "--arch", "bilstm", "--seeds", "0"], cwd=tiny_repo,
                              env=_env(MLFLOW_TRACKING_URI=url, MLFLOW_TRACKING_USERNAME=ADMIN[0],
                                       MLFLOW_TRACKING_PASSWORD=ADMIN[1]),
                              capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, proc.stderr[-3000:]
        outputs += [proc.stdout, proc.stderr]
    needles = [ADMIN[1], quote(ADMIN[1], safe="")]
    assert not [t[:200] for t in outputs if any(n in t for n in needles)]
    # The repository (tmp_path/repo: dvc.lock, logs, predictions), the server's store, artifacts and log.
    files = [p for p in tmp_path.rglob("*") if p.is_file() and "tests" not in p.relative_to(tmp_path).parts]
    assert not [str(p) for p in files if any(n.encode() in p.read_bytes() for n in needles)]
