"""The prune stage against a real SQLite MLflow store: runs, versions, aliases, predictions, skips, errors.

The module trains two dense tiny-BERT seeds once, then prunes them (os and ft, two criteria).
"""


import numpy as np
import pytest
import torch
import yaml

from stage_fixtures import tiny_study

from pie_mlops.cli import main
from pie_mlops.compare.predictions import read_predictions
from plans import params_doc, plan
from pie_mlops.config.plans import shrink
from pie_mlops.stages.prune import group_name
from pie_mlops.stages.prune import prune as prune_stage
from pie_mlops.stages.train import train as train_stage

NAME = "pie-synthetic_nli-bert"


@pytest.fixture(scope="module")
def store(tmp_path_factory, tokenizer):
    root = tmp_path_factory.mktemp("prune")
    common = tiny_study(root, tokenizer)
    train_params = plan("train", profile="default", **common, seeds=[0, 1], epochs=1, snapshot_epochs=[1])
    prune_params = plan("prune", profile="default", **common, criteria=["magnitude", "impact"], schedules=["os", "ft"], methods=None, sparsities=[0.5],
                        epochs_per_step=1,
                        seeds=[0, 1], recovery_steps=2, impact_batches=2, predict_test=True)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{root}/mlflow.db")
        for var in ("MLFLOW_REGISTRY_URI", "MLFLOW_RUN_ID", "MLFLOW_EXPERIMENT_NAME"):
            mp.delenv(var, raising=False)
        mp.chdir(root)  # params files written by the error tests land here
        train_stage(train_params, progress=False)
        first = prune_stage(prune_params, progress=False)
        yield {"root": root, "params": prune_params, "first": first}


def _client():
    from mlflow import MlflowClient

    return MlflowClient()


def _versions():
    return _client().search_model_versions(f"name = '{NAME}'")


def test_every_group_and_seed_is_a_tagged_version_with_its_alias_and_predictions(store):
    assert [r["status"] for r in store["first"]] == ["pruned"] * 8
    client = _client()
    for record in store["first"]:
        group, seed = record["group"], record["seed"]
        alias = group.replace("@", "-").replace(".", "_") + f"-s{seed}"
        mv = client.get_model_version_by_alias(NAME, alias)
        assert mv.run_id == record["run_id"]
        tags = mv.tags
        assert {"group", "criterion", "schedule", "scope", "sparsity", "achieved_sparsity", "seed", "data_md5",
                "git_sha", "params_hash"} <= set(tags)
        assert tags["group"] == group and tags["seed"] == str(seed) and tags["sparsity"] == "0.50"
        assert abs(float(tags["achieved_sparsity"]) - 0.5) <= 1e-3
        run = client.get_run(mv.run_id)
        assert {"latency_ms", "nonzero_params", "size_mb", "test_score"} <= set(run.data.metrics)
        out = store["root"] / "predictions" / "synthetic_nli" / "bert" / "pruned" / group / f"s{seed}"
        for split in ("validation", "test", "train"):
            frame = read_predictions(out / f"{split}.parquet")
            assert set(frame["group"]) == {group} and set(frame["seed"]) == {seed}
    groups = {r["group"] for r in store["first"]}
    assert groups == {group_name(c, s, 0.5) for c in ("magnitude", "impact") for s in ("os", "ft")}
    assert "magnitude-ft@0.50" in groups


def test_reloaded_version_holds_its_zeros_without_masks(store):
    from pie_mlops import tracking
    from pie_mlops.pruning.criteria import prunable_weights
    from pie_mlops.pruning.masks import sparsity_report

    model = tracking.load_version(NAME, "magnitude-os-0_50-s1", store["root"] / "dl")
    assert not any(hasattr(m, "weight_mask") for m in model.modules())
    assert sparsity_report(prunable_weights(model))["achieved_sparsity"] == pytest.approx(0.5, abs=1e-3)


def test_os_prunes_the_registered_dense_model(store):
    """Without recovery, os at sparsity 0 would be the dense model itself; here the pruned
    model's predictions stay close to dense ones (same trained weights, half of them gone)."""
    root = store["root"] / "predictions" / "synthetic_nli" / "bert"
    dense = read_predictions(root / "dense" / "s0" / "test.parquet")
    pruned = read_predictions(root / "pruned" / "magnitude-os@0.50" / "s0" / "test.parquet")
    assert dense["example_id"].tolist() == pruned["example_id"].tolist()
    assert not np.array_equal(np.stack(dense["logits"]), np.stack(pruned["logits"]))


def test_rerun_skips_finished_pairs(store):
    runs = len(_client().search_runs([e.experiment_id for e in _client().search_experiments()]))
    versions = len(_versions())
    again = prune_stage(store["params"], progress=False)
    assert [r["status"] for r in again] == ["skipped"] * 8
    assert len(_versions()) == versions
    assert len(_client().search_runs([e.experiment_id for e in _client().search_experiments()])) == runs


