"""`pie-mlops tune`, `train` and `prune`: the models, each one tracked and registered."""

from __future__ import annotations

import click

from pie_mlops.cli.group import _given, _open_store, cli


@cli.command()
@click.option("--dataset", "-d", default=None, help="Dataset under --data-dir. Default: study.dataset.")
@click.option("--arch", "-a", default=None, metavar="bert|bilstm[,...]",
              help="Architecture(s), comma-separated; one study each. Default: study.arch.")
@click.option("--n-trials", default=None, metavar="N",
              help="Total trials the study should have; a re-run only adds the missing ones. Default: tune.n_trials.")
@click.option("--storage", default=None,
              help="Optuna storage URL: sqlite:///optuna.db (default) or any RDB URL, e.g. postgresql://...")
@click.option("--model-path", default=None, help="bert: a Hugging Face encoder directory, or a hub name when a hub is reachable. "
                   "Default: packaged MiniLM.")
@click.option("--data-dir", default=None, help="Where the datasets live. Default: study.data_dir (data).")
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
    from pie_mlops.config.plans import per_arch
    from pie_mlops.stages.tune import tune as run

    plans = per_arch("tune", ctx.obj["params_file"], _given(options))  # validated: bad input before any store
    _open_store(ctx.obj["params_file"])
    run(plans)


@cli.command()
@click.option("--dataset", "-d", default=None, help="Dataset under --data-dir. Default: study.dataset.")
@click.option("--arch", "-a", default=None, metavar="bert|bilstm[,...]",
              help="Architecture(s), comma-separated. Default: study.arch.")
@click.option("--seeds", "-s", default=None, metavar="0,1,2",
              help="Seeds, comma-separated. Default: train.seeds (per architecture in params.yaml).")
@click.option("--epochs", type=int, default=None, help="Epochs; wins even over a tuned value. Default: train.epochs.")
@click.option("--model-path", default=None,
              help="bert: a Hugging Face encoder directory, or a hub name when a hub is reachable. "
                   "Default: study.model_path (packaged MiniLM).")
@click.option("--data-dir", default=None, help="Where the datasets live. Default: study.data_dir (data).")
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
    from pie_mlops.config.plans import per_arch
    from pie_mlops.stages.train import train as run

    # An explicit --epochs wins even over a tuned params/best_*.yaml (config/plans.py).
    plans = per_arch("train", ctx.obj["params_file"], _given({"dataset": dataset, "arch": arch, "seeds": seeds,
                                                             "epochs": epochs, "model_path": model_path,
                                                             "data_dir": data_dir}))
    _open_store(ctx.obj["params_file"])
    records = run(plans)
    done = sum(r["status"] == "trained" for r in records)
    click.echo(f"trained {done}, skipped {len(records) - done} (already finished)")


@cli.command()
@click.option("--dataset", "-d", default=None, help="Dataset under --data-dir. Default: study.dataset.")
@click.option("--arch", "-a", default=None, metavar="bert|bilstm", help="Default: study.arch.")
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
@click.option("--quantize", default=None, metavar="int8-dyn,int8-wo,bf16,fp16,fp8",
              help="Quantized groups quant-<method> of the dense seeds, no training (docs/quantization.md); "
                   "a method this CPU cannot run is skipped with one line. Default: prune.quantize.")
@click.option("--data-dir", default=None, help="Where the datasets live. Default: study.data_dir (data).")
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
    from pie_mlops.config.plans import per_arch, shrink
    from pie_mlops.stages.prune import prune as run

    given = _given(options)
    plans = per_arch("prune", ctx.obj["params_file"], given)  # "3" from MLproject: validated to 3
    if ({"criteria", "schedules"} & given.keys()) and "methods" not in given:
        plans = [shrink(p, methods=None) for p in plans]  # prune.methods would win over them: the options given count
    _open_store(ctx.obj["params_file"])
    records = run(plans)
    done = sum(r["status"] == "pruned" for r in records)
    quantized = sum(r["status"] == "quantized" for r in records)
    skipped = sum(r["status"] == "skipped" for r in records)
    unsupported = sorted({r["group"] for r in records if r["status"] == "unsupported"})
    click.echo(f"pruned {done}, skipped {skipped} (already finished)" + (f", quantized {quantized}" if quantized else "")
               + (f", not run on this CPU: {', '.join(unsupported)}" if unsupported else ""))
