"""The store under faults: checked once at start-up, created under a lock, claims per model.

- `open_store`: HTTP limits (an unreachable or silent server is an error, never a hang), one
  check that the store answers and is writable (else one line, exit 2, before any file or run
  exists), the first creation/migration of a SQLite store serialised by a lock file beside it,
  and under `mlflow run` the Projects run tagged with its owner so recovery can reap it.
- `model_claim`: on a SQLite store, one process at a time per (registered model, group, seed),
  from the finished-run lookup to the registered version, so a duplicate command defers to
  the first (it then finds the run finished). Workers claim through Optuna as well.
"""

from __future__ import annotations

import os
from contextlib import contextmanager, nullcontext
from pathlib import Path

from pie_mlops.util.errors import PieError
from pie_mlops.tracking.recovery import OWNER_TAG, reap_orphan_parents
from pie_mlops.tracking.store import _client, registry_uri, tracking_uri
from pie_mlops.util.log import get as get_logger

_LOG = get_logger(__name__)

# MLflow's defaults retry 7 times with backoff 2 and wait 120 s per request: 253 s for a
# refused port, for ever for a silent server. These bound a request to about 2 minutes.
HTTP_LIMITS = {"MLFLOW_HTTP_REQUEST_TIMEOUT": "30", "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "3",
               "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1"}
# The start-up check answers within ~25 s: two tries of 8 s.
CHECK_LIMITS = {"MLFLOW_HTTP_REQUEST_TIMEOUT": "8", "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1",
                "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1"}


def sqlite_path(uri: str) -> Path | None:
    """The database file of a `sqlite:///` URI, else None."""
    if not uri.startswith("sqlite:///"):
        return None
    return Path(uri[len("sqlite:///"):].split("?", 1)[0]).expanduser()


@contextmanager
def file_lock(path: Path):
    """An exclusive fcntl lock on `path` (created if need be), held for the block; the kernel
    drops it when the process dies, so a killed holder never blocks the others."""
    import fcntl

    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _redacted(uri: str) -> str:
    """The URI without its password (user info or a password-like query parameter). Here, not
    scale.claims.redact_url: the tracking layer must not import the layer above it."""
    from urllib.parse import parse_qsl, urlsplit, urlunsplit

    parts = urlsplit(uri)
    netloc = parts.netloc
    if "@" in netloc:
        user, host = netloc.rsplit("@", 1)
        netloc = f"{user.split(':', 1)[0]}:***@{host}" if ":" in user else netloc
    query = "&".join(f"{k}=***" if k.lower() in ("password", "passwd", "pwd", "token") else f"{k}={v}"
                     for k, v in parse_qsl(parts.query, keep_blank_values=True))
    return urlunsplit(parts._replace(netloc=netloc, query=query))


def _reason(exc: BaseException) -> str:
    """The first line of the innermost error: the one that names the cause (file is not a
    database, connection refused, read timed out), not the wrappers' long messages."""
    seen = [exc]
    while (seen[-1].__cause__ or seen[-1].__context__) is not None and len(seen) < 20:
        seen.append(seen[-1].__cause__ or seen[-1].__context__)
    for err in reversed(seen):
        lines = [line.strip() for line in str(err).strip().splitlines() if line.strip()]
        if lines:
            return lines[0][:200]
    return type(exc).__name__


def _check_sqlite(db: Path) -> None:
    """A database SQLite can write: the file (if any) and its directory (for the journal)."""
    folder = db.parent if str(db.parent) else Path(".")
    if db.exists() and not db.is_file():
        raise PieError(f"{db}: the MLflow store is not a file")
    if not folder.is_dir():
        raise PieError(f"{db}: the MLflow store's directory {folder} does not exist")
    if (db.exists() and not os.access(db, os.R_OK | os.W_OK)) or not os.access(folder, os.W_OK | os.X_OK):
        raise PieError(f"{db}: the MLflow store is read-only; make it and {folder}/ writable, or set "
                       f"MLFLOW_TRACKING_URI to another store")
    artifacts = db.resolve().parent / "mlartifacts"  # tracking.store.artifact_root
    if db.is_file() and db.stat().st_size == 0 and artifacts.is_dir() and any(artifacts.iterdir()):
        # MLflow would silently make it a new, empty store and orphan every model in mlartifacts/.
        raise PieError(f"{db}: the MLflow store is empty (0 bytes) but {artifacts}/ holds runs; restore {db.name} "
                       f"from a backup, or move both aside to start a new store")


