"""The compare stage in MLflow mode, against a real SQLite store: tiny-BERT dense and pruned
runs are collected by their tags, gated by great-expectations, compared, and logged to one
`compare` run; the PIE metrics land on each model's run and `champion` in the registry."""

import json
from pathlib import Path

import pytest

from stage_fixtures import tiny_study

from pie_mlops.cli import main
from pie_mlops.util.errors import DataQualityError
from plans import params_doc, plan
from pie_mlops.config.plans import shrink
from pie_mlops.stages.compare_study import compare
from pie_mlops.stages.prune import prune as prune_stage
from pie_mlops.stages.train import train as train_stage

NAME = "pie-synthetic_nli-bert"


@pytest.fixture(scope="module")
def store(tmp_path_factory, tokenizer):
    root = tmp_path_factory.mktemp("compare")
    common = tiny_study(root, tokenizer)
    common.update(batch_size=16, lr=2e-3)  # enough to learn something that pruning can break
    seeds = [0, 1, 2]
    params = plan("compare", profile="default", dataset="synthetic_nli", arch=["bert"], data_dir=str(root / "data"),
                  out=str(root / "reports" / "{dataset}" / "{arch}"),
                  checks_dir=str(root / "checks" / "{dataset}" / "{arch}"), split="test", n_boot=20,
                  champion_tolerance=1.0)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{root}/mlflow.db")
        for var in ("MLFLOW_REGISTRY_URI", "MLFLOW_RUN_ID", "MLFLOW_EXPERIMENT_NAME"):
            mp.delenv(var, raising=False)
        mp.chdir(root)
        # Enough training that the models learn something and pruning can break it.
        train_stage(plan("train", profile="default", **common, seeds=seeds, epochs=4, snapshot_epochs=[1]), progress=False)
        prune_stage(plan("prune", profile="default", **common, criteria=["magnitude", "random"], schedules=["os"], methods=None, sparsities=[0.5, 0.9],
                         seeds=seeds, predict_test=True), progress=False)
        [result] = compare(params, None, progress=False)
        yield {"root": root, "params": params, "result": result}


def _client():
    from mlflow import MlflowClient

    return MlflowClient()


def test_one_finished_compare_run_with_metrics_per_group_and_curves(store):
    client = _client()
    run = client.get_run(store["result"]["run_id"])
    assert run.info.status == "FINISHED"
    assert run.data.tags["stage"] == "compare" and run.data.tags["dataset"] == "synthetic_nli"
    summary = json.loads((Path(store["result"]["out"]) / "summary.json").read_text())
    floor = summary.pop("noise_floor")  # beside the groups: dense vs dense at the groups' seeds (3: 1 vs 1)
    assert floor["seeds_per_side"] == 1 and floor["matched"] is False and len(floor["ci"]) == 2
    assert set(summary) == {"magnitude-os@0.50", "magnitude-os@0.90", "random-os@0.50", "random-os@0.90"}
    m = run.data.metrics
    for group, s in summary.items():
        key = group.replace("@", "-")
        assert m[f"{key}/n_pies"] == s["n_pies"] and m[f"{key}/pie_share"] == pytest.approx(s["pie_share"])
    history = client.get_metric_history(run.info.run_id, "pie_share/random-os")
    assert sorted(p.step for p in history) == [50, 90]  # the UI draws PIE share against sparsity


def test_compare_artifacts_and_the_pie_table_are_logged(store):
    client = _client()
    rid = store["result"]["run_id"]
    names = {f.path for f in client.list_artifacts(rid, "compare")}
    assert {"compare/pies.parquet", "compare/summary.json", "compare/analysis.json", "compare/report",
            "compare/plots"} <= names
    assert {"pie_summary.json", "pie_examples.json"} <= {f.path for f in client.list_artifacts(rid)}
    # The PIEs themselves reach MLflow (mlflow.log_table), and the run's data as dataset inputs.
    import json

    table = json.loads(Path(client.download_artifacts(rid, "pie_examples.json", str(store["root"] / "dl"))).read_text())
    assert {"group", "text", "gold", "dense_label", "pruned_label", "dense_votes", "pruned_votes"} <= set(table["columns"])
    run = client.get_run(rid)
    assert {(i.dataset.name, i.dataset.digest) for i in run.inputs.dataset_inputs} == {
        ("synthetic_nli/test", run.data.tags["data_md5"]), ("synthetic_nli/train", run.data.tags["data_md5"])}
    report = Path(client.download_artifacts(rid, "compare/report/index.html", str(store["root"] / "dl")))
    assert "PIEs against sparsity" in report.read_text()


def test_each_model_run_gets_its_pie_metrics(store):
    from pie_mlops import tracking

    runs = tracking.model_runs("synthetic_nli", "bert")
    assert len(runs) == 3 + 4 * 3
    summary = store["result"]["summary"]
    client = _client()
    # The pruning-sensitive subset is the union of the PIEs of groups that did not collapse.
    sensitive = any(not s.get("collapsed") and s["n_pies"] > 0 for g, s in summary.items() if g != "noise_floor")
    for r in runs:
        metrics = client.get_run(r["run_id"]).data.metrics
        assert ("acc_sensitive" in metrics) == sensitive
        if r["group"] != "dense":
            assert metrics["pie_share"] == pytest.approx(summary[r["group"]]["pie_share"])
            # A group without PIEs has no PIE accuracy: nothing is logged rather than a NaN.
            assert ("acc_pie" in metrics) == (summary[r["group"]]["n_pies"] > 0)
            assert "acc_nonpie" in metrics


