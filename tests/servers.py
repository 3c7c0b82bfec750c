"""Real servers for the integration tests: PostgreSQL (Debian's package) and `mlflow server`.

PostgreSQL: `.ci/run` starts one with scripts/postgres.sh and exports PIE_TEST_POSTGRES_URL;
without it, `postgres_url()` starts a private one the same way (stopped at exit), or skips
the test when PostgreSQL is not installed.
"""

from __future__ import annotations

import atexit
import os
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


@contextmanager
def mlflow_server(backend: str, artifacts: Path, cwd: Path, proxied: bool = True):
    """`mlflow server` on 127.0.0.1; yields its URL; stops its whole process group
    (gunicorn/uvicorn workers too) afterwards. `proxied`: artifacts go through the server to
    `artifacts` (--artifacts-destination); otherwise clients write there themselves
    (--default-artifact-root, as the embedded store's runs recorded)."""
    port = free_port()
    env = dict(os.environ, MLFLOW_SERVER_ENABLE_JOB_EXECUTION="false", MLFLOW_DISABLE_TELEMETRY="true")
    log = open(cwd / f"mlflow-server-{port}.log", "w")
    where = ["--artifacts-destination" if proxied else "--default-artifact-root", str(artifacts)]
    proc = subprocess.Popen([str(BIN / "mlflow"), "server", "--backend-store-uri", backend, *where,
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
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        log.close()
