"""Optuna studies: one parent run per study (resumed with it), a nested child run per trial."""

from __future__ import annotations

import time
from contextlib import contextmanager
from pathlib import Path

from pie_mlops.tracking.lineage import context_tags, log_data_inputs
from pie_mlops.tracking.provenance import data_md5
from pie_mlops.tracking.store import _client, _ends, _flat, _run_home


# ---------------------------------------------------------------------------------------
PARENT_ATTR = "mlflow_parent_run_id"  # study user attr: the study's parent run
RUN_ATTR = "mlflow_run_id"  # trial user attr: the trial's own run (optuna-dashboard shows it)
TUNE_SPLITS = ("train", "validation")  # a study never reads test


@contextmanager
def study_run(study_name: str, params: dict, study=None, created: bool = True, wait_s: float = 120.0):
    """The study's parent run; yields its id. Re-running a study resumes the same parent.

    With parallel workers (`study` given), only the worker that created the Optuna study
    creates the parent and stores its id in the study's user attrs; the others wait for it,
    so a study has exactly one parent whatever the number of workers."""
    from mlflow.entities import Param

    client = _client()
    exp, extra = _run_home(client)
    run_id = (study.user_attrs.get(PARENT_ATTR) if study is not None else None)
    if run_id is None and study is not None and not created:
        deadline = time.time() + wait_s
        while run_id is None and time.time() < deadline:
            time.sleep(0.5)
            run_id = study.user_attrs.get(PARENT_ATTR)
    if run_id is None:
        found = client.search_runs([exp], f"tags.stage = 'tune' AND tags.study = '{study_name}'",
                                   order_by=["attributes.start_time DESC"], max_results=1)
        run_id = found[0].info.run_id if found else None
    if run_id is not None:
        client.update_run(run_id, status="RUNNING")
    else:
        md5 = data_md5(params["data_dir"])
        tags = {"stage": "tune", "study": study_name, "dataset": params["dataset"], "arch": params["arch"],
                "data_md5": md5, **context_tags(), **extra}
        run_id = client.create_run(exp, tags=tags, run_name=f"tune {study_name}").info.run_id
        flat = {k: v for k, v in _flat("", params).items() if k != "storage"}  # may hold a password
        client.log_batch(run_id, params=[Param(k, str(v)[:6000]) for k, v in sorted(flat.items())])
        log_data_inputs(client, run_id, params["dataset"], md5, params["data_dir"], TUNE_SPLITS)
    if study is not None and study.user_attrs.get(PARENT_ATTR) != run_id:
        study.set_user_attr(PARENT_ATTR, run_id)
    with _ends(client, run_id):
        yield run_id


@contextmanager
def trial_run(parent_id: str, trial, hp: dict, data: dict | None = None):
    """A child run for one Optuna `trial`; yields `log_epoch(epoch, metrics)`. The trial
    records the run's id as its user attr `mlflow_run_id`. `data`: {dataset, data_dir}, the
    splits the trial reads, logged as the run's dataset inputs.

    A pruned trial ends KILLED with tag state=pruned, a crashed one FAILED.
    """
    import optuna
    from mlflow.entities import Metric, Param

    client = _client()
    parent = client.get_run(parent_id)
    exp, number = parent.info.experiment_id, trial.number
    tags = {**context_tags(), "mlflow.parentRunId": parent_id, "stage": "tune-trial", "trial": str(number),
            "study": parent.data.tags.get("study", "")}
    run_id = client.create_run(exp, tags=tags, run_name=f"trial {number}").info.run_id
    trial.set_user_attr(RUN_ATTR, run_id)
    client.log_batch(run_id, params=[Param(k, str(v)) for k, v in sorted(hp.items())])
    if data is not None:
        log_data_inputs(client, run_id, data["dataset"], parent.data.tags.get("data_md5", "untracked"),
                        data["data_dir"], TUNE_SPLITS)

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


def claim_result(parent_id: str, n_done: int) -> bool:
    """True for exactly one caller per (study run, number of finished trials): whoever logs the
    param `pie.result_at_<n>` first. MLflow params are write-once (another value is refused,
    by the database's key), so parallel workers need no lock of their own: earlier versions
    used an Optuna study per token, which cluttered `optuna studies`."""
    import uuid

    from mlflow.exceptions import MlflowException

    try:
        _client().log_param(parent_id, f"pie.result_at_{n_done}", uuid.uuid4().hex)
        return True
    except MlflowException:
        return False


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