def test_champion_alias_points_at_the_sparsest_version_with_its_reason(store):
    champ = store["result"]["champion"]
    summary = store["result"]["summary"]
    usable = {g for g, s in summary.items() if g != "noise_floor" and not s.get("collapsed")}
    pruned = [v for v in _client().search_model_versions(f"name = '{NAME}'") if v.tags.get("group") != "dense"]
    assert pruned
    for v in pruned:  # the registry UI: every pruned version's description carries its PIE line
        pies = [line for line in v.description.split("\n") if line.startswith("PIEs: ")]
        assert len(pies) == 1 and f"are PIEs of group {v.tags['group']}" in pies[0], v.description
    if champ is None:  # tiny models: every group collapsed, or no sensitive example to judge on
        verdict = json.loads((Path(store["result"]["out"]) / "champion.json").read_text())
        assert verdict["champion"] is None and verdict["reason"]
        assert "champion" not in _client().get_registered_model(NAME).aliases
        return
    # tolerance 1.0: every version qualifies but a collapsed group's, and the sparsest wins
    assert champ["sparsity"] == max(float(g.split("@")[1]) for g in usable)
    mv = _client().get_model_version_by_alias(NAME, "champion")
    assert str(mv.version) == champ["version"]
    assert mv.tags["group"] == champ["group"] and mv.tags["seed"] == str(champ["seed"])
    assert "sparsest version within 1" in mv.tags["champion_reason"]
    assert mv.tags["champion_compare_run"] == store["result"]["run_id"]
    assert mv.description.startswith(f"Group {champ['group']}, seed {champ['seed']}, sparsity ")
    assert mv.description.endswith("Champion: " + mv.tags["champion_reason"])


def test_the_gate_stops_on_predictions_from_another_data_version(store, capsys):
    root = store["root"]
    (root / "data.dvc").write_text("outs:\n- md5: 0123456789abcdef0123456789abcdef.dir\n  path: data\n")
    try:
        with pytest.raises(DataQualityError, match="current_data_version"):
            compare(store["params"], None, progress=False)
        result = json.loads((root / "checks" / "synthetic_nli" / "bert" / "result.json").read_text())
        assert not result["success"]
        assert (root / "checks" / "synthetic_nli" / "bert" / "data_docs" / "index.html").is_file()
    finally:
        (root / "data.dvc").unlink()


def test_too_few_seeds_fail_the_gate_through_the_cli(store, capsys):
    path = store["root"] / "params-few.yaml"
    params = shrink(store["params"], min_seeds=4)
    import yaml

    path.write_text(yaml.safe_dump(params_doc(compare=params)))
    with pytest.raises(SystemExit) as exc:
        main(["--params", str(path), "compare"])
    assert exc.value.code == 1
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error")]
    assert len(err) == 1 and "enough_seeds" in err[0] and "data_docs" in err[0]


def test_claims_json_is_written_with_a_verdict_per_claim(store):
    """The tiny profile end to end: compare writes <dataset dir>/claims.json with every claim,
    its rules version and the claims code's hash; os groups only go to `our_methods`."""
    path = Path(store["result"]["claims"])
    assert path == Path(store["result"]["out"]).parent / "claims.json"
    claims = json.loads(path.read_text())
    assert claims["seeds_per_group"]["bert"] == {"dense": 3, "pruned": 3, "floor_per_side": 1}
    keys = ("a_pie_accuracy_collapse", "b_el2n_enrichment", "c_longer_more_complex", "d1_class_proportional",
            "d2_damage_every_class", "e_transformer_more_prone")
    from pie_mlops.analysis.claim_rules import RULES_VERSION
    assert claims["rules_version"] == RULES_VERSION and len(claims["claims_code_sha256"]) == 64
    assert claims["paper_groups"] == [] and set(claims["our_methods"]) == set(keys[:-1])
    summary = json.loads((Path(store["result"]["out"]) / "summary.json").read_text())
    for key in keys:
        c = claims[key]
        assert c["verdict"] in ("holds", "refuted", "inconclusive") and c["note"] and "\n" not in c["note"]
        assert "p_value" in c or "ci" in c
        for group in c["groups"]:  # only eligible groups: never collapsed, always above the floor
            s = summary[group.split("/", 1)[1]] if "/" in group else summary[group]
            assert not s["collapsed"] and s["above_floor"]
    # On the compare run too: the file, and each verdict as a tag.
    run = _client().get_run(store["result"]["run_id"])
    assert run.data.tags["claim.a_pie_accuracy_collapse"] == claims["a_pie_accuracy_collapse"]["verdict"]
    assert "compare/claims.json" in {f.path for f in _client().list_artifacts(run.info.run_id, "compare")}
    # One architecture only: the transformer-vs-BiLSTM claim cannot be tested.
    assert claims["e_transformer_more_prone"]["verdict"] == "inconclusive"
    # The report stage puts the claims table first.
    from pie_mlops.report.build import build_report

    html = build_report(Path(store["result"]["out"]).parent, store["root"] / "pies_report").read_text()
    assert html.index("The paper's claims") < html.index("<h2>synthetic_nli/bert")
    collapsed = [g for g, v in summary.items() if g != "noise_floor" and v["collapsed"]]
    assert ("Collapsed groups" in html) == bool(collapsed)  # shown apart from the others
