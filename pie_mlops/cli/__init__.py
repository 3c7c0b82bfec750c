"""The `pie-mlops` command line: a thin click layer over the stage functions.

Heavy libraries (pandas, torch, great-expectations, mlflow) are imported inside the
commands, never at module level, so `pie-mlops --help` starts fast (bench/import_time.py).
"""

from __future__ import annotations

import sys

import click

from pie_mlops import __version__
from pie_mlops.errors import DataQualityError, PieError

PARAMS_HELP = "The params file; each stage reads only its own section."


def _given(options: dict) -> dict:
    """The options actually given. MLproject passes unset optional parameters as empty
    strings, so those count as unset too."""
    return {k: v for k, v in options.items() if v not in (None, "")}


def _open_store(params_file: str, params: dict | None = None, section: str = "") -> None:
    """Before a stage writes anything: `params`' dataset is a name, not a path (vocabulary.py;
    a path would put files and a registered model outside the project), its params file is there (outside the project root a
    stage would scatter data/, predictions/ and mlflow.db), and the tracking store answers
    (pie_mlops/tracking/guard.py): else one line and exit 2, never a hang."""
    import os

    if params is not None and params.get("dataset") is not None:
        from pie_mlops.vocabulary import check_name

        check_name("dataset", params["dataset"], f"--dataset or {section}.dataset")
    if params is not None and params.get("seeds") is not None:  # --seeds is not schema-checked
        from pie_mlops.params import as_list, seeds_for

        for arch in as_list(params.get("arch")):
            seeds_for(params, arch, section)
    if not os.path.isfile(params_file):
        raise PieError(f"{params_file}: no such params file (in {os.getcwd()}); run from the project root "
                       f"or pass --params FILE")
    from pie_mlops.tracking.guard import open_store

    open_store()


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="pie-mlops")
@click.option("--params", "params_file", default="params.yaml", show_default=True, help=PARAMS_HELP)
@click.option("--profile", default=None, metavar="NAME",
              help="Overlay profiles/NAME.yaml on the defaults instead of params.yaml: tiny (tests, a "
                   "first look), paper (the paper's method and grid, a GPU run) or your own; `default` "
                   "is params.yaml. `pie-mlops --profile NAME params` shows the result.")
@click.option("-q", "--quiet", "quiet", count=True, help="Warnings and errors only; no progress bars.")
@click.option("-v", "--verbose", "verbose", count=True, help="More detail (debug messages).")
@click.pass_context
def cli(ctx: click.Context, params_file: str, profile: str | None, quiet: int, verbose: int) -> None:
    """Find the examples that pruning breaks (PIEs), as a tracked MLflow/DVC pipeline.

    \b
    The whole study:  pie-mlops study            (or: dvc repro; mlflow run . -e main --env-manager local)
    A quick try:      pie-mlops --profile tiny study --no-dvc
    One stage:        pie-mlops <stage> --help;  mlflow run . -e <stage> --env-manager local

    \b
    Exit codes: 0 ok; 1 a gate or check failed (data quality, a failed job);
    2 usage or input error (one line naming the file, row, key or URI);
    3 internal error (a bug: the traceback follows; please report it).
    """
    from pie_mlops import log

    log.setup(verbose - quiet)
    from pie_mlops.credentials import check_tracking_uris

    check_tracking_uris()  # a password in MLFLOW_TRACKING_URI: refused before MLflow can print it
    beat = log.start_heartbeat(f"pie-mlops {ctx.invoked_subcommand or ''}".strip())  # in a log file only
    if beat is not None:
        ctx.call_on_close(beat.stop)
    if profile not in (None, ""):
        from pie_mlops.params import profile_path

        if params_file != "params.yaml":
            raise click.UsageError("give --params FILE or --profile NAME, not both")
        params_file = str(profile_path(profile))
    ctx.obj = {"params_file": params_file}
    from pie_mlops.atomic import sweep

    sweep("data")  # what writers killed mid-write left in data/ (.name.tmp-*, .name.old-*)


# The commands register themselves on `cli` (imported last: they import it from here).
from pie_mlops.cli import data, models, results  # noqa: E402,F401


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
