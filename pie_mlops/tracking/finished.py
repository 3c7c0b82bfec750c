"""Skip-on-rerun: is there a FINISHED run of this model already (by its identity tags)?"""

from __future__ import annotations

import threading

from pie_mlops.tracking.accounting import current_job_tags, timed
from pie_mlops.tracking.store import IDENTITY_TAGS, _client, experiment_ids, store_key, tracking_uri


@timed
def find_finished_run(tags: dict) -> str | None:
    """The id of a FINISHED run carrying all IDENTITY_TAGS of `tags`, in any experiment.

    Inside a worker job the answer comes from the worker's snapshot of finished runs (see
    finished_snapshot); elsewhere from one search per call."""
    if current_job_tags():
        return finished_snapshot(tags["dataset"], tags["arch"]).get(_identity(tags))
    client = _client()
    filt = " and ".join(f"tags.{k} = '{tags[k]}'" for k in IDENTITY_TAGS) + " and attributes.status = 'FINISHED'"
    experiments = experiment_ids()
    if not experiments:
        return None
    runs = client.search_runs(experiments, filter_string=filt, max_results=1, order_by=["attributes.start_time DESC"])
    return runs[0].info.run_id if runs else None


def _identity(tags: dict) -> tuple:
    return tuple(str(tags.get(k, "")) for k in IDENTITY_TAGS)


# A worker's FINISHED runs per (store, dataset, arch): identity -> newest run id. A per-job
# search is the dearest request a job makes, and it grows with the runs table (the paper grid
# has ~10,000). Taken once per worker process, it can only miss a run finished after it by
# another attempt of the same job, and Optuna's claims see to that: an earlier running or
# complete attempt makes a claim a duplicate (no work), and a retry of a dead one drops the
# snapshot first (forget_finished).
_FINISHED: dict[tuple[str, str, str], dict[tuple, str]] = {}
_FINISHED_LOCK = threading.Lock()  # the lanes of one worker share it


def finished_snapshot(dataset: str, arch: str) -> dict[tuple, str]:
    key = (store_key(tracking_uri()), dataset, arch)
    with _FINISHED_LOCK:
        if key not in _FINISHED:
            client, found = _client(), {}
            experiments = experiment_ids()
            filt = f"tags.dataset = '{dataset}' and tags.arch = '{arch}' and attributes.status = 'FINISHED'"
            token = None
            while experiments:
                page = client.search_runs(experiments, filter_string=filt, max_results=1000, page_token=token,
                                          order_by=["attributes.start_time DESC"])
                for run in page:
                    found.setdefault(_identity(run.data.tags), run.info.run_id)  # newest first
                token = page.token
                if not token:
                    break
            _FINISHED[key] = found
        return _FINISHED[key]


def forget_finished() -> None:
    """Drop the snapshots of finished runs: the next lookup searches afresh."""
    with _FINISHED_LOCK:
        _FINISHED.clear()
