"""Stage `compare` (params: compare.*): every pruned group against dense, with everything around it.

For each architecture: collect the predictions (from MLflow by their tags, or from a
directory), gate them with great-expectations, flag the PIEs (`pie_mlops.compare.pies`), run the
analyses (`pie_mlops.analysis`), pick the `champion` (`pie_mlops.compare.selection`), and write
one directory, atomically:

    <out>/pies.parquet  summary.json  analysis.json  complexity.parquet  pie_examples.parquet
    <out>/champion.json  compression.json  plots/*.csv (DVC plots)  report/index.html

and each group's PIEs as a dataset, `<data_dir>/<dataset>__pies_<group>/` (docs/design.md §3's
dataset contract; `.dvcignore` keeps them out of data.dvc's hash, so the data version stays).

In MLflow mode the directory is logged to one `compare` run with per-group metrics, the
PIE metrics also land on each pruned model's own run (so runs compare side by side in the
UI), and the champion alias is set in the registry.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from pie_mlops.jobs.context import JobContext
from pie_mlops.util.errors import BaselineGateError, DataQualityError, PieError
from pie_mlops.util.log import get as get_logger
from pie_mlops.config.schema import Compare
from pie_mlops.report.plot_tables import method_of, sparsity_of, write_plot_tables
from pie_mlops.compare.gate import champion_verdict

_LOG = get_logger(__name__)


def compare(plan: Compare, predictions_dir: str | Path | None = None, progress: bool = True,
            ctx: JobContext | None = None, echo=None, models: list | None = None) -> list[dict]:
    """Run the comparison for each architecture in `plan.arch` (config/plans.py); one result dict
    each. `ctx`: the job's context (a worker's tags go on the compare runs). `echo`: where the
    closing summary goes (claims, champions, reports; pie_mlops/report/console.py), even when the
    baseline gate stopped an architecture; None prints nothing. `models`: a worker's grid, the
    (group, seed) models to compare (None: the plan's predictions_dir, or the whole store)."""
    from pie_mlops.config.vocabulary import check_name

    if not isinstance(plan, Compare):
        raise TypeError(f"compare() takes a Compare plan (pie_mlops.config.plans.resolve), got {type(plan).__name__}")
    params = dict(plan.model_dump(), **({"models": models} if models else {}))
    archs = params["arch"] if isinstance(params["arch"], (list, tuple)) else [params["arch"]]
    archs = [check_name("arch", a, "compare.arch") for a in archs]  # each becomes a path part of out
    check_name("dataset", params["dataset"], "compare.dataset (or --dataset)")
    if predictions_dir is not None and len(archs) != 1:
        raise PieError("--predictions holds one study: give exactly one --arch with it")
    results, stopped = [], []
    for arch in archs:  # an architecture that learned nothing stops alone; the others still compare
        try:
            results.append(compare_one(params, str(arch), predictions_dir, progress, ctx or JobContext()))
        except BaselineGateError as exc:
            stopped.append(str(exc))
    # The claims need every architecture of the dataset: recomputed from all on disk each time.
    from pie_mlops.compare.claims import write_claims
    claims = str(write_claims(params, [r["run_id"] for r in results if r.get("run_id")]))
    if echo is not None:
        from pie_mlops.report.console import details, summary_text
        for line in details(results):  # the per-group tables: information, hidden by -q
            _LOG.info(line)
        echo(summary_text(json.loads(Path(claims).read_text(encoding="utf-8")), results, stopped)
             + f"\nclaims: {claims}")
    if stopped:
        raise BaselineGateError("; ".join(stopped))
    return [dict(r, claims=claims) for r in results]


def compare_one(params: dict, arch: str, predictions_dir: str | Path | None, progress: bool,
                ctx: JobContext | None = None) -> dict:
    from pie_mlops.compare import pies
    from pie_mlops.analysis.run import analyse
    from pie_mlops.util.atomic import atomic_dir
    from pie_mlops.data.contract import read_meta, read_split
    from pie_mlops.compare.files import write_outputs

    dataset, split = params["dataset"], params["split"]
    dataset_dir = Path(params["data_dir"]) / dataset
    meta, texts = read_meta(dataset_dir), read_split(dataset_dir, split)
    fmt = {"dataset": dataset, "arch": arch}
    out = Path(str(params["out"]).format(**fmt))
    wanted = (split, "train", params["snapshot"])
    if predictions_dir is None:
        from pie_mlops.compare.collect import collect_splits
        keep = None
        if params.get("models"):  # a worker's grid: exactly its own (group, seed) models
            keep = {(str(g), int(s)) for g, s in params["models"]}
        elif params.get("predictions_dir"):
            from pie_mlops.compare.collect import local_models
            keep = local_models(Path(params["predictions_dir"]) / dataset / arch)
        frames, md5s, runs = collect_splits(dataset, arch, split, wanted[1:], progress, keep)
        try:
            _gate(frames[split], texts, meta, params, Path(str(params["checks_dir"]).format(**fmt)), md5s, arch)
        except BaselineGateError as exc:
            from pie_mlops.compare.gate import stop
            stop(out, meta, fmt, split, exc)
            raise
        stacks = {s: pies.stack_split(f, s) for s, f in frames.items() if s == split or "dense" in set(f["group"])}
    else:
        stacks, runs = _read_dir(Path(predictions_dir), wanted), []
        _check_ids(stacks[split], texts, f"{dataset}/{split}")
    test = stacks[split]
    core = pies.compare(test, int(params["min_seeds"]), str(params["tie_rule"]))
    from pie_mlops.analysis.group_stats import StatOptions, add_statistics
    add_statistics(core, StatOptions.from_params(params))  # intervals, modal accuracies, collapse, floor test
    analysis, complexity, examples = analyse(
        core, texts, train=stacks.get("train"), snapshot=stacks.get(params["snapshot"]),
        snapshot_name=params["snapshot"], label_names=list(meta["label_names"]), meta={"dataset": dataset, "arch": arch, "split": split},
        n_boot=int(params["n_boot"]), seed=int(params["seed"]), progress=progress, floor=core.noise_floor,
        rules=params.get("claims"))
    collapsed = {g for g, s in core.summary.items() if isinstance(s, dict) and s.get("collapsed", False)}
    # a collapsed group's PIEs are its minority class; dense-long is a control, not a candidate
    usable = {g: f for g, f in core.flags.items() if g not in collapsed and g != "dense-long"}
    scores = model_scores(test, usable, core.flags)
    verdict = champion_verdict(scores[scores["group"] != "dense-long"], usable, params, test, collapsed)
    champion = verdict if verdict.get("champion") else None

    with atomic_dir(out) as tmp:
        write_outputs(core, tmp)
        _dump(analysis, tmp / "analysis.json")
        complexity.to_parquet(tmp / "complexity.parquet", index=False)
        examples.to_parquet(tmp / "pie_examples.parquet", index=False)
        _dump(verdict, tmp / "champion.json")
        _dump(_compression(core, test, runs, params), tmp / "compression.json")  # pruning vs quantization
        write_plot_tables(core.summary, analysis, arch, tmp / "plots")
        from pie_mlops.report.build import build_report
        build_report([tmp], tmp / "report", title=f"PIEs of {dataset} / {arch}", claims=False)
    if params["export_pies"]:  # each dataset written atomically on its own, after the outputs
        _export_pies(core.pies, texts, meta, dataset, arch, split, Path(params["data_dir"]))
    result = {"dataset": dataset, "arch": arch, "out": str(out), "summary": core.summary,
              "champion": champion, "champion_reason": verdict["reason"], "noise_floor": analysis.get("noise_floor", {})}
    if predictions_dir is None:
        result["run_id"] = _log_mlflow(params, dataset, arch, out, core, scores, runs, champion, analysis,
                                       (ctx or JobContext()).tags)
    else:
        from pie_mlops.tracking import log_artifacts_if_active
        log_artifacts_if_active([out], "compare")
    return result


def _read_dir(root: Path, splits: tuple[str, ...]) -> dict:
    """The compared split (required) and the train splits for EL2N (when dense has them)."""
    from pie_mlops.compare.files import load_predictions_dir
    stacks = {splits[0]: load_predictions_dir(root, splits[0])}
    for s in splits[1:]:
        try:
            stack = load_predictions_dir(root, s)
        except PieError:
            continue  # optional: file mode often has the compared split only
        if "dense" in stack.groups:
            stacks[s] = stack
    return stacks


def _check_ids(stacked, texts: pd.DataFrame, where: str) -> None:
    ids = set(texts["example_id"].astype(str))
    got = set(stacked.example_ids.tolist())
    if got != ids:
        extra, missing = sorted(got - ids), sorted(ids - got)
        what = f"has example_id {extra[0]} not in {where}" if extra else f"lacks example_id {missing[0]} of {where}"
        raise PieError(f"the predictions do not cover exactly the dataset split: the {stacked.split!r} predictions "
                       f"{what} ({len(got)} vs {len(ids)} examples); compare with the dataset they were made on")


def _gate(frame: pd.DataFrame, texts: pd.DataFrame, meta: dict, params: dict, checks_dir: Path, md5s,
          arch: str = "") -> None:
    """Great-expectations checks on the predictions; a failure stops the stage (exit 1).
    Dense models no better than the trivial baseline (and nothing else wrong) stop only `arch`."""
    from pie_mlops.data.prediction_quality import validate_predictions
    from pie_mlops.compare.gate import baseline_message, baseline_spec
    from pie_mlops.tracking import data_md5

    current = data_md5(Path(params["data_dir"])) if md5s is not None else None
    spec = baseline_spec(frame, texts, meta, float(params["min_gain_over_baseline"]))
    result = validate_predictions(frame, texts["example_id"].astype(str).tolist(), len(meta["label_names"]),
                                  int(params["min_seeds"]), checks_dir, md5s=md5s, current_md5=current,
                                  baseline=spec, name=".".join(filter(None, (meta["name"], arch, "predictions"))))
    if not result["success"]:
        names = [c["name"] for c in result["checks"] if not c["success"]]
        if names == ["dense_beats_baseline"]:
            raise BaselineGateError(baseline_message(arch, params["split"], spec, checks_dir), spec)
        failed = ", ".join(names)
        raise DataQualityError(f"prediction checks failed ({failed}): see {checks_dir / 'result.json'} "
                               f"and the Data Docs at {checks_dir / 'data_docs' / 'index.html'}")


def model_scores(test, flags: dict[str, np.ndarray], own: dict[str, np.ndarray] | None = None) -> pd.DataFrame:
    """Each model's accuracy (macro-F1 multi-label) on all examples, its group's PIEs and non-PIEs
    (`own`, default `flags`), and the pruning-sensitive subset (the union of the PIE sets in `flags`)."""
    from pie_mlops.compare.pies import model_predictions
    from pie_mlops.compare.pies import model_scores as scores_on
    from pie_mlops.compare.selection import sensitive_subset

    sensitive = sensitive_subset(flags)
    columns = {}
    rows = []
    for group, stack in test.groups.items():
        preds = model_predictions(stack.logits, test.task, stack.thresholds)
        pie = (flags if own is None else own).get(group, np.zeros(len(test.example_ids), dtype=bool))
        masks = {"acc_all": np.ones_like(pie), "acc_pie": pie, "acc_nonpie": ~pie, "acc_subset": sensitive}
        columns = {name: scores_on(preds, test.labels, test.task, mask) for name, mask in masks.items()}
        for i, seed in enumerate(stack.seeds):
            rows.append({"group": group, "seed": int(seed), "sparsity": sparsity_of(group),
                         **{name: float(v[i]) for name, v in columns.items()}})
    return pd.DataFrame(rows)


def _compression(core, test, runs: list[dict], params: dict) -> dict:
    """compression.json: sizes, latencies and exemplars side by side, with each group's flips
    against the dense model of the same seed (pie_mlops/analysis/compression.py)."""
    from pie_mlops.analysis.compression import compression_table, paired_flips
    from pie_mlops.compare.pies import model_predictions

    dense = test.groups["dense"]
    dp = model_predictions(dense.logits, test.task, dense.thresholds)
    flips = {g: paired_flips(dp, list(dense.seeds), model_predictions(st.logits, test.task, st.thresholds),
                             list(st.seeds), int(params["n_boot"]), int(params["seed"]))
             for g, st in test.groups.items() if g != "dense"}
    return compression_table(core.summary, runs, flips)


def _dump(obj, path: Path) -> None:
    path.write_text(json.dumps(obj, indent=2, sort_keys=True, allow_nan=False) + "\n", encoding="utf-8")


def export_name(dataset: str, group: str, arch: str | None = None) -> str:
    """`<dataset>__pies_<group>` (`__<arch>` added when given), made filesystem-friendly:
    `rotten_tomatoes__pies_magnitude-os-0_50__bert`."""
    name = f"{dataset}__pies_{group.replace('@', '-').replace('.', '_')}"
    return f"{name}__{arch}" if arch else name


def _export_pies(pies_frame: pd.DataFrame, texts: pd.DataFrame, meta: dict, dataset: str, arch: str, split: str,
                 root: Path) -> None:
    """Each group's PIEs as a dataset in the dataset contract: the PIEs form its test split
    (train and validation are empty), so any future model can be evaluated on them."""
    from pie_mlops.data.contract import write_dataset

    empty = texts.iloc[0:0]
    for group, rows in pies_frame[pies_frame["is_pie"]].groupby("group"):
        subset = texts[texts["example_id"].isin(set(rows["example_id"]))].reset_index(drop=True)
        m = {**{k: meta[k] for k in ("task", "label_names", "license", "synthetic")},
             "name": export_name(dataset, group, arch),
             "source": f"PIEs of {group} ({arch}) on {dataset}/{split} (pie-mlops compare)", "parent": dataset,
             "group": group, "arch": arch}
        write_dataset(root, m["name"], {"train": empty, "validation": empty, "test": subset}, m)


def _pie_line(group: dict, row, params: dict, run_id: str) -> str:
    """One version's PIE line: its group's PIE share and this model's accuracy on the PIEs."""
    acc = "n/a" if pd.isna(row.acc_pie) else f"{row.acc_pie:.4f}"
    collapsed = " (group collapsed: kept out of the claims)" if group.get("collapsed") else ""
    return (f"{group['n_pies']} of the {params['split']} examples ({group['pie_share']:.1%}) are PIEs of group "
            f"{row.group}{collapsed}; this model's accuracy on them {acc} (compare run {run_id}).")


def _log_mlflow(params, dataset, arch, out: Path, core, scores, runs, champion, analysis, job_tags: dict) -> str:
    from pie_mlops import tracking

    summary = core.summary
    logged = {k: v for k, v in params.items() if k not in ("arch", "models")}
    logged.update(arch=arch, data_md5=tracking.data_md5(Path(params["data_dir"])))
    with tracking.compare_run(dataset, arch, logged, job_tags) as run_id:
        metrics, curves = {}, []
        for group, s in tqdm(summary.items(), desc="log metrics", disable=True):
            for key in ("n_pies", "pie_share", "dense_acc_pie", "pruned_acc_pie", "pruned_acc_all",
                        "pruned_acc_nonpie", "n_ties_dense", "n_ties_pruned"):
                metrics[tracking.metric_key(group, key)] = s.get(key)
                # One chart per method in the UI: the value against sparsity (step = percent).
                if np.isfinite(sparsity_of(group)):  # quant-<method> groups have no sparsity axis
                    curves.append((f"{key}/{method_of(group)}", s.get(key), int(round(sparsity_of(group) * 100))))
        floor = analysis.get("noise_floor", {})
        metrics["noise_floor_share"] = floor.get("floor_share")
        tracking.log_metric_batch(run_id, metrics, curves=curves)
        table = pd.DataFrame([{"group": g, "sparsity": sparsity_of(g), "n_pies": s["n_pies"],
                               "pie_share": s["pie_share"], "dense_acc_pie": s.get("dense_acc_pie"),
                               "pruned_acc_pie": s.get("pruned_acc_pie"), "pruned_acc_all": s.get("pruned_acc_all")}
                              for g, s in summary.items()])
        tracking.log_compare_artifacts(run_id, out, table)
        by_key = {(r["group"], r["seed"]): r["run_id"] for r in runs}
        name = tracking.registered_model_name(dataset, arch)
        for row in scores.itertuples():  # PIE metrics on each model's own run
            rid = by_key.get((row.group, row.seed))
            if rid is None:
                continue
            extra = {"acc_sensitive": row.acc_subset}
            if row.group != "dense":
                extra.update(pie_share=summary[row.group]["pie_share"], acc_pie=row.acc_pie, acc_nonpie=row.acc_nonpie)
                version = tracking.version_of_run(name, rid)
                if version is not None:  # the registry UI shows each version's PIEs beside its scores
                    tracking.set_description_line(name, version, "PIEs", _pie_line(summary[row.group], row, params,
                                                                                     run_id))
            tracking.log_metric_batch(rid, {k: (None if pd.isna(v) else v) for k, v in extra.items()})
        if champion is not None:
            version = tracking.version_of_run(name, by_key[(champion["group"], champion["seed"])])
            if version is not None:
                tracking.set_champion(name, version, {"champion_reason": champion["reason"],
                                                      "champion_compare_run": run_id})
                champion["version"] = version
        else:  # no version qualifies now: an earlier run's alias must not keep pointing at one
            tracking.clear_champion(name)
        return run_id
