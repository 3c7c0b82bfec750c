"""Stage `compare` (params: compare.*): every pruned group against dense, with everything around it.

For each architecture: collect the predictions (from MLflow by their tags, or from a
directory), gate them with great-expectations, flag the PIEs (`pie_mlops.compare.pies`), run the
analyses (`pie_mlops.analysis`), pick the `champion` (`pie_mlops.compare.selection`), and write
one directory, atomically:

    <out>/pies.parquet  summary.json  analysis.json  complexity.parquet  pie_examples.parquet
    <out>/champion.json  compression.json  plots/*.csv (DVC plots)  report/index.html

and each group's PIEs as a dataset (pie_mlops/compare/pie_datasets.py). In MLflow mode the
directory, the metrics and the champion alias are published (pie_mlops/compare/publish.py).
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from pie_mlops.jobs.context import JobContext
from pie_mlops.util.errors import BaselineGateError, PieError
from pie_mlops.util.log import get as get_logger
from pie_mlops.config.schema import Compare
from pie_mlops.report.plot_tables import write_plot_tables
from pie_mlops.compare.gate import champion_verdict, gate_predictions, stop
from pie_mlops.compare.selection import model_scores

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
    archs = [check_name("arch", a, "study.arch") for a in archs]  # each becomes a path part of out
    check_name("dataset", params["dataset"], "study.dataset (or --dataset)")
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
            gate_predictions(frames[split], texts, meta, params, Path(str(params["checks_dir"]).format(**fmt)), md5s,
                             arch)
        except BaselineGateError as exc:
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
        from pie_mlops.compare.pie_datasets import export_pies
        export_pies(core.pies, texts, meta, dataset, arch, split, Path(params["data_dir"]))
    result = {"dataset": dataset, "arch": arch, "out": str(out), "summary": core.summary,
              "champion": champion, "champion_reason": verdict["reason"], "noise_floor": analysis.get("noise_floor", {})}
    if predictions_dir is None:
        from pie_mlops.compare.publish import publish_comparison
        result["run_id"] = publish_comparison(params, dataset, arch, out, core, scores, runs, champion, analysis,
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
