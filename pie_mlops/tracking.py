"""All MLflow calls live here (DESIGN.md §2). mlflow is imported lazily: it is slow to import."""

from __future__ import annotations

import os
import sys
import time
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
# Store defaults (DESIGN.md §4): the embedded SQLite store, artifacts beside it.
# ---------------------------------------------------------------------------------------
DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"
DEFAULT_EXPERIMENT = "pie-mlops"
# The version tags of DESIGN.md §3 "Registry"; runs carry the same ones.
VERSION_TAGS = ("group", "criterion", "schedule", "scope", "sparsity", "achieved_sparsity", "seed",
                "data_md5", "git_sha", "params_hash")
# What makes two runs "the same model" for skip-on-rerun.
IDENTITY_TAGS = ("dataset", "arch", "group", "seed", "data_md5", "params_hash")
# Needed to unpickle a logged model; the pins come from our own package metadata (pyproject).
MODEL_REQUIREMENTS = ("torch", "transformers", "safetensors", "numpy")


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
    from mlflow.tracking._model_registry import utils as registry_utils
    from mlflow.tracking._tracking_service import utils as tracking_utils

    # set_*_uri write the URI variables, and end_run() drops MLFLOW_RUN_ID (which `mlflow run`
    # set for the whole command, so later seeds still need it): restore all three.
    env = {k: os.environ.get(k) for k in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI", "MLFLOW_RUN_ID")}
    old_tracking, old_registry = tracking_utils._tracking_uri, registry_utils._registry_uri
    mlflow.set_tracking_uri(tracking_uri())
    mlflow.set_registry_uri(registry_uri())
    try:
        yield mlflow
    finally:
        mlflow.set_tracking_uri(old_tracking)
        registry_utils._registry_uri = old_registry
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


def experiment_id(name: str | None = None) -> str:
    """The experiment model runs go to, created on first use with our artifact root."""
    client = _client()
    name = name or os.environ.get("MLFLOW_EXPERIMENT_NAME") or DEFAULT_EXPERIMENT
    exp = client.get_experiment_by_name(name)
    if exp is not None:
        return exp.experiment_id
    try:
        return client.create_experiment(name, artifact_location=artifact_root(tracking_uri()))
    except Exception:  # created meanwhile by a parallel worker
        exp = client.get_experiment_by_name(name)
        if exp is None:
            raise
        return exp.experiment_id


# ---------------------------------------------------------------------------------------
# Provenance tags
# ---------------------------------------------------------------------------------------
def data_md5(data_dir: str | Path = "data") -> str:
    """`outs[0].md5` of `<data_dir>.dvc` (data.dvc tracks data/), or 'untracked'."""
    import yaml

    dvc_file = Path(f"{Path(data_dir)}.dvc")
    try:
        outs = (yaml.safe_load(dvc_file.read_text(encoding="utf-8")) or {}).get("outs") or []
        return str(outs[0]["md5"]) if outs and outs[0].get("md5") else "untracked"
    except (OSError, yaml.YAMLError, AttributeError, KeyError, TypeError):
        return "untracked"


def git_sha(start: str | Path = ".") -> str:
    """HEAD's commit, read from .git directly (no git process), or 'unknown'."""
    try:
        for folder in [Path(start).resolve(), *Path(start).resolve().parents]:
            dot = folder / ".git"
            if dot.is_file():  # a worktree or submodule: "gitdir: <path>"
                dot = (folder / dot.read_text().split(":", 1)[1].strip()).resolve()
            if not dot.is_dir():
                continue
            head = (dot / "HEAD").read_text().strip()
            if not head.startswith("ref:"):
                return head
            ref = head.split(":", 1)[1].strip()
            common = Path((dot / "commondir").read_text().strip()) if (dot / "commondir").is_file() else None
            roots = [dot] + ([(dot / common).resolve()] if common else [])
            for root in roots:
                if (root / ref).is_file():
                    return (root / ref).read_text().strip()
                packed = root / "packed-refs"
                if packed.is_file():
                    for line in packed.read_text().splitlines():
                        if line.endswith(" " + ref):
                            return line.split()[0]
            return "unknown"  # a repository without commits
    except OSError:
        pass
    return "unknown"


def params_hash(params: dict) -> str:
    """A short, order-independent hash of the parameters a model was trained with."""
    import hashlib
    import json

    blob = json.dumps(params, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def model_requirements() -> list[str]:
    """Pinned requirements for loading a logged model, from pie-mlops' own metadata."""
    import re
    from importlib import metadata

    pins = {}
    try:
        for req in metadata.requires("pie-mlops") or []:
            m = re.match(r"([A-Za-z0-9_.-]+)\s*==\s*([^;\s]+)", req)
            if m and ";" not in req:
                pins[m.group(1).lower()] = f"{m.group(1)}=={m.group(2)}"
    except metadata.PackageNotFoundError:
        pass
    out = []
    for name in MODEL_REQUIREMENTS:
        if name not in pins:  # not installed as a distribution: pin what is running
            try:
                pins[name] = f"{name}=={metadata.version(name)}"
            except metadata.PackageNotFoundError:
                continue
        out.append(pins[name])
    return out


# ---------------------------------------------------------------------------------------
# One run per model, skip-on-rerun, registry
# ---------------------------------------------------------------------------------------
def registered_model_name(dataset: str, arch: str) -> str:
    return f"pie-{dataset}-{arch}"


def find_finished_run(tags: dict) -> str | None:
    """The id of a FINISHED run carrying all IDENTITY_TAGS of `tags`, in any experiment."""
    client = _client()
    filt = " and ".join(f"tags.{k} = '{tags[k]}'" for k in IDENTITY_TAGS) + " and attributes.status = 'FINISHED'"
    experiments = [e.experiment_id for e in client.search_experiments()]
    if not experiments:
        return None
    runs = client.search_runs(experiments, filter_string=filt, max_results=1, order_by=["attributes.start_time DESC"])
    return runs[0].info.run_id if runs else None


def alias_for(group: str, seed: int) -> str:
    """The registry alias of one model: `<group>-s<seed>`, made legal for MLflow aliases
    (letters, digits, `_` and `-` only): `magnitude-ft@0.50` seed 0 -> `magnitude-ft-0_50-s0`."""
    return f"{group}-s{seed}".replace("@", "-").replace(".", "_")


def version_by_alias(name: str, alias: str):
    """The model version `name@alias` (with .run_id, .version, .tags), or None if there is none."""
    from mlflow.exceptions import MlflowException

    try:
        return _client().get_model_version_by_alias(name, alias)
    except MlflowException:
        return None


def load_version(name: str, alias: str, dst: str | Path):
    """Load `models:/name@alias` from its run's safetensors copy (never unpickling anything)."""
    from pie_mlops.models import load_model

    mv = version_by_alias(name, alias)
    if mv is None:
        raise LookupError(f"{name}@{alias} is not in the registry")
    path = download_run_artifacts(mv.run_id, "safetensors", dst)
    return load_model(path)


def model_runs(dataset: str, arch: str) -> list[dict]:
    """The latest FINISHED model run per (group, seed) of one registered model's study
    (dense runs from `train`, pruned ones from `prune`), newest first within a pair."""
    client = _client()
    experiments = [e.experiment_id for e in client.search_experiments()]
    if not experiments:
        return []
    latest: dict[tuple[str, int], dict] = {}
    for stage in ("train", "prune"):
        filt = (f"tags.stage = '{stage}' and tags.dataset = '{dataset}' and tags.arch = '{arch}' "
                f"and attributes.status = 'FINISHED'")
        token = None
        while True:
            page = client.search_runs(experiments, filter_string=filt, max_results=1000, page_token=token,
                                      order_by=["attributes.start_time DESC"])
            for run in page:
                tags = run.data.tags
                key = (tags.get("group", ""), int(tags.get("seed", -1)))
                latest.setdefault(key, {"run_id": run.info.run_id, "group": key[0], "seed": key[1],
                                        "data_md5": tags.get("data_md5"), "tags": dict(tags)})
            token = page.token
            if not token:
                break
    return sorted(latest.values(), key=lambda r: (r["group"] != "dense", r["group"], r["seed"]))


def download_run_artifacts(run_id: str, artifact_path: str, dst: str | Path) -> Path:
    Path(dst).mkdir(parents=True, exist_ok=True)
    return Path(_client().download_artifacts(run_id, artifact_path, str(dst)))


class ModelRun:
    """Handle for one model's run; made by `model_run`, valid inside its `with` block."""

    def __init__(self, run_id: str, tags: dict):
        self.run_id, self.tags = run_id, tags
        self.model_uri: str | None = None
        self.version: str | None = None
        self._registered: tuple[str, str] | None = None  # (name, version) to undo on failure

    def set_tags(self, tags: dict) -> None:
        """Tags known only once the model exists (achieved_sparsity); they reach the version too."""
        from mlflow.entities import RunTag

        tags = {k: str(v) for k, v in tags.items()}
        self.tags.update(tags)
        _client().log_batch(self.run_id, tags=[RunTag(k, v) for k, v in tags.items()])

    def log_dict(self, data: dict, artifact_file: str) -> None:
        _client().log_dict(self.run_id, data, artifact_file)

    def log_epoch(self, epoch: int, metrics: dict) -> None:
        """Per-epoch metrics at step=epoch (usable as training's on_epoch_end)."""
        self.log_metrics({k: v for k, v in metrics.items() if k != "epoch"}, step=epoch)

    def log_metrics(self, metrics: dict, step: int = 0) -> None:
        import time

        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        batch = [Metric(k, float(v), now, step) for k, v in metrics.items() if v is not None]
        _client().log_batch(self.run_id, metrics=batch)

    def log_artifacts(self, paths: list[Path], artifact_path: str) -> None:
        client = _client()
        for path in map(Path, paths):
            if path.is_dir():
                client.log_artifacts(self.run_id, str(path), artifact_path=artifact_path)
            else:
                client.log_artifact(self.run_id, str(path), artifact_path=artifact_path)

    def log_model(self, model) -> str:
        """Log the model twice: mlflow.pytorch (pickle, the MLflow way) and as a safetensors
        save directory under `safetensors/`, which pie_mlops.models.load_model reads without
        unpickling anything."""
        import tempfile

        import mlflow.pytorch

        info = mlflow.pytorch.log_model(pytorch_model=model, name="model", pip_requirements=model_requirements(),
                                        serialization_format="pickle")
        with tempfile.TemporaryDirectory(prefix="pie-save-") as tmp:
            model.save(Path(tmp) / "model")
            self.log_artifacts([Path(tmp) / "model"], "safetensors")
        self.model_uri = info.model_uri
        return self.model_uri

    def register(self, name: str, alias: str) -> str:
        """Register the logged model as a version of `name`, with our tags and `alias`.

        Call it last: if anything after it fails, `model_run` deletes the version again.
        """
        if self.model_uri is None:
            raise RuntimeError("log_model() must come before register()")
        client = _client()
        try:
            client.create_registered_model(name)
        except Exception:  # already registered (the usual case)
            client.get_registered_model(name)
        version_tags = {k: str(self.tags[k]) for k in VERSION_TAGS if k in self.tags}
        mv = client.create_model_version(name, self.model_uri, run_id=self.run_id, tags=version_tags)
        self._registered = (name, mv.version)
        client.set_registered_model_alias(name, alias, mv.version)
        self.version = str(mv.version)  # an int in some MLflow versions, a string in others
        return self.version


@contextmanager
def model_run(run_name: str, tags: dict, params: dict):
    """One model's run; yields a ModelRun.

    On success the run ends FINISHED; on any exception (KeyboardInterrupt too) it ends
    FAILED and a version registered inside it is deleted again, so a failed run never
    leaves a registered model. Under `mlflow run` (MLFLOW_RUN_ID set), or inside another
    active run, the model run is a child of that run, in its experiment.
    """
    from mlflow.entities import Param

    client = _client()
    parent = active_run_id()  # `mlflow run`'s run, or one active in this process
    all_tags = {**{k: str(v) for k, v in tags.items()}, **_owner_tags()}
    if parent:
        exp = client.get_run(parent).info.experiment_id
        all_tags["mlflow.parentRunId"] = parent
    else:
        exp = experiment_id()
    run_id = client.create_run(exp, tags=all_tags, run_name=run_name).info.run_id
    handle = ModelRun(run_id, all_tags)
    try:
        client.log_batch(run_id, params=[Param(k, str(v)[:6000]) for k, v in sorted(params.items())])
        # The run is made active so that mlflow.pytorch.log_model links the model to it.
        # end_run() pops only this run: an in-process run active before stays active.
        with _fluent() as mlflow:
            mlflow.start_run(run_id=run_id, nested=mlflow.active_run() is not None)
            status = "FAILED"
            try:
                yield handle
                status = "FINISHED"
            finally:
                mlflow.end_run(status)
    except BaseException:
        if handle._registered:
            try:
                client.delete_model_version(*handle._registered)
            except Exception:
                pass  # the original error matters more
        client.set_terminated(run_id, status="FAILED")
        raise


# ---------------------------------------------------------------------------------------
# Crash recovery: a process killed with SIGKILL (or by the OOM killer, or a power cut) runs
# no `finally`, so its run stays RUNNING, maybe with a registered version. The next stage
# run finds those by the owner tags and cleans up before it starts.
# ---------------------------------------------------------------------------------------
def _owner_tags() -> dict:
    import socket

    return {"pie.host": socket.gethostname(), "pie.pid": str(os.getpid())}


def _process_gone(tags: dict) -> bool:
    """True only when we can be sure: the run's process was on this host and is not alive."""
    import socket

    if tags.get("pie.host") != socket.gethostname():
        return False  # another machine's run (a parallel worker): not ours to judge
    try:
        os.kill(int(tags.get("pie.pid", "")), 0)
    except ProcessLookupError:
        return True
    except (PermissionError, ValueError, OverflowError):
        return False
    return False


def reap_stale_runs(dataset: str, arch: str) -> list[str]:
    """Mark KILLED the RUNNING runs of (dataset, arch) whose process on this host is gone, and
    delete any version they registered, so a rerun redoes exactly that work. Returns their ids."""
    client = _client()
    experiments = [e.experiment_id for e in client.search_experiments()]
    if not experiments:
        return []
    filt = f"tags.dataset = '{dataset}' and tags.arch = '{arch}' and attributes.status = 'RUNNING'"
    reaped = []
    for run in client.search_runs(experiments, filter_string=filt, max_results=1000):
        if not _process_gone(run.data.tags):
            continue
        run_id = run.info.run_id
        for mv in client.search_model_versions(f"run_id = '{run_id}'"):
            client.delete_model_version(mv.name, mv.version)
        client.set_tag(run_id, "pie.reaped", "its process was gone: killed before it could finish")
        client.set_terminated(run_id, status="KILLED")
        reaped.append(run_id)
    return reaped


# ---------------------------------------------------------------------------------------
# Optuna studies: one parent run per study (resumed with it), a nested child run per trial.
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
        return client.get_run(parent).info.experiment_id, {"mlflow.parentRunId": parent}
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


@contextmanager
def study_run(study_name: str, params: dict):
    """The study's parent run; yields its id. Re-running a study resumes the same parent."""
    from mlflow.entities import Param

    client = _client()
    exp, extra = _run_home(client)
    found = client.search_runs([exp], f"tags.stage = 'tune' AND tags.study = '{study_name}'",
                               order_by=["attributes.start_time DESC"], max_results=1)
    if found:
        run_id = found[0].info.run_id
        client.update_run(run_id, status="RUNNING")
    else:
        tags = {"stage": "tune", "study": study_name, "dataset": params["dataset"], "arch": params["arch"], **extra}
        run_id = client.create_run(exp, tags=tags, run_name=f"tune {study_name}").info.run_id
        flat = {k: v for k, v in _flat("", params).items() if k != "storage"}  # may hold a password
        client.log_batch(run_id, params=[Param(k, str(v)[:6000]) for k, v in sorted(flat.items())])
    with _ends(client, run_id):
        yield run_id


@contextmanager
def trial_run(parent_id: str, number: int, hp: dict):
    """A child run for one trial; yields `log_epoch(epoch, metrics)`.

    A pruned trial ends KILLED with tag state=pruned, a crashed one FAILED.
    """
    import optuna
    from mlflow.entities import Metric, Param

    client = _client()
    exp = client.get_run(parent_id).info.experiment_id
    tags = {"mlflow.parentRunId": parent_id, "stage": "tune-trial", "trial": str(number)}
    run_id = client.create_run(exp, tags=tags, run_name=f"trial {number}").info.run_id
    client.log_batch(run_id, params=[Param(k, str(v)) for k, v in sorted(hp.items())])

    def log_epoch(epoch: int, metrics: dict) -> None:
        now = int(time.time() * 1000)
        client.log_batch(run_id, metrics=[Metric(k, float(v), now, epoch) for k, v in metrics.items() if k != "epoch"])

    try:
        yield log_epoch
    except optuna.TrialPruned:
        client.set_tag(run_id, "state", "pruned")
        client.set_terminated(run_id, status="KILLED")
        raise
    except BaseException:
        client.set_tag(run_id, "state", "failed")
        client.set_terminated(run_id, status="FAILED")
        raise
    client.set_tag(run_id, "state", "complete")
    client.set_terminated(run_id, status="FINISHED")


def log_study_result(parent_id: str, best: dict, best_value: float, metric: str, best_file: Path) -> None:
    """The best trial's parameters as `best_<name>` params of the parent, and the file."""
    from mlflow.exceptions import MlflowException

    client = _client()
    client.log_metric(parent_id, f"best_{metric}", best_value)
    for k, v in best.items():
        try:
            client.log_param(parent_id, f"best_{k}", v)
        except MlflowException:
            # A resumed study found a new best; params are immutable, so the tag carries it.
            client.set_tag(parent_id, f"best_{k}", str(v))
    client.log_artifact(parent_id, str(best_file), artifact_path="tune")


# ---------------------------------------------------------------------------------------
# The comparison: one `compare` run per (dataset, arch), PIE metrics on the model runs,
# and the `champion` alias.
# ---------------------------------------------------------------------------------------
def metric_key(group: str, name: str) -> str:
    """`<group>/<name>` made legal for MLflow metric names ('@' is not): `magnitude-os-0.50/pie_share`."""
    return f"{group.replace('@', '-')}/{name}"


@contextmanager
def compare_run(dataset: str, arch: str, params: dict):
    """The comparison's run; yields its id. FINISHED on success, FAILED on any error.
    Under `mlflow run` it nests under the run `mlflow run` made."""
    from mlflow.entities import Param

    client = _client()
    exp, extra = _run_home(client)
    tags = {"stage": "compare", "dataset": dataset, "arch": arch, "data_md5": str(params.get("data_md5", "")),
            "git_sha": git_sha(), **_owner_tags(), **extra}
    run_id = client.create_run(exp, tags=tags, run_name=f"compare {dataset}/{arch}").info.run_id
    flat = {k: v for k, v in _flat("", params).items()}
    client.log_batch(run_id, params=[Param(k, str(v)[:6000]) for k, v in sorted(flat.items())])
    with _ends(client, run_id):
        yield run_id


def log_metric_batch(run_id: str, metrics: dict[str, float], step: int = 0,
                     curves: list[tuple[str, float, int]] | None = None) -> None:
    """Scalar metrics, plus `curves`: (key, value, step) points, e.g. PIE share per sparsity
    step, which the MLflow UI draws as a chart. None values are skipped (empty subsets)."""
    from mlflow.entities import Metric

    now = int(time.time() * 1000)
    points = [Metric(k, float(v), now, step) for k, v in metrics.items() if v is not None]
    points += [Metric(k, float(v), now, s) for k, v, s in (curves or []) if v is not None]
    client = _client()
    for i in range(0, len(points), 1000):  # log_batch takes at most 1000 metrics
        client.log_batch(run_id, metrics=points[i:i + 1000])


def log_compare_artifacts(run_id: str, out_dir: Path, table=None) -> None:
    """The compare directory's files as artifacts, and a small PIE table via log_table."""
    client = _client()
    client.log_artifacts(run_id, str(out_dir), artifact_path="compare")
    if table is not None:
        with _fluent() as mlflow:
            mlflow.log_table(data=table, artifact_file="pie_summary.json", run_id=run_id)


def set_champion(name: str, version: str, tags: dict) -> None:
    """Point the `champion` alias at `version` and record why in the version's tags."""
    client = _client()
    client.set_registered_model_alias(name, "champion", version)
    for k, v in tags.items():
        client.set_model_version_tag(name, version, k, str(v))


def version_of_run(name: str, run_id: str) -> str | None:
    """The registered version of `name` made from `run_id`, if any."""
    found = _client().search_model_versions(f"name = '{name}' and run_id = '{run_id}'")
    return str(found[0].version) if found else None
