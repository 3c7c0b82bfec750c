"""Stage `tune`: Optuna search over training hyperparameters (params: tune.*).

Maximises the validation score (accuracy; macro-F1 for multi-label) and never reads the
test split. Median pruning on epoch-level reports stops hopeless trials early. The study
lives in an RDB (SQLite by default), so re-running continues it: it only runs the trials
still missing to reach `n_trials`. Each trial is a nested MLflow run under one parent per
study; the best parameters go to the parent and to `params/best_<dataset>_<arch>.yaml`,
which `train` and `prune` read.

`arch` may be a list: each architecture gets its own study and file, one after another.
Any value may be given per architecture (`max_train_examples: {bert: 300, bilstm: 2000}`),
and so may the search space (`space: {bert: {lr: ...}, bilstm: {lr: ..., epochs: ...}}`):
a BiLSTM needs a far larger learning rate and more epochs than a transformer.
Trials train under the autocast train will use (`tune.autocast`, as train's: bf16 on CUDA for
MiniLM under `auto`, nothing on a CPU), and a bf16 study is a study of its own.
"""

from __future__ import annotations

import time
from pathlib import Path

from collections.abc import Sequence

from pie_mlops.config.plans import one_arch
from pie_mlops.config.schema import Tune
from pie_mlops.config.vocabulary import check_name
from pie_mlops.util.compat import study_storage
from pie_mlops.util.errors import PieError
from pie_mlops.util.log import get as get_logger
from pie_mlops.util.log import progress_disabled

_LOG = get_logger(__name__)

TUNABLE = ("lr", "epochs", "batch_size", "warmup_ratio")

# What a study searches: a change to any of these starts a new study (n_trials, storage and
# out do not change what a trial measures).
IDENTITY = ("dataset", "arch", "model_path", "seed", "max_train_examples", "max_validation_examples", "max_length",
            "optimizer", "space")


def study_identity(params: dict, data_md5: str, device="auto") -> dict:
    identity = {**{k: params.get(k) for k in IDENTITY}, "data_md5": data_md5}
    if trial_autocast(params, device) == "bf16":  # bf16 trials measure another model; CPU names as before
        identity["autocast"] = "bf16"
    return identity


def trial_autocast(params: dict, device="auto") -> str:
    """The trials' precision: what train's plan records for this architecture on `device`
    (models/predict.py's effective_autocast: bf16 on CUDA for MiniLM under `auto`; a CPU: off)."""
    from pie_mlops.models.predict import effective_autocast

    return effective_autocast(params.get("autocast"), params["arch"], device)


def trial_config(params: dict, hp: dict, device="auto"):
    """A trial's TrainConfig: `hp` over train's untuned values (a key the space leaves out: what
    train runs untuned), under the autocast train would use (`trial_autocast`)."""
    from pie_mlops.jobs.training import UNTUNED, job_config

    hp_all = {k: getattr(UNTUNED, k) for k in TUNABLE} | hp  # jobs/training.py: Train()
    precision = trial_autocast(params, device)
    plan = dict(hp_all, weight_decay=UNTUNED.weight_decay, optimizer=params["optimizer"],
                **({"autocast": precision} if precision == "bf16" else {}))  # as train's job plan
    return job_config(plan, params["seed"], progress=False)


def study_name(params: dict, data_md5: str) -> str:
    """`pie-<dataset>-<arch>-<hash of study_identity>`: resuming needs the same settings."""
    import hashlib
    import json

    blob = json.dumps(study_identity(params, data_md5), sort_keys=True, default=str, separators=(",", ":"))
    return f"pie-{params['dataset']}-{params['arch']}-{hashlib.sha256(blob.encode()).hexdigest()[:8]}"


def _say_if_new(storage, name: str, created: bool) -> None:
    """A new study beside earlier ones of the same dataset and arch: their settings differ."""
    if not created:
        return
    import re

    import optuna

    same = re.compile(re.escape(name.rsplit("-", 1)[0]) + r"(-[0-9a-f]{8})?")  # an older name had no hash
    earlier = [n for n in optuna.get_all_study_names(storage) if n != name and same.fullmatch(n)]
    if earlier:
        _LOG.info(f"tune: the search settings (tune.{', tune.'.join(IDENTITY)}, bf16 autocast or the data) "
                  f"differ from those of study {', '.join(sorted(earlier))}: starting a new study {name}")


