"""The comparison's run, its metrics and artifacts."""

from __future__ import annotations

import time
from contextlib import contextmanager
from pathlib import Path

from pie_mlops.tracking.lineage import log_data_inputs
from pie_mlops.tracking.provenance import git_sha
from pie_mlops.tracking.store import _client, _ends, _flat, _fluent, _owner_tags, _run_home


# ---------------------------------------------------------------------------------------
# The comparison: one `compare` run per (dataset, arch), PIE metrics on the model runs,
# and the `champion` alias.
# ---------------------------------------------------------------------------------------
def metric_key(group: str, name: str) -> str:
    """`<group>/<name>` made legal for MLflow metric names ('@' is not): `magnitude-os-0.50/pie_share`."""
    return f"{group.replace('@', '-')}/{name}"


@contextmanager
def compare_run(dataset: str, arch: str, params: dict, job_tags: dict | None = None):
    """The comparison's run; yields its id. FINISHED on success, FAILED on any error.
    Under `mlflow run` it nests under the run `mlflow run` made."""
    from mlflow.entities import Param

    client = _client()
    exp, extra = _run_home(client)
    tags = {"stage": "compare", "dataset": dataset, "arch": arch, "data_md5": str(params.get("data_md5", "")),
            "git_sha": git_sha(), **_owner_tags(), **(job_tags or {}), **extra}
    run_id = client.create_run(exp, tags=tags, run_name=f"compare {dataset}/{arch}").info.run_id
    flat = {k: v for k, v in _flat("", params).items()}
    client.log_batch(run_id, params=[Param(k, str(v)[:6000]) for k, v in sorted(flat.items())])
    with _ends(client, run_id):
        split = str(params["split"])  # PIEs are counted there; EL2N reads train
        log_data_inputs(client, run_id, dataset, tags["data_md5"] or "untracked", params["data_dir"],
                        tuple(dict.fromkeys((split, "train"))))
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
    examples = Path(out_dir) / "pie_examples.parquet"  # the PIEs themselves, per group (analysis/run.py)
    if table is not None or examples.is_file():
        import pandas as pd

        with _fluent() as mlflow:
            if table is not None:
                mlflow.log_table(data=table, artifact_file="pie_summary.json", run_id=run_id)
            if examples.is_file():
                mlflow.log_table(data=pd.read_parquet(examples), artifact_file="pie_examples.json", run_id=run_id)


def log_claims(run_id: str, path: Path, verdicts: dict[str, str]) -> None:
    """claims.json on a compare run (`compare/claims.json`) and each verdict as a tag
    (`claim.<key>`), so runs can be searched by verdict in the UI."""
    client = _client()
    client.log_artifact(run_id, str(path), artifact_path="compare")
    for key, verdict in sorted(verdicts.items()):
        client.set_tag(run_id, f"claim.{key}", verdict)


def clear_champion(name: str) -> str | None:
    """Remove a stale `champion` alias (no version qualifies now); the version it named, if any."""
    from mlflow.exceptions import MlflowException

    client = _client()
    try:
        mv = client.get_model_version_by_alias(name, "champion")
    except MlflowException:
        return None  # no such alias (or no such model yet)
    client.delete_registered_model_alias(name, "champion")
    return str(mv.version)
