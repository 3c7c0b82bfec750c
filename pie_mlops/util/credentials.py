"""Passwords stay out of URLs that are written down (issue 17, item 14).

A storage URL travels through params.yaml (and so dvc.lock), `-P storage=` (an MLflow run
param), `--storage` (process arguments, visible in `ps`) and logs. None of these may hold a
password: PostgreSQL clients read it from PGPASSWORD or ~/.pgpass (libpq), MLflow clients
from MLFLOW_TRACKING_PASSWORD or ~/.mlflow/credentials. `redact_url` is for anything printed.
"""

from __future__ import annotations

from urllib.parse import quote

from pie_mlops.util.errors import PieError

HIDDEN = "***"
_QUERY_SECRETS = ("password", "pass", "pwd", "passwd")


def _parse(url: str):
    """SQLAlchemy's URL of `url`, or None for what it cannot parse (a path, `databricks`).
    The userinfo ends at the authority's last '@' (RFC 3986): a raw '@' or '/' in a password
    is quoted first, or the parser would take part of the password for the host."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    scheme, sep, rest = url.partition("://")
    if sep:
        head, qmark, query = rest.partition("?")
        at = head.rfind("@")
        if at > 0:
            user, colon, password = head[:at].partition(":")
            if colon and (set(password) & set("@/?#")):
                url = f"{scheme}://{user}:{quote(password, safe='')}@{head[at + 1:]}{qmark}{query}"
    try:
        return make_url(url)
    except (ArgumentError, ValueError):
        return None


def _secret_keys(parsed) -> list[str]:
    return [k for k in parsed.query if k.lower() in _QUERY_SECRETS]


def has_password(url: str | None) -> bool:
    """Does `url` carry a password, in its userinfo or as a `password=` query parameter?"""
    parsed = _parse(str(url)) if url else None
    return parsed is not None and (parsed.password is not None or bool(_secret_keys(parsed)))


def redact_url(url: str | None) -> str:
    """`url` with its password (userinfo or query) shown as ***, for logs and files."""
    if not url:
        return str(url)
    parsed = _parse(str(url))
    if parsed is None:
        return str(url) if "@" not in str(url) else HIDDEN  # unparsable and maybe secret: hide it all
    keys = _secret_keys(parsed)
    if parsed.password is None and not keys:
        return str(url)  # nothing to hide: the URL as given
    if keys:
        parsed = parsed.update_query_dict({k: HIDDEN for k in keys})
    return parsed.render_as_string(hide_password=True).replace("%2A%2A%2A", HIDDEN)


def check_no_password(url: str | None, where: str) -> None:
    """PieError (exit 2) when the storage URL in `where` carries a password."""
    if has_password(url):
        raise PieError(f"{where}: {redact_url(url)} carries a password; remove it and put it in PGPASSWORD or "
                       f"~/.pgpass (never in params, --storage or -P storage=: they end in dvc.lock, run params and ps)")


TRACKING_VARIABLES = ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")


def check_tracking_uris(environ=None) -> None:
    """PieError (exit 2) when MLFLOW_TRACKING_URI or MLFLOW_REGISTRY_URI carries a password:
    MLflow would print it (`View run ... at: http://user:PW@host/...`) and record it; refused
    before MLflow ever sees the URI."""
    import os

    environ = os.environ if environ is None else environ
    for var in TRACKING_VARIABLES:
        uri = environ.get(var)
        if uri and has_password(uri):
            raise PieError(f"{var}={redact_url(uri)} carries a password; remove it from the URI and set "
                           f"MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD (or ~/.mlflow/credentials) "
                           f"instead: a URI is printed in run links and logs")
