"""Users of an `mlflow server --app-name basic-auth` for a pie-mlops study (docs/scaling.md).

    python scripts/mlflow_users.py worker NAME    a worker: may create, edit and delete runs,
                                                  experiments and registered models (role pie-workers)
    python scripts/mlflow_users.py viewer NAME    a reader: the server's default_permission (READ)

The server is MLFLOW_TRACKING_URI; the admin authenticates as MLflow clients do, with
MLFLOW_TRACKING_USERNAME / MLFLOW_TRACKING_PASSWORD (or ~/.mlflow/credentials). The new user's
password comes from PIE_NEW_USER_PASSWORD or a prompt, never from the command line (`ps`
shows arguments to every user of the machine). Exit 2 with one line on any error.
"""

from __future__ import annotations

import getpass
import os
import sys

ROLE, WORKSPACE = "pie-workers", "default"
# Workers reap dead attempts (delete versions, end runs) and move aliases: MANAGE, on
# every experiment and registered model, since any worker may create them first.
WORKER_GRANTS = (("experiment", "*", "MANAGE"), ("registered_model", "*", "MANAGE"))


def _role(client) -> int:
    for role in client.list_roles(WORKSPACE):
        if role.name == ROLE:
            return role.id
    role = client.create_role(WORKSPACE, ROLE, "workers of a pie-mlops study (scripts/mlflow_users.py)")
    for resource, pattern, permission in WORKER_GRANTS:
        client.add_role_permission(role.id, resource, pattern, permission)
    return role.id


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] not in ("worker", "viewer"):
        print(__doc__.strip().split("\n\n")[1], file=sys.stderr)
        return 2
    kind, name = argv
    uri = os.environ.get("MLFLOW_TRACKING_URI", "")
    if not uri.startswith(("http://", "https://")):
        print("error: set MLFLOW_TRACKING_URI to the server's URL (http://host:port)", file=sys.stderr)
        return 2
    password = os.environ.get("PIE_NEW_USER_PASSWORD") or getpass.getpass(f"password for {name}: ")
    from mlflow.exceptions import MlflowException
    from mlflow.server.auth.client import AuthServiceClient

    client = AuthServiceClient(uri)
    try:
        client.create_user(name, password)
        if kind == "worker":
            client.assign_role(name, _role(client))
    except MlflowException as exc:
        print(f"error: {uri}: {str(exc).splitlines()[0]}", file=sys.stderr)
        return 2
    print(f"created {kind} {name} on {uri}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
