"""One run per model: the run, its metrics and artifacts, its logged model and registered version, all
undone on failure (names, aliases and the champion: registry.py; finished runs read back: finished.py)."""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path

from pie_mlops.tracking.accounting import spent, timed
from pie_mlops.tracking.descriptions import study_description, version_description
from pie_mlops.tracking.lineage import log_data_inputs
from pie_mlops.tracking.provenance import VERSION_TAGS, model_requirements
from pie_mlops.tracking.registry import set_model_alias
from pie_mlops.tracking.store import (
    _client, _owner_tags, active_run_id, experiment_id, forget_experiments, mark_experiment, registry_uri, store_key,
)


# The tags a LoggedModel carries (the Models tab filters and shows them): the version's plus
# what names the study.
MODEL_TAGS = ("stage", "dataset", "arch", *VERSION_TAGS)


def logged_model_name(dataset: str, arch: str, group: str, seed) -> str:
    """`<dataset>-<arch>-<group>-s<seed>`, the name the Models tab lists: MLflow refuses
    `/ : . % " '` in it, so `magnitude-ft@0.50` becomes `magnitude-ft@0_50`."""
    name = f"{dataset}-{arch}-{group}-s{seed}"
    for bad in "/:.%\"'":
        name = name.replace(bad, "_")
    return name


_REGISTERED: set[tuple[str, str]] = set()  # (registry URI, name) known to exist


