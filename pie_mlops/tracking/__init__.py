"""All MLflow calls live here (docs/design.md §2). mlflow is imported lazily: it is slow to import.

- `store`: URIs, the client, experiments, provenance tags (data_md5, git_sha, params_hash).
- `models`: one run per model, registry versions, aliases, champion; `loading`: a version back.
- `lineage`: MLflow's context tags and the runs' dataset inputs.
- `finished`: skip-on-rerun, by identity tags (a worker keeps a snapshot).
- `studies`: Optuna's parent and per-trial runs.
- `compare`: the comparison's run, metrics and artifacts.
- `recovery`: runs a killed process left RUNNING.
- `guard`: the start-up check of the store, its creation lock, per-model claims on SQLite.
- `accounting`: per-thread tracking time and worker-job tags.
"""

from pie_mlops.tracking.compare import clear_champion, compare_run, log_compare_artifacts, log_metric_batch, metric_key
from pie_mlops.tracking.finished import find_finished_run
from pie_mlops.tracking.guard import model_claim, open_store
from pie_mlops.tracking.loading import load_version, version_files
from pie_mlops.tracking.models import (
    ModelRun, alias_for, download_run_artifacts, model_run, model_runs, registered_model_name,
    run_param, set_champion, set_description_line, version_by_alias, version_of_run,
)
from pie_mlops.tracking.recovery import reap_job_runs, reap_stale_runs, run_registered
from pie_mlops.tracking.store import (
    DEFAULT_EXPERIMENT, DEFAULT_TRACKING_URI, IDENTITY_TAGS, MODEL_REQUIREMENTS, VERSION_TAGS, active_run_id,
    artifact_root, data_md5, experiment_id, git_sha, log_artifacts_if_active, model_requirements, params_hash,
    registry_uri, tracking_uri,
)
from pie_mlops.tracking.studies import claim_result, log_study_result, study_run, trial_run

__all__ = [
    "DEFAULT_EXPERIMENT", "DEFAULT_TRACKING_URI", "IDENTITY_TAGS", "MODEL_REQUIREMENTS", "VERSION_TAGS", "ModelRun",
    "active_run_id", "alias_for", "claim_result", "artifact_root", "clear_champion", "compare_run", "data_md5", "download_run_artifacts",
    "experiment_id", "find_finished_run", "git_sha", "load_version", "version_files", "log_artifacts_if_active",
    "log_compare_artifacts", "log_metric_batch", "log_study_result", "metric_key", "model_requirements",
    "model_claim", "model_run", "model_runs", "open_store", "params_hash", "reap_job_runs", "reap_stale_runs", "run_registered", "registered_model_name", "registry_uri", "run_param",
    "set_champion", "set_description_line", "study_run", "tracking_uri", "trial_run", "version_by_alias", "version_of_run",
]
