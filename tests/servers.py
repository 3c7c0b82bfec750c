"""Real servers for the integration tests: PostgreSQL (Debian's package) and `mlflow server`.

PostgreSQL: `.ci/run` starts one with scripts/postgres.sh and exports PIE_TEST_POSTGRES_URL;
without it, `postgres_url()` starts a private one the same way (stopped at exit), or skips
the test when PostgreSQL is not installed.
"""

from __future__ import annotations

import atexit
import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import pytest

from conftest import BIN, ROOT

_STARTED: dict[str, str] = {}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def postgres_url() -> str:
    """The base URL (postgresql+psycopg://user@host:port) of a running PostgreSQL server."""
    if os.environ.get("PIE_TEST_POSTGRES_URL"):
        return os.environ["PIE_TEST_POSTGRES_URL"].rstrip("/")
    if "url" in _STARTED:
        return _STARTED["url"]
    if not list(Path("/usr/lib/postgresql").glob("*/bin/initdb")):
        pytest.skip("PostgreSQL is not installed (apt-get install postgresql); .ci/run installs it")
    folder = tempfile.mkdtemp(prefix="pie-pg-")
    script = ROOT / "scripts" / "postgres.sh"
    proc = subprocess.run([str(script), "start", folder, str(free_port())], capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.fail(f"could not start PostgreSQL: {proc.stderr.strip()}")
    _STARTED["url"] = proc.stdout.strip()

    def stop() -> None:
        subprocess.run([str(script), "stop", folder], capture_output=True)
        shutil.rmtree(folder, ignore_errors=True)

    atexit.register(stop)
    return _STARTED["url"]


def create_database(base_url: str, name: str) -> str:
    """A fresh, empty database on the server; returns its SQLAlchemy URL."""
    import psycopg

    conninfo = base_url.replace("postgresql+psycopg://", "postgresql://") + "/postgres"
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    return f"{base_url}/{name}"


# The admin of an authenticated test server (docs/scaling.md): given to the server and to
# scripts/mlflow_users.py through the environment only, never as an argument.
ADMIN = ("admin", "admin-" + secrets.token_urlsafe(12))


def auth_env(user: str, password: str) -> dict:
    """The environment of an MLflow client that authenticates as `user`."""
    return dict(os.environ, MLFLOW_TRACKING_USERNAME=user, MLFLOW_TRACKING_PASSWORD=password)


def add_user(url: str, kind: str, name: str, password: str) -> None:
    """A worker or viewer on an authenticated server, made by scripts/mlflow_users.py as the admin."""
    env = dict(auth_env(*ADMIN), MLFLOW_TRACKING_URI=url, PIE_NEW_USER_PASSWORD=password)
    proc = subprocess.run([str(BIN / "python"), str(ROOT / "scripts" / "mlflow_users.py"), kind, name],
                          env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


@contextmanager
def mlflow_server(backend: str, artifacts: Path, cwd: Path, proxied: bool = True, auth: bool = False):
    """`mlflow server` on 127.0.0.1; yields its URL; stops its whole process group
    (gunicorn/uvicorn workers too) afterwards. `proxied`: artifacts go through the server to
    `artifacts` (--artifacts-destination); otherwise clients write there themselves
    (--default-artifact-root, as the embedded store's runs recorded). `auth`: MLflow's
    basic-auth app, as docs/scaling.md sets it up, with ADMIN as its admin."""
    port = free_port()
    env = dict(os.environ, MLFLOW_SERVER_ENABLE_JOB_EXECUTION="false", MLFLOW_DISABLE_TELEMETRY="true")
    app = []
    if auth:
        pytest.importorskip("flask_wtf", reason="mlflow's basic-auth app needs Flask-WTF (pyproject pins it)")
        ini = cwd / f"basic_auth-{port}.ini"
        ini.write_text(f"[mlflow]\ndefault_permission = READ\ndatabase_uri = sqlite:///{cwd}/basic_auth-{port}.db\n"
                       f"admin_username = {ADMIN[0]}\n"
                       "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n")
        env.update(MLFLOW_AUTH_CONFIG_PATH=str(ini), MLFLOW_AUTH_ADMIN_PASSWORD=ADMIN[1],
                   MLFLOW_FLASK_SERVER_SECRET_KEY=secrets.token_hex(16))
        app = ["--app-name", "basic-auth"]
    log = open(cwd / f"mlflow-server-{port}.log", "w")
    where = ["--artifacts-destination" if proxied else "--default-artifact-root", str(artifacts)]
    proc = subprocess.Popen([str(BIN / "mlflow"), "server", *app, "--backend-store-uri", backend, *where,
                             "--host", "127.0.0.1", "--port", str(port), "-w", "1"], cwd=cwd, env=env,
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(240):
            if proc.poll() is not None:
                pytest.fail(f"mlflow server exited {proc.returncode}: see {log.name}")
            try:
                if urllib.request.urlopen(f"{url}/health", timeout=2).read() == b"OK":
                    break
            except OSError:
                time.sleep(0.5)
        else:
            pytest.fail("mlflow server did not become healthy in 2 minutes")
        yield url
    finally:
        stop_group(proc)
        log.close()


def stop_group(proc: subprocess.Popen) -> None:
    """Stop a server started with start_new_session=True, its whole process group: SIGTERM,
    then SIGKILL after 20 s."""
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