class ModelRun:
    """Handle for one model's run; made by `model_run`, valid inside its `with` block.

    Every call goes through the client by run id (no fluent active run): each request is
    one round trip to a server, and a worker pays them on every job (bench/scale_workers.sh)."""

    def __init__(self, client, run_id: str, tags: dict, experiment: str, artifact_uri: str, params: dict):
        self.client, self.run_id, self.tags = client, run_id, tags
        self.experiment_id, self.artifact_uri, self.params = experiment, artifact_uri, params
        self.model_uri: str | None = None
        self.model_id: str | None = None
        self.version: str | None = None
        self._registered: tuple[str, str] | None = None  # (name, version) to undo on failure
        # Sent with the next metrics, in one log-batch: the params, a training's history and late
        # tags ride with the final metrics (one request and one store commit, not three; issue 27).
        self._pending_tags: dict[str, str] = {}
        self._pending_params: list = []
        self._pending_metrics: list = []
        self.metrics: dict[str, float] = {}  # the latest value of each, for the version's description
        self._repo = None

    def set_tags(self, tags: dict) -> None:
        """Tags known only once the model exists (achieved_sparsity); they reach the version too.
        Sent with the next log_metrics, or when the run ends."""
        tags = {k: str(v) for k, v in tags.items()}
        self.tags.update(tags)
        self._pending_tags.update(tags)
        if self.model_id is not None and set(tags) & set(MODEL_TAGS):  # the logged model carries them too
            self.client.set_logged_model_tags(self.model_id, {k: v for k, v in tags.items() if k in MODEL_TAGS})

    def _artifacts(self, uri: str | None = None):
        """The artifact repository of the run (or of `uri`), without a get_run round trip."""
        from pie_mlops.util.compat import artifact_repository

        if uri is not None:
            return artifact_repository(uri, self.client.tracking_uri)
        if self._repo is None:
            self._repo = artifact_repository(self.artifact_uri, self.client.tracking_uri)
        return self._repo

    @timed
    def log_dict(self, data: dict, artifact_file: str) -> None:
        import json
        import tempfile

        with tempfile.TemporaryDirectory(prefix="pie-dict-") as tmp:
            path = Path(tmp) / Path(artifact_file).name
            path.write_text(json.dumps(data, indent=2, default=str), encoding="utf-8")
            parent = str(Path(artifact_file).parent)
            self._artifacts().log_artifact(str(path), None if parent == "." else parent)

    def log_epoch(self, epoch: int, metrics: dict) -> None:
        """Per-epoch metrics at step=epoch (usable as training's on_epoch_end)."""
        self.log_metrics({k: v for k, v in metrics.items() if k != "epoch"}, step=epoch)

    def log_history(self, history: list[dict]) -> None:
        """A finished training's per-epoch metrics (each dict has `epoch`), step=epoch, stamped
        now and sent with the next log_metrics (the final metrics) rather than one per epoch."""
        import time

        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        batch = [Metric(k, float(v), now, int(m["epoch"])) for m in history for k, v in m.items()
                 if k != "epoch" and v is not None]
        self.metrics.update({m.key: m.value for m in batch})  # the last epoch's win, as logged live
        self._pending_metrics.extend(batch)

    @timed
    def log_metrics(self, metrics: dict, step: int = 0) -> None:
        """`metrics` at `step`, with everything pending (params, history, tags), now."""
        import time

        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        # After log_model, metrics carry its model_id: MLflow 3 shows them on the logged model.
        batch = [Metric(k, float(v), now, step, model_id=self.model_id) for k, v in metrics.items() if v is not None]
        self.metrics.update({m.key: m.value for m in batch})
        self._pending_metrics.extend(batch)
        self._flush()

    def _flush(self, tags: bool = True) -> None:
        """Send the pending params, metrics and (with `tags`) tags: one log-batch within MLflow's
        limits (100 params, 100 tags, 1,000 values in all), more only past them."""
        from mlflow.entities import RunTag

        params, metrics = self._pending_params, self._pending_metrics
        pending = [RunTag(k, v) for k, v in self._pending_tags.items()] if tags else []
        while params or metrics or pending:
            p, t = params[:100], pending[:100]
            m = metrics[:1000 - len(p) - len(t)]
            self.client.log_batch(self.run_id, metrics=m, params=p, tags=t)
            params, metrics, pending = params[len(p):], metrics[len(m):], pending[len(t):]
        self._pending_params, self._pending_metrics = [], []
        if tags:
            self._pending_tags.clear()

    @timed
    def log_artifacts(self, paths: list[Path], artifact_path: str) -> None:
        repo = self._artifacts()
        for path in map(Path, paths):
            if path.is_dir():
                repo.log_artifacts(str(path), artifact_path)
            else:
                repo.log_artifact(str(path), artifact_path)

    @timed
    def log_model(self, model, saved: Path | None = None, *, label_names: list[str], examples,
                  threshold: float | None = None) -> str:
        """Log the model once, as the registry's pyfunc built from code over its safetensors save
        (tracking/serving.py): `mlflow models serve` and `mlflow.pyfunc.load_model` work with pickle
        deserialization off, and `load_version` reads the same files. `saved`: a directory
        `model.save()` already wrote (not saved again). `examples`: rows whose first two texts
        are the input example; `threshold`: the multi-label decision threshold.

        The same steps as mlflow.pyfunc.log_model (a LoggedModel linked to the run as an
        output, its files, READY), by run id: log_model on the active run would also read the
        run back and the history of every metric logged so far, a request each."""
        import tempfile

        from mlflow.entities import LoggedModelOutput, LoggedModelStatus
        from mlflow.models import Model

        from pie_mlops.tracking.serving import input_example, save_pyfunc

        client = self.client
        tags = {k: str(self.tags[k]) for k in MODEL_TAGS if k in self.tags}
        name = logged_model_name(*(self.tags.get(k, "?") for k in ("dataset", "arch", "group", "seed")))
        logged = client.create_logged_model(self.experiment_id, name=name, source_run_id=self.run_id,
                                            params={k: str(v)[:6000] for k, v in self.params.items()}, tags=tags)
        try:
            with tempfile.TemporaryDirectory(prefix="pie-model-") as tmp:
                local = Path(tmp) / "model"
                meta = Model(artifact_path=logged.artifact_location, model_uuid=logged.model_id, run_id=self.run_id,
                             model_id=logged.model_id)
                if saved is None:
                    saved = model.save(Path(tmp) / "saved")
                save_pyfunc(model, Path(saved), label_names, threshold, input_example(examples), local,
                            mlflow_model=meta, requirements=model_requirements())
                self._artifacts(logged.artifact_location).log_artifacts(str(local))
        except BaseException:
            try:
                client.finalize_logged_model(logged.model_id, LoggedModelStatus.FAILED)
            except Exception:
                pass  # the original error matters more
            raise
        client.finalize_logged_model(logged.model_id, LoggedModelStatus.READY)
        client.log_outputs(self.run_id, [LoggedModelOutput(logged.model_id, step=0)])
        self.model_uri, self.model_id = f"models:/{logged.model_id}", logged.model_id
        return self.model_uri

    @timed
    def register(self, name: str, alias: str) -> str:
        """Register the logged model as a version of `name`, with our tags and `alias`.

        Call it last: if anything after it fails, `model_run` deletes the version again.
        """
        if self.model_uri is None:
            raise RuntimeError("log_model() must come before register()")
        client = self.client
        known = (store_key(registry_uri()), name)

        def ensure_registered() -> None:
            try:
                client.create_registered_model(name, description=study_description(self.tags))
            except Exception:  # already registered (the usual case)
                client.get_registered_model(name)
            _REGISTERED.add(known)

        if known not in _REGISTERED:  # one lookup per process, not two requests per model
            ensure_registered()
        version_tags = {k: str(self.tags[k]) for k in VERSION_TAGS if k in self.tags}
        # model_id: an MLflow server (REST store) only accepts a models:/ source with it.
        create = lambda: client.create_model_version(  # noqa: E731
            name, self.model_uri, run_id=self.run_id, tags=version_tags, model_id=self.model_id,
            description=version_description(self.tags, self.metrics))
        try:
            mv = create()
        except Exception:  # the registered model was deleted since we saw it
            ensure_registered()
            mv = create()
        self._registered = (name, mv.version)
        set_model_alias(client, name, alias, mv.version)
        self.version = str(mv.version)  # an int in some MLflow versions, a string in others
        return self.version


