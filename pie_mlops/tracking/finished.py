"""Skip-on-rerun: is there a FINISHED run of this model already (by its identity tags)?"""

from __future__ import annotations

from pie_mlops.tracking.accounting import timed
from pie_mlops.tracking.store import IDENTITY_TAGS, _client, experiment_ids, store_key, tracking_uri


@timed
def find_finished_run(tags: dict, snapshot=None) -> str | None:
    """The id of a FINISHED run carrying all IDENTITY_TAGS of `tags`, in any experiment.

    With `snapshot` (a worker's context.FinishedRuns) the answer comes from one search per
    (store, dataset, arch) for the whole worker; without, from one search per call."""
    if snapshot is not None:
        key = (store_key(tracking_uri()), tags["dataset"], tags["arch"])
        return snapshot.get(key, lambda: _finished_runs(tags["dataset"], tags["arch"])).get(_identity(tags))
    client = _client()
    filt = " and ".join(f"tags.{k} = '{tags[k]}'" for k in IDENTITY_TAGS) + " and attributes.status = 'FINISHED'"
    experiments = experiment_ids()
    if not experiments:
        return None
    runs = client.search_runs(experiments, filter_string=filt, max_results=1, order_by=["attributes.start_time DESC"])
    return runs[0].info.run_id if runs else None


def _identity(tags: dict) -> tuple:
    return tuple(str(tags.get(k, "")) for k in IDENTITY_TAGS)


def _finished_runs(dataset: str, arch: str) -> dict[tuple, str]:
    """Every FINISHED run of (dataset, arch) in this store: identity -> newest run id."""
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
    return found
