"""The store: URIs, clients, experiments, the active run, and run-status helpers (the provenance
tags: provenance.py)."""

from __future__ import annotations

import os
import sys
from contextlib import contextmanager
from pathlib import Path


def active_run_id() -> str | None:
    """The id of the MLflow run this process works for, or None.

    That is the run started in this process, or the one `mlflow run` made for us (it
    passes MLFLOW_RUN_ID to the entry point's command). Otherwise a run can only be
    active once mlflow has been imported here, so when it is not imported yet there is
    none, and importing it just to learn that would cost seconds.
    """
    if os.environ.get("MLFLOW_RUN_ID"):
        return os.environ["MLFLOW_RUN_ID"]
    if "mlflow" not in sys.modules:
        return None
    import mlflow

    run = mlflow.active_run()
    return run.info.run_id if run is not None else None


def log_artifacts_if_active(paths: list[Path], artifact_path: str) -> bool:
    """Log files and directories under `artifact_path` of the active run; False if none is active.

    A directory keeps its own name below `artifact_path` (data_docs/ stays data_docs/).
    """
    run_id = active_run_id()
    if run_id is None:
        return False
    from mlflow import MlflowClient

    client = MlflowClient()  # by run id: works for a run started here or by `mlflow run`
    for path in map(Path, paths):
        if path.is_dir():
            client.log_artifacts(run_id, str(path), artifact_path=f"{artifact_path}/{path.name}")
        else:
            client.log_artifact(run_id, str(path), artifact_path=artifact_path)
    return True


# ---------------------------------------------------------------------------------------
# Store defaults (docs/design.md §4): the embedded SQLite store, artifacts beside it.
# ---------------------------------------------------------------------------------------
DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"
DEFAULT_EXPERIMENT = "pie-mlops"


def tracking_uri() -> str:
    return os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_TRACKING_URI


def registry_uri() -> str:
    """The registry follows the tracking store unless MLFLOW_REGISTRY_URI says otherwise."""
    return os.environ.get("MLFLOW_REGISTRY_URI") or tracking_uri()


def _client():
    """A client bound to the current URIs (re-read each call: tests monkeypatch them)."""
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=tracking_uri(), registry_uri=registry_uri())


