"""Where a run comes from: MLflow's own context tags, and its data as MLflow dataset inputs."""

from __future__ import annotations

import os
from pathlib import Path


def context_tags() -> dict:
    """MLflow's own run context (user, source name and type, git commit, ...) from its context
    providers. They find git from the entry script, which for the `pie-mlops` console script
    lives in the venv, outside the repository: then MLflow's git helpers ask the working directory."""
    from mlflow.utils.mlflow_tags import MLFLOW_GIT_BRANCH, MLFLOW_GIT_COMMIT, MLFLOW_GIT_REPO_URL

    from pie_mlops.util.compat import mlflow_context_tags, mlflow_git

    tags = mlflow_context_tags()
    if MLFLOW_GIT_COMMIT not in tags:
        commit, branch, url = mlflow_git(os.getcwd())
        if commit:
            found = {MLFLOW_GIT_COMMIT: commit, MLFLOW_GIT_BRANCH: branch, MLFLOW_GIT_REPO_URL: url}
            tags.update({k: v for k, v in found.items() if v})
    return tags


SPLITS = ("train", "validation", "test")
_ENTITIES: dict[tuple, object] = {}  # (file, mtime, digest) -> Dataset entity: one read per process


def dataset_entity(dataset: str, split: str, digest: str, data_dir: str | Path = "data"):
    """One split as an MLflow Dataset through `mlflow.data.from_pandas`: its schema (columns
    and types) and profile (rows, cells), which the UI shows, with digest = the DVC data
    version. Without the file (a run that names data it did not read), a bare entity."""
    import json
    import warnings

    from mlflow.entities import Dataset

    from pie_mlops.util.compat import mlflow_dataset_entity

    uri = f"{Path(data_dir).as_posix().rstrip('/')}/{dataset}/{split}.parquet"
    name = f"{dataset}/{split}"
    try:
        key = (str(Path(uri).resolve()), Path(uri).stat().st_mtime_ns, str(digest))
    except OSError:
        return Dataset(name=name, digest=str(digest), source_type="local", source=json.dumps({"uri": uri}))
    if key not in _ENTITIES:
        import mlflow.data
        import pandas as pd

        frame = pd.read_parquet(uri)
        if "labels" in frame:  # multi-hot arrays: as lists MLflow infers array<long>, as ndarrays no schema
            frame["labels"] = [None if v is None else [int(x) for x in v] for v in frame["labels"]]
        with warnings.catch_warnings():  # "can be interpreted in multiple ways": two local sources match;
            warnings.simplefilter("ignore", UserWarning)
            found = mlflow.data.from_pandas(frame, source=uri, name=name, digest=str(digest),
                                            targets="labels" if "labels" in frame else "label")
            entity = mlflow_dataset_entity(found)  # schema inference hints at integer columns: ours have no NaN
        if len(_ENTITIES) >= 16:  # a few datasets' splits, not every version a long process saw
            _ENTITIES.clear()
        _ENTITIES[key] = entity
    return _ENTITIES[key]


def log_data_inputs(client, run_id: str, dataset: str, digest: str, data_dir: str | Path = "data",
                    splits: tuple[str, ...] = SPLITS) -> None:
    """The run's data as MLflow dataset inputs, one per split (context train/validation/test),
    digest = the DVC data version (`data_md5`). MLflow keeps one input per (name, digest) and
    run, so each split is its own dataset `<dataset>/<split>`, sourced from its file."""
    from mlflow.entities import DatasetInput, InputTag
    from mlflow.utils.mlflow_tags import MLFLOW_DATASET_CONTEXT

    inputs = [DatasetInput(dataset_entity(dataset, split, digest, data_dir),
                           tags=[InputTag(MLFLOW_DATASET_CONTEXT, split)])
              for split in splits]
    client.log_inputs(run_id, datasets=inputs)
