"""All MLflow calls live here (docs/design.md §2). mlflow is imported lazily: it is slow to import.
So are the parts: `tracking.<name>` imports the one module `LAZY` names for it on first use,
so a stage that only logs an artifact (check) never imports the model loader (models/).

- `store`: URIs, the client, experiments, the active run.
- `provenance`: the version and identity tags, their values (data_md5, git_sha, params_hash), model requirements.
- `models`: one run per model (its metrics, artifacts, logged model and version); `loading`: a version back.
- `registry`: registered model names, aliases, versions by alias or run, the champion.
- `lineage`: MLflow's context tags and the runs' dataset inputs.
- `finished`: finished runs: skip-on-rerun by identity tags (a worker keeps a snapshot), the latest
  run per (group, seed), a run's params and artifacts read back.
- `studies`: Optuna's parent and per-trial runs.
- `compare`: the comparison's run, metrics and artifacts.
- `recovery`: runs a killed process left RUNNING.
- `guard`: the start-up check of the store, its creation lock, per-model claims on SQLite.
- `accounting`: the seconds a job spends in tracking calls, into its `ctx.totals`.
"""

# name -> the module that defines it; pie_mlops/util/fingerprint.py reads this table (dvc.yaml's deps)
LAZY = {
    "clear_champion": "compare", "compare_run": "compare", "log_compare_artifacts": "compare",
    "log_metric_batch": "compare", "metric_key": "compare",
    "download_run_artifacts": "finished", "find_finished_run": "finished", "model_runs": "finished",
    "run_param": "finished",
    "model_claim": "guard", "open_store": "guard",
    "load_version": "loading", "version_files": "loading",
    "ModelRun": "models", "model_run": "models",
    "reap_job_runs": "recovery", "reap_stale_runs": "recovery", "run_registered": "recovery",
    "alias_for": "registry", "registered_model_name": "registry", "set_champion": "registry",
    "set_description_line": "registry", "version_by_alias": "registry", "version_of_run": "registry",
    "IDENTITY_TAGS": "provenance", "MODEL_REQUIREMENTS": "provenance", "VERSION_TAGS": "provenance",
    "data_md5": "provenance", "git_sha": "provenance", "model_requirements": "provenance", "params_hash": "provenance",
    "DEFAULT_EXPERIMENT": "store", "DEFAULT_TRACKING_URI": "store", "active_run_id": "store", "artifact_root": "store",
    "experiment_id": "store", "log_artifacts_if_active": "store", "registry_uri": "store", "tracking_uri": "store",
    "claim_result": "studies", "log_study_result": "studies", "study_run": "studies", "trial_run": "studies",
}


def __getattr__(name: str):
    if name not in LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f"{__name__}.{LAZY[name]}"), name)
    globals()[name] = value  # once: later lookups do not come back here
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(LAZY))
