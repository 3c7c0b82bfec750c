"""The `pie-mlops` click group and what every command shares: the global options, the given
options, the store check before a stage writes. The commands (data, models, results) register
on `cli` from their own modules."""

from __future__ import annotations

import click

from pie_mlops import __version__
from pie_mlops.util.errors import PieError

PARAMS_HELP = "The params file; each stage reads only its own section."


def _given(options: dict) -> dict:
    """The options actually given. MLproject passes unset optional parameters as empty
    strings, so those count as unset too."""
    return {k: v for k, v in options.items() if v not in (None, "")}


def _open_store(params_file: str) -> None:
    """Before a stage writes anything (its plan already resolved and validated, config/plans.py):
    its params file is there (outside the project root a stage would scatter data/, predictions/
    and mlflow.db), and the tracking store answers (pie_mlops/tracking/guard.py): else one line
    and exit 2, never a hang."""
    import os

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
    from pie_mlops.util import log

    log.setup(verbose - quiet)
    from pie_mlops.util.credentials import check_tracking_uris

    check_tracking_uris()  # a password in MLFLOW_TRACKING_URI: refused before MLflow can print it
    beat = log.start_heartbeat(f"pie-mlops {ctx.invoked_subcommand or ''}".strip())  # in a log file only
    if beat is not None:
        ctx.call_on_close(beat.stop)
    if profile not in (None, ""):
        from pie_mlops.config.params import profile_path

        if params_file != "params.yaml":
            raise click.UsageError("give --params FILE or --profile NAME, not both")
        params_file = str(profile_path(profile))
    ctx.obj = {"params_file": params_file}
    from pie_mlops.util.atomic import sweep

    sweep("data")  # what writers killed mid-write left in data/ (.name.tmp-*, .name.old-*)
