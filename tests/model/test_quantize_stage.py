"""Quantized groups (prune.quantize, issue 31) against a real SQLite MLflow store: tiny-BERT dense
seeds quantized (int8-dyn, int8-wo, bf16) and fp8 skipped on this CPU, registered like pruned
versions, loaded back (as the registry's model and as the served pyfunc) predicting exactly what
was logged, and compared beside a pruned group: compression.json, summary.json, the champion."""

import json
import logging
from pathlib import Path

import numpy as np
import pytest

from stage_fixtures import tiny_study

from pie_mlops.compare.predictions import read_predictions
from plans import plan
from pie_mlops.config.plans import shrink
from pie_mlops.stages.compare_study import compare
from pie_mlops.stages.prune import prune as prune_stage
from pie_mlops.stages.train import train as train_stage

NAME = "pie-synthetic_nli-bert"
METHODS = ["int8-dyn", "int8-wo", "bf16"]


@pytest.fixture(scope="module")
def store(tmp_path_factory, tokenizer):
    root = tmp_path_factory.mktemp("quant")
    common = tiny_study(root, tokenizer)
    common.update(batch_size=16, lr=2e-3)
    seeds = [0, 1]
    # methods null: criteria x schedules, one pruned group (the default is the per-arch grid)
    params = plan("prune", profile="default", **common, criteria=["magnitude"], schedules=["os"], methods=None, sparsities=[0.5],
                  seeds=seeds, predict_test=True, quantize=[*METHODS, "fp8"])
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{root}/mlflow.db")
        for var in ("MLFLOW_REGISTRY_URI", "MLFLOW_RUN_ID", "MLFLOW_EXPERIMENT_NAME"):
            mp.delenv(var, raising=False)
        mp.chdir(root)
        train_stage(plan("train", profile="default", **common, seeds=seeds, epochs=2, snapshot_epochs=[1]), progress=False)
        first = prune_stage(params, progress=False)
        again = prune_stage(params, progress=False)
        alone = prune_stage(shrink(params, sparsities=[], quantize=["int8-dyn"]), progress=False)  # a grid job's form
        compare_params = plan("compare", profile="default", dataset="synthetic_nli", arch=["bert"], data_dir=str(root / "data"),
                              out=str(root / "reports" / "{dataset}" / "{arch}"), min_seeds=2,
                              checks_dir=str(root / "checks" / "{dataset}" / "{arch}"), split="test", n_boot=20,
                              champion_tolerance=1.0, min_gain_over_baseline=-1.0,
                              predictions_dir=str(root / "predictions"))
        [result] = compare(compare_params, None, progress=False)
        yield {"root": root, "params": params, "first": first, "again": again, "alone": alone, "result": result}


def _client():
    from mlflow import MlflowClient

    return MlflowClient()


def test_quantized_versions_are_registered_with_their_tags_and_metrics(store):
    quant = [r for r in store["first"] if r["group"].startswith("quant-")]
    assert sorted((r["group"], r["seed"], r["status"]) for r in quant if r["status"] == "quantized") == \
        sorted((f"quant-{m}", s, "quantized") for m in METHODS for s in (0, 1))
    client = _client()
    for r in quant:
        if r["status"] != "quantized":
            continue
        mv = client.get_model_version_by_alias(NAME, f"{r['group']}-s{r['seed']}")
        method = r["group"].removeprefix("quant-")
        assert mv.tags["compression"] == "quantization" and mv.tags["method"] == method
        assert mv.tags["bits"] == ("8" if method.startswith("int8") else "16")
        run = client.get_run(mv.run_id)
        m = run.data.metrics
        assert float(mv.tags["size_mb"]) == pytest.approx(m["model_mb"], abs=1e-3)
        assert {"latency_ms", "dense_latency_ms", "model_mb", "dense_mb", "size_ratio", "latency_ratio",
                "test_score", "validation_score"} <= set(m)
        assert m["model_mb"] < m["dense_mb"]  # every method here stores its weights smaller
        if method == "bf16":
            assert m["size_ratio"] == pytest.approx(2.0, rel=0.01)
        # stored as the dense version plus the recipe: a delta, far smaller than the model
        assert m["size_mb"] < 0.5 * m["dense_mb"]
    # a rerun finds every finished quantized (group, seed) and registers nothing new
    assert all(r["status"] in ("skipped", "unsupported") for r in store["again"])
    # quantized groups alone (no sparsity: a worker grid's quant job) run no pruned group
    assert [(r["group"], r["status"]) for r in store["alone"]] == [("quant-int8-dyn", "skipped")] * 2