@pytest.mark.parametrize("change, message", [
    # The schema refuses these at load time (issue 30 §6), naming the file and the key.
    ({"sparsities": [1.0]}, "bad.yaml: prune.sparsities.0: Input should be less than 1"),
    ({"sparsities": [-0.1]}, "bad.yaml: prune.sparsities.0: Input should be greater than or equal to 0"),
    ({"criteria": ["taylor"]}, "unknown criterion"),
    ({"schedules": ["lottery"]}, "unknown schedule"),
    ({"arch": "bilstm", "scope": "structured", "schedules": ["os"]}, "bert only"),
    ({"seeds": [7]}, "dense seed 7 is not in the registry"),
])
def test_bad_input_exits_2_and_registers_nothing(store, capsys, change, message):
    versions = len(_versions())
    params = store["params"].model_dump()
    params.update(change)
    path = store["root"] / "bad.yaml"
    path.write_text(yaml.safe_dump(params_doc(prune=params)))
    with pytest.raises(SystemExit) as exc:
        main(["--params", str(path), "prune"])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1
    assert len(_versions()) == versions


def test_structured_os_registers_a_smaller_model_that_reloads_identically(store):
    from pie_mlops import tracking
    from pie_mlops.data.contract import read_split
    from pie_mlops.jobs.training import predict_logits

    params = shrink(store["params"], scope="structured", schedules=["os"], criteria=["magnitude"], seeds=[0],
                  recovery_steps=0)
    [record] = prune_stage(params, progress=False)
    assert record["group"] == "magnitude-os-structured@0.50"
    run = _client().get_run(record["run_id"])
    assert run.data.metrics["total_params"] < _client().get_run(store["first"][0]["run_id"]).data.metrics[
        "total_params"]
    model = tracking.load_version(NAME, "magnitude-os-structured-0_50-s0", store["root"] / "dl-structured")
    test_df = read_split(store["root"] / "data" / "synthetic_nli", "test")
    logged = read_predictions(store["root"] / "predictions" / "synthetic_nli" / "bert" / "pruned" / record["group"] / "s0"
                              / "test.parquet")
    assert np.allclose(predict_logits(model, test_df), np.stack(logged["logits"]), atol=1e-5)
    with torch.no_grad():
        assert all(p.numel() > 0 for p in model.parameters())


def test_collect_gathers_the_latest_finished_run_per_group_and_seed(store):
    from pie_mlops.compare.collect import collect_predictions

    frame, md5s, runs = collect_predictions("synthetic_nli", "bert", "test", progress=False)
    pairs = {(r["group"], r["seed"]) for r in store["first"]} | {("dense", 0), ("dense", 1)}
    assert set(md5s) >= pairs and set(frame.groupby(["group", "seed"]).size().index) >= pairs
    assert set(frame["split"]) == {"test"}
    assert runs[0]["group"] == "dense"  # dense first: the comparison's reference
    with pytest.raises(Exception, match="no finished runs"):
        collect_predictions("synthetic_topics", "bert", "test", progress=False)


def test_paper_profile_prune_settings_tie_e_to_the_dense_epochs_and_prune_every_layer(store):
    """profiles/paper.yaml's prune options on the real store: E read from the dense run's logged
    epochs (1 here, so ft trains 4 epochs), Adam at a constant lr, per-layer thresholds over the
    paper's prunable set, so every layer, LayerNorm gammas included, sits on its target."""

    from pie_mlops import tracking
    from pie_mlops.pruning.masks import sparsity_report
    from pie_mlops.pruning.prunable import prunable_set

    paper = plan("prune", profile="paper").model_dump()
    keys = ("threshold", "prunable", "epochs_per_step", "impact_grads", "optimizer", "warmup_ratio", "weight_decay")
    params = shrink(store["params"], **{k: paper[k] for k in keys}, methods=["impact-ft"], sparsities=[0.5], seeds=[0])
    [record] = prune_stage(params, progress=False)
    assert record["status"] == "pruned" and record["group"] == "impact-ft-layer@0.50"
    client = _client()
    run = client.get_run(record["run_id"])
    dense = client.get_run(client.get_model_version_by_alias(NAME, "dense-s0").run_id)
    assert run.data.params["epochs_per_step"] == dense.data.params["epochs"] == "1"
    assert run.data.params["optimizer"] == "adam_constant" and run.data.params["prunable"] == "paper"
    lrs = [m.value for m in client.get_metric_history(run.info.run_id, "lr")]
    assert len(lrs) == 4 and len(set(lrs)) == 1  # 4E epochs at one lr
    model = tracking.load_version(NAME, "impact-ft-layer-0_50-s0", store["root"] / "dl-paper")
    weights = prunable_set(model, "paper")
    per_layer = sparsity_report(weights)["per_layer"]
    assert any(n.endswith("LayerNorm.weight") for n in weights)
    for name, w in weights.items():
        assert per_layer[name] == round(0.5 * w.numel()) / w.numel(), name