@contextmanager
def model_run(run_name: str, tags: dict, params: dict, data_dir: str, job_tags: dict | None = None):
    """One model's run; yields a ModelRun. `job_tags`: a worker job's (pie.job, ...), beside
    the identity `tags`; `data_dir`: where the dataset's splits are (its dataset inputs).

    On success the run ends FINISHED; on any exception (KeyboardInterrupt too) it ends
    FAILED and a version registered inside it is deleted again, so a failed run never
    leaves a registered model. Under `mlflow run` (MLFLOW_RUN_ID set), or inside another
    active run, the model run is a child of that run, in its experiment.
    """
    from mlflow.entities import Param

    with spent():
        client = _client()
        parent = active_run_id()  # `mlflow run`'s run, or one active in this process
        all_tags = {**{k: str(v) for k, v in {**tags, **(job_tags or {})}.items()}, **_owner_tags()}
        if parent:
            exp = client.get_run(parent).info.experiment_id
            mark_experiment(client, exp)
            all_tags["mlflow.parentRunId"] = parent
            info = client.create_run(exp, tags=all_tags, run_name=run_name).info
        else:
            try:
                info = client.create_run(experiment_id(), tags=all_tags, run_name=run_name).info
            except Exception:  # the cached experiment was deleted meanwhile: look it up again
                forget_experiments()
                info = client.create_run(experiment_id(), tags=all_tags, run_name=run_name).info
            exp = info.experiment_id
    handle = ModelRun(client, info.run_id, all_tags, exp, info.artifact_uri, params)
    # sent with the final metrics (ModelRun._flush), or below if the run fails before them
    handle._pending_params = [Param(k, str(v)[:6000]) for k, v in sorted(params.items())]
    status = "FAILED"
    try:
        with spent():
            if "dataset" in tags:  # every model trains on train, tunes on validation, is scored on test
                log_data_inputs(client, info.run_id, tags["dataset"], all_tags.get("data_md5", "untracked"),
                                data_dir)
        yield handle
        with spent():
            handle._flush()
        status = "FINISHED"
    except BaseException:
        try:  # a failed run keeps its params and history, as when they were sent up front
            with spent():
                handle._flush(tags=False)
        except Exception:
            pass  # the original error matters more
        if handle._registered:
            try:
                client.delete_model_version(*handle._registered)
            except Exception:
                pass  # the original error matters more
        raise
    finally:
        with spent():
            client.set_terminated(info.run_id, status=status)
