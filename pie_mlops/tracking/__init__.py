"""All MLflow calls live here (docs/design.md §2). mlflow is imported lazily: it is slow to import.
So are the parts: `tracking.<name>` imports the one module `LAZY` names for it on first use,
so a stage that only logs an artifact (check) never imports the model loader (models/).

- `store`: URIs, the client, experiments, provenance tags (data_md5, git_sha, params_hash).
- `models`: one run per model, registry versions, aliases, champion; `loading`: a version back.
- `lineage`: MLflow's context tags and the runs' dataset inputs.
- `finished`: skip-on-rerun, by identity tags (a worker keeps a snapshot).
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
    "find_finished_run": "finished",
    "model_claim": "guard", "open_store": "guard",
    "load_version": "loading", "version_files": "loading",
    "ModelRun": "models", "alias_for": "models", "download_run_artifacts": "models", "model_run": "models",
    "model_runs": "models", "registered_model_name": "models", "run_param": "models", "set_champion": "models",
    "set_description_line": "models", "version_by_alias": "models", "version_of_run": "models",
    "reap_job_runs": "recovery", "reap_stale_runs": "recovery", "run_registered": "recovery",
    "DEFAULT_EXPERIMENT": "store", "DEFAULT_TRACKING_URI": "store", "IDENTITY_TAGS": "store",
    "MODEL_REQUIREMENTS": "store", "VERSION_TAGS": "store", "active_run_id": "store", "artifact_root": "store",
    "data_md5": "store", "experiment_id": "store", "git_sha": "store", "log_artifacts_if_active": "store",
    "model_requirements": "store", "params_hash": "store", "registry_uri": "store", "tracking_uri": "store",
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