def suggest(trial, space: dict) -> dict:
    """One draw from the search space; each entry is `choices: [...]` or `low/high[/log]`."""
    unknown = sorted(set(space) - set(TUNABLE))
    if unknown:
        raise PieError(f"params.yaml tune.space: unknown key(s) {', '.join(unknown)}; tunable: {', '.join(TUNABLE)}")
    out = {}
    for name, spec in space.items():
        if not isinstance(spec, dict):
            raise PieError(f"params.yaml tune.space.{name}: expected a mapping with choices or low/high")
        if "choices" in spec:
            out[name] = trial.suggest_categorical(name, list(spec["choices"]))
        elif {"low", "high"} <= set(spec):
            if name in ("epochs", "batch_size"):
                out[name] = trial.suggest_int(name, int(spec["low"]), int(spec["high"]), log=bool(spec.get("log")))
            else:
                out[name] = trial.suggest_float(name, float(spec["low"]), float(spec["high"]),
                                                log=bool(spec.get("log")))
        else:
            raise PieError(f"params.yaml tune.space.{name}: give `choices` or `low` and `high`")
    return out


def best_params_path(params: dict) -> Path:
    return Path(params["out"].format(dataset=params["dataset"], arch=params["arch"]))


def write_best(path: Path, best: dict, meta: dict) -> None:
    import yaml

    from pie_mlops.util.atomic import write_text

    # Atomic: train never reads half a file.
    write_text(path, "# Written by `pie-mlops tune`; read by `pie-mlops train`.\n"
               + yaml.safe_dump({**best, "_study": meta}, sort_keys=True))


class Surplus(Exception):
    """A trial started after other workers' trials already made up n_trials."""


def resume_seed(seed: int, n_trials: int, joining: bool) -> int:
    """The sampler seed of a process that opens an existing study. A resume (nothing running)
    is seeded by tune.seed and the trials already in the study: reproducible, and it does not
    redraw the creator's first trials. A worker joining running trials also mixes in its
    process id, or two workers joining at once would draw the very same trials."""
    import os

    import numpy as np

    return int(np.random.SeedSequence([int(seed), int(n_trials), *([os.getpid()] if joining else [])])
               .generate_state(1)[0])


def open_study(name: str, params: dict):
    """(study, created): the process that creates the study samples with tune.seed, so a
    one-worker search is reproducible; one that resumes or joins it with `resume_seed`."""
    import optuna

    from pie_mlops.scale.claims import rdb_storage

    # The heartbeat lets workers fail a dead worker's trial instead of waiting for it forever.
    storage = rdb_storage(params["storage"], heartbeat_interval=10, grace_period=60)
    pruner = optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=0)

    def sampler(seed):
        return optuna.samplers.TPESampler(seed=seed, constant_liar=True)

    try:
        return optuna.create_study(study_name=name, storage=storage, direction="maximize",
                                   sampler=sampler(params["seed"]), pruner=pruner), True
    except optuna.exceptions.DuplicatedStudyError:
        study = optuna.load_study(study_name=name, storage=storage, pruner=pruner)
        trials = study.get_trials(deepcopy=False)
        # No trial yet: another worker created it just now (resuming an empty study is rare).
        joining = not trials or any(t.state.name in ("RUNNING", "WAITING") for t in trials)
        study.sampler = sampler(resume_seed(params["seed"], len(trials), joining))
        return study, False


def _finished(study) -> list:
    return [t for t in study.get_trials(deepcopy=False) if t.state.name in ("COMPLETE", "PRUNED")]


def _earlier_trials(study, number: int) -> int:
    """Trials numbered below `number` that count towards n_trials (not failed)."""
    return sum(1 for t in study.get_trials(deepcopy=False)
               if t.number < number and t.state.name in ("COMPLETE", "PRUNED", "RUNNING", "WAITING"))


def run_trials(study, objective, n_trials: int, progress: bool, poll_s: float = 2.0) -> None:
    """Run trials until the study holds n_trials finished ones, whoever ran them, then wait
    for the other workers' running trials (best params are read once all are in)."""
    from optuna.storages import fail_stale_trials
    from tqdm.auto import tqdm

    bar = tqdm(total=n_trials, desc=f"tune {study.study_name}", disable=progress_disabled(progress))
    while True:
        fail_stale_trials(study)  # a dead worker's trial
        trials = study.get_trials(deepcopy=False)
        done = len(_finished(study))
        bar.n = min(done, n_trials)
        bar.refresh()
        running = sum(1 for t in trials if t.state.name in ("RUNNING", "WAITING"))
        if done >= n_trials and not running:
            break
        if done + running < n_trials:
            study.optimize(objective, n_trials=1, catch=(Surplus,), gc_after_trial=False)
        else:
            time.sleep(poll_s)
    bar.close()


