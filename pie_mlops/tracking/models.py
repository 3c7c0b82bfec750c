"""One run per model: skip-on-rerun by tags, the registry, aliases, the champion."""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path

from pie_mlops.tracking.store import (
    IDENTITY_TAGS, VERSION_TAGS, _client, _fluent, _owner_tags, active_run_id, experiment_id, model_requirements,
    registry_uri, spent, timed,
)


# ---------------------------------------------------------------------------------------
# One run per model, skip-on-rerun, registry
# ---------------------------------------------------------------------------------------
def registered_model_name(dataset: str, arch: str) -> str:
    return f"pie-{dataset}-{arch}"


@timed
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


@timed
def version_by_alias(name: str, alias: str):
    """The model version `name@alias` (with .run_id, .version, .tags), or None if there is none."""
    from mlflow.exceptions import MlflowException

    try:
        return _client().get_model_version_by_alias(name, alias)
    except MlflowException:
        return None


@timed
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


@timed
def download_run_artifacts(run_id: str, artifact_path: str, dst: str | Path) -> Path:
    Path(dst).mkdir(parents=True, exist_ok=True)
    return Path(_client().download_artifacts(run_id, artifact_path, str(dst)))


_REGISTERED: set[tuple[str, str]] = set()  # (registry URI, name) known to exist


class ModelRun:
    """Handle for one model's run; made by `model_run`, valid inside its `with` block."""

    def __init__(self, run_id: str, tags: dict):
        self.run_id, self.tags = run_id, tags
        self.model_uri: str | None = None
        self.model_id: str | None = None
        self.version: str | None = None
        self._registered: tuple[str, str] | None = None  # (name, version) to undo on failure

    @timed
    def set_tags(self, tags: dict) -> None:
        """Tags known only once the model exists (achieved_sparsity); they reach the version too."""
        from mlflow.entities import RunTag

        tags = {k: str(v) for k, v in tags.items()}
        self.tags.update(tags)
        _client().log_batch(self.run_id, tags=[RunTag(k, v) for k, v in tags.items()])

    @timed
    def log_dict(self, data: dict, artifact_file: str) -> None:
        _client().log_dict(self.run_id, data, artifact_file)

    def log_epoch(self, epoch: int, metrics: dict) -> None:
        """Per-epoch metrics at step=epoch (usable as training's on_epoch_end)."""
        self.log_metrics({k: v for k, v in metrics.items() if k != "epoch"}, step=epoch)

    @timed
    def log_metrics(self, metrics: dict, step: int = 0) -> None:
        import time

        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        # After log_model, metrics carry its model_id: MLflow 3 shows them on the logged model.
        batch = [Metric(k, float(v), now, step, model_id=self.model_id) for k, v in metrics.items() if v is not None]
        _client().log_batch(self.run_id, metrics=batch)

    @timed
    def log_artifacts(self, paths: list[Path], artifact_path: str) -> None:
        client = _client()
        for path in map(Path, paths):
            if path.is_dir():
                client.log_artifacts(self.run_id, str(path), artifact_path=artifact_path)
            else:
                client.log_artifact(self.run_id, str(path), artifact_path=artifact_path)

    @timed
    def log_model(self, model, saved: Path | None = None) -> str:
        """Log the model twice: mlflow.pytorch (pickle, the MLflow way) and as a safetensors
        save directory under `safetensors/`, which pie_mlops.models.load_model reads without
        unpickling anything. `saved`: a directory `model.save()` already wrote (not saved again)."""
        import tempfile

        import mlflow.pytorch

        info = mlflow.pytorch.log_model(pytorch_model=model, name="model", pip_requirements=model_requirements(),
                                        serialization_format="pickle")
        if saved is not None:
            self.log_artifacts([Path(saved)], "safetensors")
        else:
            with tempfile.TemporaryDirectory(prefix="pie-save-") as tmp:
                model.save(Path(tmp) / "model")
                self.log_artifacts([Path(tmp) / "model"], "safetensors")
        self.model_uri, self.model_id = info.model_uri, getattr(info, "model_id", None)
        return self.model_uri

    @timed
    def register(self, name: str, alias: str) -> str:
        """Register the logged model as a version of `name`, with our tags and `alias`.

        Call it last: if anything after it fails, `model_run` deletes the version again.
        """
        if self.model_uri is None:
            raise RuntimeError("log_model() must come before register()")
        client = _client()
        uri = registry_uri()
        known = (str(Path(uri[len("sqlite:///"):]).resolve()) if uri.startswith("sqlite:///") else uri, name)

        def ensure_registered() -> None:
            try:
                client.create_registered_model(name)
            except Exception:  # already registered (the usual case)
                client.get_registered_model(name)
            _REGISTERED.add(known)

        if known not in _REGISTERED:  # one lookup per process, not two requests per model
            ensure_registered()
        version_tags = {k: str(self.tags[k]) for k in VERSION_TAGS if k in self.tags}
        # model_id: an MLflow server (REST store) only accepts a models:/ source with it.
        create = lambda: client.create_model_version(  # noqa: E731
            name, self.model_uri, run_id=self.run_id, tags=version_tags, model_id=self.model_id)
        try:
            mv = create()
        except Exception:  # the registered model was deleted since we saw it
            ensure_registered()
            mv = create()
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

    with spent():
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
        with spent():
            client.log_batch(run_id, params=[Param(k, str(v)[:6000]) for k, v in sorted(params.items())])
        # The run is made active so that mlflow.pytorch.log_model links the model to it.
        # end_run() pops only this run: an in-process run active before stays active.
        with _fluent() as mlflow:
            with spent():
                mlflow.start_run(run_id=run_id, nested=mlflow.active_run() is not None)
            status = "FAILED"
            try:
                yield handle
                status = "FINISHED"
            finally:
                with spent():
                    mlflow.end_run(status)
    except BaseException:
        if handle._registered:
            try:
                client.delete_model_version(*handle._registered)
            except Exception:
                pass  # the original error matters more
        client.set_terminated(run_id, status="FAILED")
        raise



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
