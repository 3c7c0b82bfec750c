"""`pie-mlops compare`, `report`, `params`, `study` and `worker`: results and whole runs."""

from __future__ import annotations

import click

from pie_mlops.cli.group import _given, _open_store, cli


@cli.command()
@click.option("--predictions", "-p", default=None, metavar="DIR",
              help="File mode: compare every *.parquet under DIR (no MLflow). Default: collect the "
                   "finished dense and pruned runs of --dataset/--arch from MLflow by their tags.")
@click.option("--out", "-o", default=None, metavar="OUT",
              help="Output directory. Default: compare.out (reports/compare/<dataset>/<arch>).")
@click.option("--dataset", "-d", default=None,
              help="Dataset under --data-dir. In file mode, giving it adds the analyses, the report and "
                   "the PIE-subset datasets (texts come from the dataset). Default: study.dataset.")
@click.option("--arch", "-a", default=None, metavar="bert|bilstm",
              help="Architecture(s), comma-separated. Default: study.arch.")
@click.option("--split", default=None, help="Split to compare. Default: test in file mode, else compare.split.")
@click.option("--min-seeds", default=None, metavar="N", help="Fewest models per group. Default: 3 in file mode, else compare.min_seeds.")
@click.option("--data-dir", default=None, help="Where the datasets live. Default: study.data_dir (data).")
@click.option("--tie-rule", default=None, type=click.Choice(["probability", "paper"]),
              help="A tied vote goes to the highest mean probability (probability) or the lowest class "
                   "index (paper, the authors' argmax). Default: compare.tie_rule.")
@click.pass_context
def compare(ctx: click.Context, predictions: str | None, **options) -> None:
    """Compare every pruned group with dense: PIEs, analyses, report, champion.

    \b
    MLflow mode (default): the current data version's finished runs, gated by
    great-expectations; writes <out>/{pies.parquet, summary.json, analysis.json,
    complexity.parquet, pie_examples.parquet, champion.json, plots/, report/, datasets/},
    logs them to one `compare` run with per-group metrics, and sets the `champion` alias.
    \b
    File mode: pie-mlops compare --predictions DIR --out OUT [--split test] [--min-seeds 3]
    writes OUT/pies.parquet and OUT/summary.json (docs/design.md §3); add --dataset NAME for the rest.
    """
    from pie_mlops.compare.files import FILE_MODE
    from pie_mlops.config.plans import resolve, shrink
    from pie_mlops.config.schema import Compare

    given = _given(options)
    file_mode = predictions not in (None, "")
    if file_mode and "dataset" not in given:  # the file-mode contract's defaults, not the study's
        if "out" not in given:
            raise click.UsageError("file mode needs --out OUT (and takes --dataset NAME for the analyses)")
        from pathlib import Path

        from pie_mlops.compare.files import compare_files
        from pie_mlops.tracking import log_artifacts_if_active

        plan = shrink(Compare(), **{**FILE_MODE, **given})
        result = compare_files(predictions, given["out"], plan.split, plan.min_seeds, plan.model_dump())
        _print_summary(result.summary)
        out = Path(given["out"])
        log_artifacts_if_active([out / "pies.parquet", out / "summary.json"], "compare")  # under `mlflow run`
        click.echo(f"wrote {out}/pies.parquet and summary.json")
        return
    from pie_mlops.stages.compare_study import compare as run

    # bad input first (the schema checks arch and dataset): it must not even create a store
    plan = resolve("compare", ctx.obj["params_file"], {**(FILE_MODE if file_mode else {}), **given})
    _open_store(ctx.obj["params_file"])
    run(plan, predictions or None, echo=click.echo)  # ends with its summary (claims, champions, reports)


def _print_summary(summary: dict, say=click.echo) -> None:
    say(f"  {'group':<28} {'PIEs':>6} {'share':>7} {'dense@PIE':>10} {'pruned@PIE':>11} {'pruned@all':>11}")
    fmt = lambda v: "n/a" if v is None else f"{v:.3f}"  # noqa: E731
    for group, s in summary.items():
        say(f"  {group:<28} {s['n_pies']:>6} {s['pie_share']:>7.3f} {fmt(s['dense_acc_pie']):>10} "
            f"{fmt(s['pruned_acc_pie']):>11} {fmt(s['pruned_acc_all']):>11}")


@cli.command(name="params")
@click.option("--section", "-s", default=None, help="Print only this section (train, prune, ...).")
@click.pass_context
def params_(ctx: click.Context, section: str | None) -> None:
    """Print the effective params: the schema's defaults overlaid with the params file or profile.

    \b
    Every key, typed and checked (an unknown key or a bad value exits 2 naming it).
    To run a profile through DVC, which reads params.yaml:
      pie-mlops --profile paper params > params.yaml && dvc repro
    """
    from pie_mlops.config.params import render
    from pie_mlops.config.plans import load_all

    values = load_all(ctx.obj["params_file"])
    if section:
        if section not in values:
            raise click.BadParameter(f"no section {section!r}; known: {', '.join(values)}", param_hint="--section")
        values = {section: values[section]}
    click.echo(render(values), nl=False)


