"""Finished model runs: skip-on-rerun (is there a FINISHED run of this model already, by its identity
tags?), the latest run per (group, seed) that compare collects, and what a run left (a param, artifacts)."""

from __future__ import annotations

from pathlib import Path

from pie_mlops.util.errors import PieError
from pie_mlops.tracking.accounting import timed
from pie_mlops.tracking.provenance import IDENTITY_TAGS
from pie_mlops.tracking.store import _client, experiment_ids, store_key, tracking_uri


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


@timed
def run_param(run_id: str, key: str) -> str | None:
    """One logged param of a run (e.g. a dense model's `epochs`), or None if it logged none."""
    return _client().get_run(run_id).data.params.get(key)


def model_runs(dataset: str, arch: str) -> list[dict]:
    """The latest FINISHED model run per (group, seed) of one registered model's study
    (dense runs from `train`, pruned ones from `prune`), newest first within a pair."""
    client = _client()
    experiments = experiment_ids()
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
                                        "data_md5": tags.get("data_md5"), "tags": dict(tags),
                                        "metrics": dict(run.data.metrics)})  # sizes, latency: compression.json
            token = page.token
            if not token:
                break
    return sorted(latest.values(), key=lambda r: (r["group"] != "dense", r["group"], r["seed"]))


@timed
def download_run_artifacts(run_id: str, artifact_path: str, dst: str | Path) -> Path:
    """The run's `artifact_path`, downloaded under `dst`; files gone from the artifact store
    (mlartifacts/ deleted or moved) are a PieError naming the run, not MLflow's traceback."""
    Path(dst).mkdir(parents=True, exist_ok=True)
    try:
        return Path(_client().download_artifacts(run_id, artifact_path, str(dst)))
    except Exception as exc:  # MlflowException, OSError: the store answered, the files did not
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise PieError(f"run {run_id}: cannot download its {artifact_path}/ from the artifact store ({reason}); "
                       f"restore mlartifacts/ (or the server's artifact store), or delete the run and re-run "
                       f"its stage") from None
