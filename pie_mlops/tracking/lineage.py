"""Where a run comes from: MLflow's own context tags, and its data as MLflow dataset inputs."""

from __future__ import annotations

import os
from pathlib import Path


def context_tags() -> dict:
    """MLflow's own run context (user, source name and type, git commit, ...) from its context
    providers. They find git from the entry script, which for the `pie-mlops` console script
    lives in the venv, outside the repository: then MLflow's git helpers ask the working directory."""
    from mlflow.tracking.context.registry import resolve_tags
    from mlflow.utils import git_utils
    from mlflow.utils.mlflow_tags import MLFLOW_GIT_BRANCH, MLFLOW_GIT_COMMIT, MLFLOW_GIT_REPO_URL

    tags = resolve_tags()
    if MLFLOW_GIT_COMMIT not in tags:
        cwd = os.getcwd()
        commit = git_utils.get_git_commit(cwd)
        if commit:
            found = {MLFLOW_GIT_COMMIT: commit, MLFLOW_GIT_BRANCH: git_utils.get_git_branch(cwd),
                     MLFLOW_GIT_REPO_URL: git_utils.get_git_repo_url(cwd)}
            tags.update({k: v for k, v in found.items() if v})
    return tags


SPLITS = ("train", "validation", "test")


def log_data_inputs(client, run_id: str, dataset: str, digest: str, data_dir: str | Path = "data",
                    splits: tuple[str, ...] = SPLITS) -> None:
    """The run's data as MLflow dataset inputs, one per split (context train/validation/test),
    digest = the DVC data version (`data_md5`). MLflow keeps one input per (name, digest) and
    run, so each split is its own dataset `<dataset>/<split>`, sourced from its file."""
    import json

    from mlflow.entities import Dataset, DatasetInput, InputTag
    from mlflow.utils.mlflow_tags import MLFLOW_DATASET_CONTEXT

    home = f"{Path(data_dir).as_posix().rstrip('/')}/{dataset}"
    inputs = [DatasetInput(Dataset(name=f"{dataset}/{split}", digest=str(digest), source_type="local",
                                   source=json.dumps({"uri": f"{home}/{split}.parquet"})),
                           tags=[InputTag(MLFLOW_DATASET_CONTEXT, split)])
              for split in splits]
    client.log_inputs(run_id, datasets=inputs)