def test_a_method_without_cpu_kernels_is_skipped_with_one_line(store, caplog, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{store['root']}/mlflow.db")
    monkeypatch.chdir(store["root"])
    logger = logging.getLogger("pie_mlops")
    own = not logger.propagate  # the CLI's logger does not propagate to caplog's root handler
    if own:
        logger.addHandler(caplog.handler)
    try:
        with caplog.at_level(logging.WARNING, logger="pie_mlops"):
            records = prune_stage(shrink(store["params"], quantize=["fp8"], sparsities=[]), progress=False)
    finally:
        if own:
            logger.removeHandler(caplog.handler)
    logged = [r.getMessage() for r in caplog.records if "quant-fp8" in r.getMessage()]
    assert len(logged) == 1 and records == [{"group": "quant-fp8", "seed": 0, "status": "unsupported",
                                             "reason": logged[0]}]
    fp8 = [r for r in store["first"] if r["group"] == "quant-fp8"]
    assert [r["status"] for r in fp8] == ["unsupported"]  # probed once, skipped for every seed
    line = fp8[0]["reason"]
    assert "\n" not in line and line.startswith("prune: quant-fp8 skipped for bert: it does not run on this CPU (")
    assert "Float8" in line  # torch's own reason: no CPU kernel for the dtype
    assert not _client().search_model_versions(f"name = '{NAME}' and tag.group = 'quant-fp8'")
    assert not (store["root"] / "predictions" / "synthetic_nli" / "bert" / "pruned" / "quant-fp8").exists()


@pytest.mark.parametrize("method", METHODS)
def test_a_quantized_version_loads_back_and_predicts_what_was_logged(store, method):
    import mlflow.pyfunc

    from pie_mlops import tracking
    from pie_mlops.data.contract import read_split
    from pie_mlops.jobs.training import predict_logits

    alias = f"quant-{method}-s1"
    logged = read_predictions(store["root"] / "predictions" / "synthetic_nli" / "bert" / "pruned" /
                              f"quant-{method}" / "s1" / "test.parquet")
    test = read_split(store["root"] / "data" / "synthetic_nli", "test")
    assert list(logged["example_id"]) == list(test["example_id"])
    model = tracking.load_version(NAME, alias, store["root"] / "dl" / method)
    logits = predict_logits(model, test, device="cpu")
    assert np.array_equal(logits, np.stack(logged["logits"].to_numpy()).astype(np.float32))
    served = mlflow.pyfunc.load_model(f"models:/{NAME}@{alias}").predict(test[["text", "text_pair"]])
    assert np.array_equal(served["label"].to_numpy(), np.stack(logged["logits"].to_numpy()).argmax(axis=1))


def test_compare_treats_quantized_groups_like_pruned_ones(store):
    out = Path(store["result"]["out"])
    summary = json.loads((out / "summary.json").read_text())
    for method in METHODS:
        s = summary[f"quant-{method}"]
        assert s["n_models"] == 2 and s["sparsity"] is None
        assert {"pie_share", "pie_share_ci", "pruned_acc_pie", "pruned_acc_all", "collapsed"} <= set(s)
    analysis = json.loads((out / "analysis.json").read_text())
    assert "quant-int8-dyn" in analysis["noise_floor"]["groups"]
    table = json.loads((out / "compression.json").read_text())
    assert table["dense"]["model_mb"] > 0 and table["dense"]["latency_ms"] > 0
    q = table["groups"]["quant-int8-dyn"]
    assert q["compression"] == "quantization" and q["bits"] == 8 and q["model_mb"] < table["dense"]["model_mb"]
    assert q["pie_share"] == summary["quant-int8-dyn"]["pie_share"]
    assert set(table["groups"]) == {"magnitude-os@0.50", *(f"quant-{m}" for m in METHODS)}
    p = table["groups"]["magnitude-os@0.50"]
    assert p["compression"] == "pruning" and p["model_mb"] > 0 and p["latency_ms"] > 0
    axes = {(m["quantized"], m["matched_on"]) for m in table["matched"]}
    assert ("quant-int8-dyn", "model_mb") in axes and ("quant-bf16", "latency_ms") in axes
    html = (out / "report" / "index.html").read_text()
    assert "Compression: pruning against quantization" in html and "quant-int8-wo" in html


def test_the_champion_may_be_a_quantized_version(store):
    from pie_mlops.compare.selection import select_champion
    import pandas as pd

    # the rule: the sparsest pruned version within tolerance, else a quantized one (sparsity NaN)
    rows = pd.DataFrame([{"group": "magnitude-os@0.50", "seed": 0, "sparsity": 0.5, "acc_subset": 0.1, "acc_all": 0.4},
                         {"group": "quant-int8-dyn", "seed": 0, "sparsity": float("nan"), "acc_subset": 0.8,
                          "acc_all": 0.8}])
    row = select_champion(rows, 0.8, 0.8, tolerance=0.05)
    assert row["group"] == "quant-int8-dyn" and row["sparsity"] is None and "quantized" in row["reason"]
    json.dumps(row, allow_nan=False)
    assert store["result"]["champion_reason"]
    logging.getLogger(__name__).info(store["result"]["champion_reason"])