def tune(plans: Tune | Sequence[Tune], progress: bool = True) -> dict[str, dict]:
    """Run (or continue) each plan's study (one per architecture, config/plans.py); the best
    parameters per architecture, each also written to `out`. Every plan is checked (by its
    type) before any study runs."""
    from pie_mlops.util.seeding import intra_op_threads

    best = {}
    for plan in one_arch(plans, "tune"):
        with intra_op_threads(plan.num_threads):  # the trials' threads; runtime only
            best[plan.arch] = tune_one(plan.model_dump(), progress)
    return best


def tune_one(params: dict, progress: bool = True) -> dict:
    """Run (or continue) one architecture's study; returns the best parameters and writes them to `out`."""
    from pie_mlops.data.contract import read_meta, read_split
    from pie_mlops.data.splits import subsample
    from pie_mlops.models import ARCHS, build_model

    if params["arch"] not in ARCHS:
        raise PieError(f"unknown architecture {params['arch']!r}; choose one of {', '.join(ARCHS)}")
    from pie_mlops.util.credentials import check_no_password

    check_no_password(params["storage"], "tune.storage (or --storage)")  # a DVC param: it would land in dvc.lock
    data_path = Path(params["data_dir"]) / check_name("dataset", params["dataset"], "study.dataset (or --dataset)")
    meta = read_meta(data_path)  # PieError with the fix if the dataset is missing
    # Build one model up front: a bad model path or architecture fails here, before any
    # study or run exists, instead of inside the first trial.
    build_model(params["arch"], len(meta["label_names"]), meta["task"], seed=params["seed"],
                model_path=params["model_path"], max_length=params["max_length"])
    # Only train and validation are read: the test split plays no part in model selection.
    train_df = subsample(read_split(data_path, "train"), params["max_train_examples"], params["seed"])
    val_df = subsample(read_split(data_path, "validation"), params["max_validation_examples"], params["seed"])
    n_labels, task = len(meta["label_names"]), meta["task"]

    import optuna

    from pie_mlops import tracking
    from pie_mlops.scale.claims import redact_url
    from pie_mlops.jobs.training import train

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    md5 = tracking.data_md5(params["data_dir"])
    name = study_name(params, md5)
    study, created = open_study(name, params)
    if created:
        study.set_user_attr("identity", study_identity(params, md5))
    _say_if_new(study_storage(study), name, created)
    n_trials = int(params["n_trials"])
    metric = "val_macro_f1" if task == "multi_label" else "val_accuracy"

    with tracking.study_run(name, params, study, created) as parent_id:

        def objective(trial) -> float:
            if _earlier_trials(study, trial.number) >= n_trials:
                raise Surplus(f"trial {trial.number}: n_trials={n_trials} reached by other workers")
            hp = suggest(trial, params["space"])
            cfg = trial_config(params, hp)
            with tracking.trial_run(parent_id, trial, hp, data=params) as log_epoch:
                model = build_model(params["arch"], n_labels, task, seed=params["seed"],
                                    model_path=params["model_path"], max_length=params["max_length"])

                def on_epoch_end(epoch: int, metrics: dict) -> None:
                    log_epoch(epoch, metrics)
                    trial.report(metrics["val_score"], step=epoch)
                    if trial.should_prune():
                        raise optuna.TrialPruned(f"pruned after epoch {epoch}")

                result = train(model, train_df, val_df, cfg, on_epoch_end=on_epoch_end)
                return float(result.history[-1]["val_score"])

        run_trials(study, objective, n_trials, progress)
        if not any(t.state.name == "COMPLETE" for t in study.trials):
            raise PieError(f"study {name}: no trial completed; widen tune.space or raise n_trials")
        best = {k: (int(v) if k in ("epochs", "batch_size") else float(v)) for k, v in study.best_params.items()}
        out = best_params_path(params)
        n_done = len(_finished(study))
        # Every worker writes its own machine's file (train reads it there), all the same
        # since every trial has finished; the parent run gets the result once.
        write_best(out, best, {"name": name, "storage": redact_url(params["storage"]), "metric": metric,
                               "best_value": float(study.best_value), "best_trial": study.best_trial.number,
                               "n_trials": n_done})
        if tracking.claim_result(parent_id, n_done):
            tracking.log_study_result(parent_id, best, float(study.best_value), metric, out)
    _LOG.info(f"best {metric} {study.best_value:.4f} with {best} -> {out}")
    return best