@contextmanager
def _fluent():
    """mlflow with its global (fluent) URIs pointed at our store, restored afterwards.

    Only start_run/log_model need the globals. Leaving them set would pin every later
    mlflow call in this process to this store, even after MLFLOW_TRACKING_URI changes.
    """
    import mlflow

    from pie_mlops.util.compat import mlflow_global_uris, restore_mlflow_registry_uri

    # set_*_uri write the URI variables, and end_run() drops MLFLOW_RUN_ID (which `mlflow run`
    # set for the whole command, so later seeds still need it): restore all three.
    env = {k: os.environ.get(k) for k in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI", "MLFLOW_RUN_ID")}
    old_tracking, old_registry = mlflow_global_uris()
    mlflow.set_tracking_uri(tracking_uri())
    mlflow.set_registry_uri(registry_uri())
    try:
        yield mlflow
    finally:
        mlflow.set_tracking_uri(old_tracking)
        restore_mlflow_registry_uri(old_registry)
        for key, value in env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def artifact_root(uri: str) -> str | None:
    """`mlartifacts/` beside a SQLite database, as an absolute file URI; None for servers.

    An absolute URI keeps artifacts in one place whatever directory a later command runs
    from; a server (http://, postgresql://) decides its own artifact store.
    """
    if not uri.startswith("sqlite:///"):
        return None
    db = Path(uri[len("sqlite:///"):]).expanduser()
    return (db.resolve().parent / "mlartifacts").as_uri()


def store_key(uri: str) -> str:
    """A store's identity for per-process caches: a SQLite URI by its resolved file (the same
    `sqlite:///mlflow.db` is another store in another directory)."""
    if uri.startswith("sqlite:///"):
        return "sqlite:///" + str(Path(uri[len("sqlite:///"):]).expanduser().resolve())
    return uri


# Experiment ids seen by this process, per store: a worker would otherwise look its
# experiment up by name on every job (one request each to a server).
_EXPERIMENTS: dict[tuple[str, str], str] = {}


def experiment_id(name: str | None = None) -> str:
    """The experiment model runs go to, created on first use with our artifact root."""
    name = name or os.environ.get("MLFLOW_EXPERIMENT_NAME") or DEFAULT_EXPERIMENT
    key = (store_key(tracking_uri()), name)
    if key not in _EXPERIMENTS:
        _EXPERIMENTS[key] = _experiment_id(name)
    return _EXPERIMENTS[key]


def forget_experiments() -> None:
    """Drop the cached experiment ids (one was deleted, or the store was replaced)."""
    _EXPERIMENTS.clear()


def _experiment_id(name: str) -> str:
    return project_experiment(tracking_uri(), name)


# MLflow 3's UI opens an experiment by its kind: without this tag it guesses, and showed ours
# in GenAI mode (an empty traces page). Ours trains models: the runs table.
KIND_TAG, KIND = "mlflow.experimentKind", "custom_model_development"
_MARKED: set[tuple[str, str]] = set()  # (store, experiment id) known to carry the kind tag


def mark_experiment(client, exp_id: str, tags: dict | None = None) -> None:
    """Tag the experiment as model training (once per process and store)."""
    key = (store_key(client.tracking_uri), str(exp_id))
    if key in _MARKED:
        return
    tags = client.get_experiment(exp_id).tags if tags is None else tags
    if tags.get(KIND_TAG) != KIND:
        client.set_experiment_tag(exp_id, KIND_TAG, KIND)
    _MARKED.add(key)


def _drop_empty_default(client, uri: str) -> None:
    """A new SQLite store makes an experiment `Default` (id 0); ours go elsewhere, so an empty
    one is only clutter in the UI. Deleted (restorable) only while it holds no run, and only
    in the embedded SQLite store: a shared server's Default belongs to its users."""
    from mlflow.entities import ViewType

    if not uri.startswith("sqlite:"):
        return
    try:
        default = client.get_experiment("0")
        if (default.name == "Default" and default.lifecycle_stage == "active"
                and not client.search_runs(["0"], max_results=1, run_view_type=ViewType.ALL)):
            client.delete_experiment("0")
    except Exception:  # gone already, or deleted by a parallel worker: clutter, never an error
        pass


def project_experiment(uri: str, name: str) -> str:
    """The id of experiment `name` in the store at `uri`, created with our artifact root and
    tagged as model training; the store's empty `Default` is dropped."""
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    exp = client.get_experiment_by_name(name)
    if exp is None or exp.lifecycle_stage != "active":
        try:
            exp = client.get_experiment(client.create_experiment(name, artifact_location=artifact_root(uri),
                                                                 tags={KIND_TAG: KIND}))
        except Exception:  # created meanwhile by a parallel worker (or deleted: then the error stands)
            exp = client.get_experiment_by_name(name)
            if exp is None or exp.lifecycle_stage != "active":
                raise
    mark_experiment(client, exp.experiment_id, exp.tags)
    if exp.experiment_id != "0":
        _drop_empty_default(client, uri)
    return exp.experiment_id


def experiment_ids() -> list[str]:
    """The ids of every active experiment: skip-on-rerun and recovery search runs in all of
    them (`mlflow run` may have put them elsewhere)."""
    return [e.experiment_id for e in _client().search_experiments()]


def _owner_tags() -> dict:
    import socket

    from pie_mlops.tracking.lineage import context_tags

    return {**context_tags(), "pie.host": socket.gethostname(), "pie.pid": str(os.getpid())}


def _flat(prefix: str, value) -> dict:
    if not isinstance(value, dict):
        return {prefix: value}
    out = {}
    for k, v in value.items():
        out.update(_flat(f"{prefix}.{k}" if prefix else str(k), v))
    return out


def _run_home(client) -> tuple[str, dict]:
    """(experiment id, extra tags): under `mlflow run` a run nests under the run it made."""
    parent = active_run_id()
    if parent:
        exp = client.get_run(parent).info.experiment_id
        mark_experiment(client, exp)
        return exp, {"mlflow.parentRunId": parent}
    return experiment_id(), {}


@contextmanager
def _ends(client, run_id: str):
    """The run ends FINISHED when the block succeeds, FAILED on any error (Ctrl-C too)."""
    try:
        yield
    except BaseException:
        client.set_terminated(run_id, status="FAILED")
        raise
    client.set_terminated(run_id, status="FINISHED")