@cli.command()
@click.option("--compare-root", default=None, help="Where the comparisons are. Default: report.compare_root.")
@click.option("--out", "-o", default=None, help="Output directory. Default: report.out (reports/pies).")
@click.pass_context
def report(ctx: click.Context, **options) -> None:
    """One self-contained HTML report (no network needed) over every comparison.

    Writes <out>/index.html with the figures inline, and each figure under <out>/figures/.
    """
    from pie_mlops.config.plans import resolve
    from pie_mlops.stages.report import report as run

    path = run(resolve("report", ctx.obj["params_file"], _given(options)))
    from pie_mlops.tracking import log_artifacts_if_active

    log_artifacts_if_active([path, path.parent / "figures"], "report")  # under `mlflow run`
    click.echo(f"report: {path}  (open it in a browser; it needs no network)")


@cli.command()
@click.option("--dvc/--no-dvc", "use_dvc", default=None,
              help="Run the stages through `dvc repro` (the default when the params file is this repo's "
                   "params.yaml) or one after another in this process (the default for a --profile).")
@click.pass_context
def study(ctx: click.Context, use_dvc: bool | None) -> None:
    """The whole study: materialize, check, tune, train, prune, compare, report.

    \b
    pie-mlops study                        the embedded default (params.yaml), through dvc repro
    pie-mlops --profile tiny study         a first look: PIEs, claims, a champion (time: docs/budget.md)
    pie-mlops --profile paper study        the paper's grid (a GPU run)
    Re-running it after a crash or a params change redoes only what is unfinished or changed.
    Ends by printing where the report is and how to open the MLflow UI.
    """
    from pie_mlops.stages.study import study as run
    from pie_mlops.stages.study import where_to_look

    _open_store(ctx.obj["params_file"])
    result = run(ctx.obj["params_file"], use_dvc=use_dvc, echo=click.echo)
    click.echo(where_to_look(result))


@cli.command()
@click.option("--profile", "worker_profile", default=None, metavar="NAME",
              help="profiles/NAME.yaml (same as the global --profile; every worker needs the same one).")
@click.option("--storage", default=None, metavar="URL",
              help="Optuna storage shared by all workers (postgresql+psycopg://user@host/db). "
                   "Default: worker.storage, else tune.storage from the params file.")
@click.option("--max-jobs", type=click.IntRange(min=1), default=None,
              help="Stop after running this many jobs here (default: until the grid is done).")
@click.option("--tune/--no-tune", "with_tune", default=True, show_default=True,
              help="Join the shared tune study first (tune.n_trials trials in all, across workers).")
@click.option("--grace-period", type=click.IntRange(min=2), default=None,
              help="Seconds without a heartbeat before a job counts as orphaned and is retried "
                   "(default: worker.grace_period, 30).")
@click.option("--lanes", type=click.IntRange(min=1), default=None,
              help="Jobs in flight here: while one computes, the others upload, register and claim "
                   "(compute stays one job at a time). Default: worker.lanes, else 2 with a tracking "
                   "server and 1 on a SQLite store.")
@click.pass_context
def worker(ctx: click.Context, worker_profile: str | None, storage: str | None, max_jobs: int | None,
           with_tune: bool, grace_period: int | None, lanes: int | None) -> None:
    """One worker of a parallel study: start as many as you have cores or machines.

    \b
    All workers share an MLflow server (MLFLOW_TRACKING_URI) and an Optuna storage (--storage).
    They tune together, then claim train, prune and compare jobs of the grid from the Optuna
    database (a GridSampler study per phase). A job whose worker dies is retried by another
    after --grace-period; finished (group, seed) work is never redone.
      pie-mlops worker --profile paper --storage postgresql+psycopg://pie@db:5432/optuna
    docs/scaling.md has the whole recipe (PostgreSQL, an authenticated mlflow server, N workers;
    passwords in PGPASSWORD or ~/.pgpass and MLFLOW_TRACKING_PASSWORD, never in --storage).
    """
    from pie_mlops.stages.worker import worker as run

    params_file = ctx.obj["params_file"]
    if worker_profile:
        from pie_mlops.config.params import profile_path

        params_file = str(profile_path(worker_profile))
    options = {"grace_period": grace_period} if grace_period else {}
    if grace_period:
        options["heartbeat_interval"] = max(1, grace_period // 3)
    if lanes:
        options["lanes"] = lanes
    from pie_mlops.config.plans import resolve

    for section in ("materialize", "tune", "train", "prune", "compare", "worker"):
        resolve(section, params_file)  # bad params (a dataset path) before any store exists
    _open_store(params_file)
    result = run(params_file, storage=storage, max_jobs=max_jobs, tune=with_tune,
                 options=options)
    ran = [j for j in result["jobs"] if j["status"] != "skipped"]
    click.echo(f"worker {result['worker']}: grid {result['grid']} done here: {len(result['jobs'])} job(s), "
               f"{len(ran)} ran, {len(result['jobs']) - len(ran)} already finished elsewhere")
