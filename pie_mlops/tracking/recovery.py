"""Crash recovery for runs a killed process left RUNNING."""

from __future__ import annotations

import os

from pie_mlops.tracking.store import _client, experiment_ids

OWNER_TAG = "pie.owner"  # 'mlflow run' on the run `mlflow run` made, beside pie.host/pie.pid of that process


# ---------------------------------------------------------------------------------------
# Crash recovery: a process killed with SIGKILL (or by the OOM killer, or a power cut) runs
# no `finally`, so its run stays RUNNING, maybe with a registered version. The next stage
# run finds those by the owner tags and cleans up before it starts.
# ---------------------------------------------------------------------------------------
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


def _reap(filt: str, keep, why: str) -> list[str]:
    """Mark KILLED the RUNNING runs matching `filt` (unless `keep(tags)`), deleting any version
    they registered, so a rerun redoes exactly that work. Returns their ids."""
    client = _client()
    experiments = experiment_ids()
    if not experiments:
        return []
    reaped = []
    for run in client.search_runs(experiments, filter_string=f"{filt} and attributes.status = 'RUNNING'",
                                  max_results=1000):
        if keep(run.data.tags):
            continue
        run_id = run.info.run_id
        for mv in client.search_model_versions(f"run_id = '{run_id}'"):
            client.delete_model_version(mv.name, mv.version)
        client.set_tag(run_id, "pie.reaped", why)
        client.set_terminated(run_id, status="KILLED")
        reaped.append(run_id)
    return reaped


def reap_stale_runs(dataset: str, arch: str) -> list[str]:
    """The RUNNING runs of (dataset, arch) whose process on this host is gone: KILLED, their
    versions deleted. Returns their ids."""
    return _reap(f"tags.dataset = '{dataset}' and tags.arch = '{arch}'", lambda tags: not _process_gone(tags),
                 "its process was gone: killed before it could finish")


def reap_job_runs(job: str) -> list[str]:
    """The RUNNING runs of worker job `job` (tag pie.job): KILLED, their versions deleted.

    Called by a retry of a job whose worker died (Optuna's heartbeat said so, whatever host it
    ran on): the dead attempt's run would otherwise stay RUNNING, perhaps with a version."""
    return _reap(f"tags.`pie.job` = '{job}'", lambda tags: False,
                 "its worker died (Optuna heartbeat stale): job retried")


def reap_orphan_parents() -> list[str]:
    """The RUNNING runs of `mlflow run` processes on this host that are gone (SIGKILL leaves
    them RUNNING for ever; tracking.guard tags them): KILLED. Returns their ids."""
    return _reap(f"tags.`{OWNER_TAG}` = 'mlflow run'", lambda tags: not _process_gone(tags),
                 "its `mlflow run` process was gone: killed before it could end the run")


def run_registered(run_id: str) -> bool:
    """True when the run is FINISHED and a model version was registered from it."""
    client = _client()
    if client.get_run(run_id).info.status != "FINISHED":
        return False
    return bool(client.search_model_versions(f"run_id = '{run_id}'"))
