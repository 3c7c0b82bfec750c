"""The `pie-mlops` command line: a thin click layer over the stage functions.

Heavy libraries (pandas, torch, great-expectations, mlflow) are imported inside the
commands, never at module level, so `pie-mlops --help` starts fast (bench/import_time.py).
"""

from __future__ import annotations

import sys

import click

from pie_mlops.cli.group import cli
from pie_mlops.util.errors import DataQualityError, PieError

# The commands register themselves on `cli` (pie_mlops/cli/group.py) when imported.
from pie_mlops.cli import data, models, results  # noqa: F401


def main(argv: list[str] | None = None) -> None:
    """Entry point: bad input exits 2, a failed quality gate exits 1, each with one clear line;
    anything else is a bug: exit 3 with its traceback."""
    try:
        cli.main(args=argv, prog_name="pie-mlops", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except (PieError, DataQualityError) as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        click.echo("aborted", err=True)
        sys.exit(130)
    except Exception as exc:
        if "database disk image is malformed" in _innermost(exc):  # SQLite damage met mid-stage
            click.echo("error: a SQLite database is damaged (database disk image is malformed): the MLflow store "
                       "passed its start-up check, so check it and any Optuna storage with "
                       "sqlite3 FILE 'PRAGMA quick_check', then restore the damaged one from a backup or "
                       "salvage it (sqlite3 FILE .recover | sqlite3 recovered.db)", err=True)
            sys.exit(2)
        if _machine_state(exc):  # a permission, a full or read-only disk: not a bug
            where = f"{exc.filename}: " if getattr(exc, "filename", None) else ""
            click.echo(f"error: {where}{exc.strerror or exc}", err=True)
            sys.exit(2)
        import traceback

        traceback.print_exc()
        click.echo("internal error (exit 3): the traceback above is a bug; please report it", err=True)
        sys.exit(3)


def _innermost(exc: BaseException) -> str:
    """The messages of `exc` and its causes, joined (the innermost names the cause)."""
    seen = [exc]
    while (seen[-1].__cause__ or seen[-1].__context__) is not None and len(seen) < 20:
        seen.append(seen[-1].__cause__ or seen[-1].__context__)
    return " | ".join(str(e) for e in reversed(seen))


def _machine_state(exc: Exception) -> bool:
    import errno

    return isinstance(exc, (PermissionError, IsADirectoryError, NotADirectoryError)) or (
        isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EROFS, errno.EDQUOT))


if __name__ == "__main__":
    main()
