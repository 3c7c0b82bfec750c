"""Loading a registered version back as our classifier (prune's `os` schedule starts from it)."""

from __future__ import annotations

from pathlib import Path

from pie_mlops.util.errors import PieError
from pie_mlops.tracking.accounting import timed
from pie_mlops.tracking.store import _client


@timed
def load_version(name: str, alias: str, dst: str | Path, mv=None):
    """Load `models:/name@alias` as our classifier from the safetensors save inside its pyfunc
    (never unpickling anything); a version logged before the pyfunc form has it under its run's
    `safetensors/`. `mv`: that version, if the caller already looked it up (one request fewer)."""
    from pie_mlops.models import load_model

    return load_model(version_files(name, alias, dst, mv)[0])


@timed
def version_files(name: str, alias: str, dst: str | Path, mv=None) -> tuple[Path, dict | None]:
    """(the version's model save, downloaded under `dst`; a reference to its weights file,
    {"model_id", "path"}, that a delta (models/delta.py) can name as its base, or None for a
    version in the older two-copy form). Files missing from the artifact store (mlartifacts/
    deleted or moved): PieError naming the version and the fix, not MLflow's traceback."""
    try:
        return _version_files(name, alias, dst, mv)
    except LookupError:
        raise
    except Exception as exc:  # MlflowException, OSError, a download's PieError: the store answered, the files are gone
        from pie_mlops.tracking.guard import _reason
        from pie_mlops.tracking.store import artifact_root, tracking_uri

        root = artifact_root(tracking_uri())
        where = f"{root.removeprefix('file://')}/" if root else "the server's artifact store"
        raise PieError(f"model {name}@{alias}: its files are missing from {where} ({_reason(exc)}); restore "
                       f"that folder from a backup, or delete the registered model's versions "
                       f"(or mlflow.db with it) and re-run `pie-mlops train`") from None


def _version_files(name: str, alias: str, dst: str | Path, mv=None) -> tuple[Path, dict | None]:
    from pie_mlops.util.compat import logged_model_files
    from pie_mlops.models.common import WEIGHTS_NAME
    from pie_mlops.tracking.finished import download_run_artifacts
    from pie_mlops.tracking.registry import version_by_alias

    mv = mv if mv is not None else version_by_alias(name, alias)
    if mv is None:
        raise LookupError(f"{name}@{alias} is not in the registry")
    client = _client()
    Path(dst).mkdir(parents=True, exist_ok=True)
    # The SQLite store leaves mv.model_id empty; the source is `models:/<model id>` either way.
    model_id = getattr(mv, "model_id", None) or (mv.source or "").removeprefix("models:/")
    if model_id.startswith("m-"):
        from mlflow.models import Model

        repo = logged_model_files(model_id, client.tracking_uri)
        if any(f.path == "MLmodel" for f in repo.list_artifacts()):
            flavor = Model.load(repo.download_artifacts("MLmodel", str(dst))).flavors.get("python_function", {})
            saved = (flavor.get("artifacts") or {}).get("model", {}).get("path")
            if saved:  # the pyfunc's copy of the model save (tracking/serving.py)
                return Path(repo.download_artifacts(saved, str(dst))), {"model_id": model_id,
                                                                        "path": f"{saved}/{WEIGHTS_NAME}"}
    return download_run_artifacts(mv.run_id, "safetensors", dst), None  # the older, two-copy form
