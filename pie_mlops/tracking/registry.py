"""The registry: a study's registered model name, each model's alias, versions found by alias or
by run, the champion alias and the version descriptions' lines."""

from __future__ import annotations

from pie_mlops.tracking.accounting import timed
from pie_mlops.tracking.store import _client


def registered_model_name(dataset: str, arch: str) -> str:
    return f"pie-{dataset}-{arch}"


def alias_for(group: str, seed: int) -> str:
    """The registry alias of one model: `<group>-s<seed>`, made legal for MLflow aliases
    (letters, digits, `_` and `-` only): `magnitude-ft@0.50` seed 0 -> `magnitude-ft-0_50-s0`."""
    return f"{group}-s{seed}".replace("@", "-").replace(".", "_")


@timed
def version_by_alias(name: str, alias: str):
    """The model version `name@alias` (with .run_id, .version, .tags), or None if there is none."""
    from mlflow.exceptions import MlflowException

    try:
        return _client().get_model_version_by_alias(name, alias)
    except MlflowException:
        return None


def set_model_alias(client, name: str, alias: str, version) -> None:
    """MlflowClient.set_registered_model_alias without its prompt check: the check reads the whole
    registered model back, every alias and latest version, a cost that grows with the study (at
    1,200 versions ~33 ms of CPU and ~100 ms a call on SQLite, against ~2 ms; one request more on
    a server) for a name that is never a prompt (ours are `pie-<dataset>-<arch>`).

    MLflow's private `_get_registry_client` (checked with mlflow 3.17.2). It lives here, not in
    util/compat.py, because compat is part of the models' code fingerprint (util/fingerprint.py;
    tracking is not): a tracking-only change there would make every finished model train again."""
    from mlflow.utils.validation import _validate_model_alias_name, _validate_model_version

    _validate_model_alias_name(alias)
    _validate_model_version(version)
    client._get_registry_client().set_registered_model_alias(name, alias, version)


def set_champion(name: str, version: str, tags: dict) -> None:
    """Point the `champion` alias at `version` and record why in the version's tags and description."""
    client = _client()
    client.set_registered_model_alias(name, "champion", version)
    for k, v in tags.items():
        client.set_model_version_tag(name, version, k, str(v))
    if tags.get("champion_reason"):
        set_description_line(name, version, "Champion", tags["champion_reason"])


def set_description_line(name: str, version: str, key: str, text: str) -> None:
    """Put `key: text` on its own line of the version's description, replacing an earlier one
    (a later compare replaces what an earlier one wrote; it never appends twice)."""
    client = _client()
    mv = client.get_model_version(name, version)
    lines = [line for line in (mv.description or "").split("\n") if line and not line.startswith(f"{key}: ")]
    client.update_model_version(name, version, description="\n".join([*lines, f"{key}: {text}"]))


def version_of_run(name: str, run_id: str) -> str | None:
    """The registered version of `name` made from `run_id`, if any."""
    found = _client().search_model_versions(f"name = '{name}' and run_id = '{run_id}'")
    return str(found[0].version) if found else None
