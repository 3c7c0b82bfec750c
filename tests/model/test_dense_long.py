"""The training-length control on the tiny profile's data with ft: `train.dense_long_epochs`
makes a `dense-long` group through the model-job protocol (its own runs, aliases and
predictions under dense/), compare puts it beside dense, and claims.json reports each ft group
against it under the current rules version."""

import json
from pathlib import Path

import pytest

from stage_fixtures import tiny_study

from pie_mlops.analysis.claim_rules import RULES_VERSION
from plans import plan
from pie_mlops.stages.compare_study import compare
from pie_mlops.stages.prune import prune as prune_stage
from pie_mlops.stages.train import train as train_stage

FT = "magnitude-ft-layer@0.50"


@pytest.fixture(scope="module")
def study(tmp_path_factory, tokenizer):
    root = tmp_path_factory.mktemp("dense_long")
    common = tiny_study(root, tokenizer)
    seeds = [0, 1, 2]
    params = plan("compare", profile="default", dataset="synthetic_nli", arch=["bert"], data_dir=str(root / "data"),
                  out=str(root / "reports" / "{dataset}" / "{arch}"), split="test", n_boot=20,
                  checks_dir=str(root / "checks" / "{dataset}" / "{arch}"), champion_tolerance=1.0,
                  min_gain_over_baseline=-1.0, claims={"n_resamples": 200, "n_splits": 3})
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{root}/mlflow.db")
        for var in ("MLFLOW_REGISTRY_URI", "MLFLOW_RUN_ID", "MLFLOW_EXPERIMENT_NAME"):
            mp.delenv(var, raising=False)
        mp.chdir(root)
        # ft with E = 1 and 3 steps trains 4 epochs in all: dense-long trains as long.
        records = train_stage(plan("train", profile="default", **common, seeds=seeds, epochs=1, snapshot_epochs=[1],
                                   dense_long_epochs=4), progress=False)
        prune_stage(plan("prune", profile="default", **common, methods=["magnitude-ft"], sparsities=[0.5], threshold="per_layer",
                         seeds=seeds, epochs_per_step=1, steps=3, predict_test=True), progress=False)
        [result] = compare(params, None, progress=False)
        again = train_stage(plan("train", profile="default", **common, seeds=seeds, epochs=1, snapshot_epochs=[1],
                                 dense_long_epochs=4), progress=False)
        yield {"root": root, "result": result, "records": records, "again": again}


def test_dense_long_models_are_runs_with_their_own_aliases_and_predictions(study):
    from mlflow import MlflowClient

    assert len(study["records"]) == 6 and all(r["status"] == "trained" for r in study["records"])
    assert all(r["status"] == "skipped" for r in study["again"])   # skip-on-rerun, dense-long included
    mv = MlflowClient().get_model_version_by_alias("pie-synthetic_nli-bert", "dense-long-s1")
    assert mv.tags["group"] == "dense-long"
    run = MlflowClient().get_run(mv.run_id)
    assert run.data.params.get("epochs") in ("4", None) or run.data.tags["group"] == "dense-long"
    pred = study["root"] / "predictions" / "synthetic_nli" / "bert" / "dense" / "dense-long" / "s1"
    assert (pred / "test.parquet").is_file() and not (pred / "train@epoch1.parquet").is_file()


def test_claims_json_has_the_new_keys_the_rules_version_and_the_dense_long_comparison(study):
    path = Path(study["result"]["claims"])
    claims = json.loads(path.read_text())
    assert claims["rules_version"] == RULES_VERSION and len(claims["claims_code_sha256"]) == 64
    keys = ("a_pie_accuracy_collapse", "b_el2n_enrichment", "c_longer_more_complex", "d1_class_proportional",
            "d2_damage_every_class", "e_transformer_more_prone")
    for key in keys:
        e = claims[key]
        assert e["verdict"] in ("holds", "refuted", "inconclusive") and e["measure"] and e["comparison"]
        assert "p_value" in e and "ci" in e
    assert set(claims["our_methods"]) == set(keys) - {"e_transformer_more_prone"}
    assert "bert" in claims["dense-long"] and claims["dense-long"]["bert"]["n_models"] == 3
    summary = json.loads((Path(study["result"]["out"]) / "summary.json").read_text())
    assert "dense-long" in summary and FT in summary
    analysis = json.loads((Path(study["result"]["out"]) / "analysis.json").read_text())
    vs = analysis["vs_dense_long"][FT]
    assert 0 <= vs["pie_share"] <= 1 and "value" in vs["overall_drop"]
    champion = json.loads((Path(study["result"]["out"]) / "champion.json").read_text())
    assert champion.get("group") != "dense-long"   # a control, never a champion
    a = claims["a_pie_accuracy_collapse"]
    rows = ([a["primary"]] if a.get("primary") else []) + a["secondary"] + claims["our_methods"][keys[0]]
    for row in rows:   # every ft row carries the dense-long comparison and its flag
        if "-ft" in row["group"]:
            assert "pie_share" in row["vs_dense_long"] or "note" in row["vs_dense_long"]