def _check_integrity(db: Path) -> None:
    """SQLite's quick_check: a store damaged past its header ("database disk image is malformed")
    answers the first queries and fails later, mid-stage; found here, before anything is written."""
    import sqlite3
    from contextlib import closing

    if not db.is_file() or db.stat().st_size == 0:
        return
    try:
        with closing(sqlite3.connect(db, timeout=30)) as conn:
            rows = conn.execute("PRAGMA quick_check(1)").fetchall()
        problem = None if rows == [("ok",)] else " ".join(str(r[0]) for r in rows).replace("\n", " ") or "no answer"
    except sqlite3.DatabaseError as exc:
        problem = str(exc)
    if problem:
        raise PieError(damaged(db, problem))


def damaged(db: Path | str, problem: str) -> str:
    """The one line for a damaged SQLite store."""
    return (f"{db}: the MLflow store is damaged ({problem.splitlines()[0][:160]}); restore it from a backup, or "
            f"salvage it (sqlite3 {db} .recover | sqlite3 recovered.db) and point MLFLOW_TRACKING_URI at the copy")


def _answer(uri: str, users: set[str]) -> None:
    """One tracking and one registry request, with the start-up limits (but the `users` own
    settings); PieError if the store does not answer or is not an MLflow store."""
    saved = {k: os.environ.get(k) for k in CHECK_LIMITS}
    os.environ.update({k: v for k, v in CHECK_LIMITS.items() if k not in users})
    try:
        client = _client()
        client.search_experiments(max_results=1)
        client.search_registered_models(max_results=1)
    except Exception as exc:  # any failure here: the store cannot be used, whatever the cause
        db = sqlite_path(uri)
        where = db if db is not None else _redacted(uri)
        hint = ("move it aside (a new one is created) or repair it" if db is not None
                else "check MLFLOW_TRACKING_URI, that the server runs and answers")
        raise PieError(f"{where}: the MLflow store is not usable ({_reason(exc)}); {hint}") from None
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def open_store() -> None:
    """Check the tracking store once, before a stage writes anything (see the module doc)."""
    from pie_mlops.util.credentials import check_tracking_uris

    check_tracking_uris()  # also for callers of the stage functions that bypass the CLI
    users = {k for k in HTTP_LIMITS if os.environ.get(k)}
    for key, value in HTTP_LIMITS.items():
        if key not in users:
            os.environ[key] = value
    uri = tracking_uri()
    db = sqlite_path(uri)
    if db is not None:
        _check_sqlite(db)
        # The first process creates and migrates the schema; a second doing the same at once
        # breaks the store for good (`table _alembic_tmp_tags already exists`).
        with file_lock(db.with_name(f".{db.name}.lock")):
            _answer(uri, users)
            _check_integrity(db)
    else:
        _answer(uri, users)
    reg = sqlite_path(registry_uri())
    if reg is not None and reg != db:
        _check_sqlite(reg)
    _tag_projects_run()
    for run_id in reap_orphan_parents():
        _LOG.warning(f"run {run_id} was left RUNNING by a killed `mlflow run`: marked KILLED")


def _tag_projects_run() -> None:
    """Under `mlflow run`, tag its run with the `mlflow run` process: killed, it leaves the run
    RUNNING for ever, and recovery.reap_orphan_parents marks it KILLED once that process is gone."""
    import socket

    parent = os.environ.get("MLFLOW_RUN_ID")
    pid = projects_pid() if parent else None
    if pid is None:  # MLFLOW_RUN_ID set by hand: that run's owner is not ours to record
        return
    client = _client()
    tags = client.get_run(parent).data.tags
    if tags.get(OWNER_TAG) == "mlflow run" and tags.get("pie.pid") == str(pid):
        return  # an earlier stage of the same `mlflow run` tagged it
    for key, value in {OWNER_TAG: "mlflow run", "pie.host": socket.gethostname(), "pie.pid": str(pid)}.items():
        client.set_tag(parent, key, value)


def projects_pid() -> int | None:
    """The `mlflow run` process above this one (it ends the run), else None."""
    pid = os.getppid()
    for _ in range(8):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            break
        if any(part.endswith(b"mlflow") for part in cmdline) and b"run" in cmdline:
            return pid
        pid = int(stat.rsplit(")", 1)[1].split()[1])  # the parent's pid (after the command name)
        if pid <= 1:
            break
    return None


def model_claim(name: str, group: str, seed: int, enabled: bool = True):
    """A lock held from the finished-run lookup of (name, group, seed) to its registration, on a
    SQLite store (beside it, under `.<db>.claims/`); a no-op elsewhere or when not `enabled`."""
    db = sqlite_path(tracking_uri())
    if db is None or not enabled:
        return nullcontext()
    safe = f"{name}__{group}__s{seed}".replace(os.sep, "_")
    return file_lock(db.resolve().with_name(f".{db.name}.claims") / f"{safe}.lock")
