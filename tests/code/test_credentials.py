"""Redaction on SQLAlchemy's URL parser, and storage URLs that carry a password rejected."""

import pytest

from pie_mlops.util.credentials import check_no_password, has_password, redact_url
from pie_mlops.util.errors import PieError


@pytest.mark.parametrize("url, shown", [
    ("postgresql+psycopg://pie:s3cret@db:5432/optuna", "postgresql+psycopg://pie:***@db:5432/optuna"),
    ("postgresql+psycopg://pie:a%2Fb%40c@db/optuna", "postgresql+psycopg://pie:***@db/optuna"),  # quoted / and @
    ("postgresql+psycopg://pie:a/b@c@db/optuna", "postgresql+psycopg://pie:***@db/optuna"),  # raw, as typed
    ("postgresql://pie@db/optuna?password=hunter2&sslmode=require",
     "postgresql://pie@db/optuna?password=***&sslmode=require"),
    ("postgresql://pie:x@db/o?PASSWORD=y", "postgresql://pie:***@db/o?PASSWORD=***"),
    ("http://alice:pw@mlflow:5000", "http://alice:***@mlflow:5000"),
])
def test_every_password_is_hidden_and_the_rest_kept(url, shown):
    assert redact_url(url) == shown and has_password(url)
    for secret in ("s3cret", "a/b", "a%2Fb", "hunter2", "pw@", "alice:pw", ":x@", "=y"):
        assert secret not in redact_url(url)


@pytest.mark.parametrize("url", ["sqlite:///optuna.db", "postgresql+psycopg://pie@db:5432/optuna",
                                 "http://127.0.0.1:5000", "mlruns", "databricks", "sqlite:////tmp/a@b/x.db"])
def test_urls_without_a_password_are_left_as_given(url):
    assert redact_url(url) == url and not has_password(url)
    check_no_password(url, "tune.storage")


def test_a_storage_url_with_a_password_is_one_line_saying_where_it_belongs():
    with pytest.raises(PieError) as exc:
        check_no_password("postgresql+psycopg://pie:a/b@c@db/optuna", "tune.storage")
    message = str(exc.value)
    assert "\n" not in message and "a/b" not in message and message.startswith("tune.storage: postgresql+psycopg://pie:***@db/optuna")
    assert "PGPASSWORD or ~/.pgpass" in message
