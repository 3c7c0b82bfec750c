"""The train stage against a real SQLite MLflow store: runs, registry, aliases, artifacts.

One store and one trained tiny-BERT model (seed 0) are shared by the module: creating a
store and importing mlflow take most of the time, training the tiny model takes a second.
"""

from pathlib import Path

import numpy as np
import pytest
import yaml

from pie_mlops.cli import main
from pie_mlops.compare.predictions import BUNDLE, read_predictions, split_files
from plans import params_doc, plan
from pie_mlops.config.plans import shrink
from pie_mlops.stages.materialize import materialize
from pie_mlops.stages.train import train as train_stage

NAME = "pie-synthetic_nli-bert"


@pytest.fixture(scope="module")
def store(tmp_path_factory, tokenizer):
    """A fresh store and data dir, a tiny BERT saved like a Hugging Face checkpoint, params."""
    from transformers import BertConfig, BertForSequenceClassification

    root = tmp_path_factory.mktemp("registry")
    config = BertConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=128)
    BertForSequenceClassification(config).save_pretrained(root / "tiny-bert")
    tokenizer.save_pretrained(root / "tiny-bert")
    materialize(plan("materialize", data_dir=str(root / "data")), ["synthetic_nli"], progress=False)
    params = plan("train", profile="default", dataset="synthetic_nli", arch="bert", model_path=str(root / "tiny-bert"),
                  data_dir=str(root / "data"), seeds=[0], epochs=1, batch_size=32, lr=1e-3, max_length=64,
                  predictions_dir=str(root / "predictions"),
                  best_params=str(root / "params" / "best_{dataset}_{arch}.yaml"), snapshot_epochs=[1],
                  predict_train=True, max_train_examples=None)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{root}/mlflow.db")
        mp.delenv("MLFLOW_REGISTRY_URI", raising=False)
        mp.delenv("MLFLOW_RUN_ID", raising=False)
        mp.delenv("MLFLOW_EXPERIMENT_NAME", raising=False)
        first = train_stage(params, progress=False)
        yield {"root": root, "params": params, "first": first}


def _client():
    from mlflow import MlflowClient

    return MlflowClient()  # follows MLFLOW_TRACKING_URI; the registry follows the tracking URI


def _runs():
    client = _client()
    return client.search_runs([e.experiment_id for e in client.search_experiments()])


def _versions():
    return _client().search_model_versions(f"name = '{NAME}'")


def test_trains_registers_and_aliases(store):
    [record] = store["first"]
    assert record["status"] == "trained" and record["version"] == "1"
    mv = _client().get_model_version_by_alias(NAME, "dense-s0")
    assert str(mv.version) == "1" and mv.run_id == record["run_id"]
    for tag in ("group", "criterion", "schedule", "scope", "sparsity", "achieved_sparsity", "seed",
                "data_md5", "git_sha", "params_hash"):
        assert mv.tags.get(tag), tag
    assert mv.tags["group"] == "dense" and mv.tags["seed"] == "0" and mv.tags["data_md5"] == "untracked"
    run = _client().get_run(record["run_id"])
    assert run.info.status == "FINISHED" and run.data.tags["params_hash"] == mv.tags["params_hash"]
    assert run.data.params["epochs"] == "1" and "val_score" in run.data.metrics
    assert [m.step for m in _client().get_metric_history(run.info.run_id, "train_loss")] == [1]


def test_logged_models_are_named_and_tagged_and_runs_record_their_data(store):
    """What an MLflow user looks at (issue 29): the Models tab lists
    `<dataset>-<arch>-<group>-s<seed>` with the version's tags; each run's dataset inputs carry
    a schema and a profile, digest = data_md5; the experiment is tagged as model training,
    and the store keeps no empty `Default` experiment beside it."""
    import mlflow
    from mlflow.entities import ViewType

    [record] = store["first"]
    client = _client()
    exp = client.get_experiment_by_name("pie-mlops")
    [model] = mlflow.search_logged_models(experiment_ids=[exp.experiment_id], output_format="list")
    assert model.name == "synthetic_nli-bert-dense-s0" and model.source_run_id == record["run_id"]
    assert {k: model.tags.get(k) for k in ("dataset", "arch", "group", "seed", "data_md5", "stage")} == {
        "dataset": "synthetic_nli", "arch": "bert", "group": "dense", "seed": "0", "data_md5": "untracked",
        "stage": "train"}
    assert model.tags.get("params_hash") and model.tags.get("code_fingerprint")
    inputs = client.get_run(record["run_id"]).inputs.dataset_inputs
    assert sorted(i.tags[0].value for i in inputs) == ["test", "train", "validation"]
    for i in inputs:
        assert i.dataset.digest == "untracked" and i.dataset.name.startswith("synthetic_nli/")
        columns = {c["name"] for c in __import__("json").loads(i.dataset.schema)["mlflow_colspec"]}
        assert {"example_id", "text", "label"} <= columns and '"num_rows"' in i.dataset.profile
    assert exp.tags.get("mlflow.experimentKind") == "custom_model_development"
    active = [e.name for e in client.search_experiments(view_type=ViewType.ACTIVE_ONLY)]
    assert active == ["pie-mlops"]


def test_logged_model_names_are_legal_for_mlflow():
    from mlflow.utils.validation import _validate_logged_model_name

    from pie_mlops.tracking.models import logged_model_name

    name = logged_model_name("rotten_tomatoes", "bert", "magnitude-ft@0.50", 3)
    assert name == "rotten_tomatoes-bert-magnitude-ft@0_50-s3"
    _validate_logged_model_name(name)


def test_prediction_artifacts_follow_the_contract(store, tmp_path):
    [record] = store["first"]
    local = store["root"] / "predictions" / "synthetic_nli" / "bert" / "dense" / "s0"
    expected = {"validation.parquet", "test.parquet", "train.parquet", "train@epoch1.parquet"}
    assert {p.name for p in local.glob("*.parquet")} == expected
    # one artifact, every split (one upload, not one per split); split back byte for byte
    logged = {Path(a.path).name for a in _client().list_artifacts(record["run_id"], "predictions")}
    assert logged == {BUNDLE}
    got = split_files(Path(_client().download_artifacts(record["run_id"], "predictions", str(tmp_path))))
    assert {p.name for p in got.glob("*.parquet")} == expected
    for name in expected:
        assert (got / name).read_bytes() == (local / name).read_bytes()
        frame = read_predictions(got / name)
        assert frame.equals(read_predictions(local / name))
        assert {"example_id", "split", "group", "seed", "label", "logits"} <= set(frame.columns)
        assert frame["split"].unique().tolist() == [name.removesuffix(".parquet")]
        assert (frame["group"] == "dense").all() and frame["seed"].dtype == np.int64
        assert frame["logits"].iloc[0].dtype == np.float32 and len(frame["logits"].iloc[0]) == 3


def test_registry_round_trip_reproduces_logits(store, monkeypatch, tmp_path):
    """The registry's one model form, a pyfunc from code over safetensors, loads with pickle
    deserialization off, both as MLflow users load it and as our own classifier."""
    import mlflow.pyfunc

    from pie_mlops.data.contract import read_split
    from pie_mlops.util.metrics import softmax
    from pie_mlops.tracking import load_version
    from pie_mlops.jobs.training import predict_logits

    test_df = read_split(store["root"] / "data" / "synthetic_nli", "test")
    logged = read_predictions(store["root"] / "predictions" / "synthetic_nli" / "bert" / "dense" / "s0"
                              / "test.parquet")
    expected = np.stack(logged["logits"].to_numpy())
    assert logged["example_id"].tolist() == test_df["example_id"].tolist()

    monkeypatch.delenv("MLFLOW_ALLOW_PICKLE_DESERIALIZATION", raising=False)
    pyfunc = mlflow.pyfunc.load_model(f"models:/{NAME}@dense-s0")
    meta = pyfunc.metadata
    assert meta.signature is not None and meta.saved_input_example_info is not None
    assert set(meta.flavors) == {"python_function"}  # no pytorch (pickle) flavour anywhere
    assert [c.name for c in meta.signature.inputs.inputs] == ["text", "text_pair"]  # a pair dataset
    answer = pyfunc.predict(test_df[["text", "text_pair"]].head(4))
    names = ["entailment", "neutral", "contradiction"]
    assert list(answer.columns) == ["label", "label_name"] + [f"prob_{n}" for n in names]
    assert answer["label"].tolist() == expected[:4].argmax(axis=1).tolist()
    assert answer["label_name"].tolist() == [names[i] for i in answer["label"]]
    probs = answer[[f"prob_{n}" for n in names]].to_numpy()
    assert np.allclose(probs, softmax(expected[:4].astype(np.float64)), atol=1e-6)

    # Our own classifier, from the same files (what prune's `os` schedule starts from).
    model = load_version(NAME, "dense-s0", tmp_path / "dl")
    assert np.array_equal(predict_logits(model, test_df), expected)
    versions = _client().search_model_versions(f"name = '{NAME}'")
    run_artifacts = {a.path for a in _client().list_artifacts(versions[0].run_id)}
    assert "safetensors" not in run_artifacts  # stored once, inside the model


def test_rerun_skips_and_restores_missing_predictions(store):
    runs, versions = len(_runs()), len(_versions())
    local = store["root"] / "predictions" / "synthetic_nli" / "bert" / "dense" / "s0"
    for p in local.glob("*.parquet"):
        p.unlink()
    [record] = train_stage(store["params"], progress=False)
    assert record["status"] == "skipped" and record["run_id"] == store["first"][0]["run_id"]
    assert len(_runs()) == runs and len(_versions()) == versions
    assert {p.name for p in local.glob("*.parquet")} == {"validation.parquet", "test.parquet", "train.parquet",
                                                          "train@epoch1.parquet"}


@pytest.mark.parametrize("where", ["jobs.frames.predict_split", "jobs.protocol.write_bundle",
                                   "jobs.protocol.publish_predictions"])
def test_failed_run_is_failed_and_registers_nothing(store, monkeypatch, where):
    """A failure while computing (no run exists yet: none is made), and one in the tracking
    writer before the metrics went up or after the version was created (FAILED, with its params
    and training history all the same): no version, no files either way."""
    import importlib

    module, func = where.rsplit(".", 1)

    def boom(*args, **kwargs):
        raise RuntimeError("injected failure")

    monkeypatch.setattr(importlib.import_module(f"pie_mlops.{module}"), func, boom)
    versions = len(_versions())
    with pytest.raises(RuntimeError, match="injected"):
        train_stage(shrink(store["params"], seeds=[7]), progress=False)
    failed = [r for r in _runs() if r.data.tags.get("seed") == "7"]
    assert all(r.info.status == "FAILED" for r in failed)
    assert bool(failed) == (where != "jobs.frames.predict_split")  # computing makes no run
    assert all(r.data.params.get("epochs") == "1" and "train_loss" in r.data.metrics for r in failed)
    assert len(_versions()) == versions
    assert all(v.tags.get("seed") != "7" for v in _versions())
    with pytest.raises(Exception):
        _client().get_model_version_by_alias(NAME, "dense-s7")
    s7 = store["root"] / "predictions" / "synthetic_nli" / "bert" / "dense" / "s7"
    assert not s7.exists() or not any(s7.iterdir())
    assert not [p for p in s7.parent.iterdir() if p.name.startswith(".")]  # no staging left behind


def test_bad_input_exits_2_before_any_run(store, tmp_path, capsys):
    root, params = store["root"], store["params"]
    params_file = tmp_path / "params.yaml"
    params_file.write_text(yaml.safe_dump(params_doc(train=params)))
    runs, versions = len(_runs()), len(_versions())
    cases = {
        ("--dataset", "nope"): "pie-mlops materialize --dataset nope",
        ("--arch", "gpt"): "train.arch.0 (--arch): Input should be 'bert' or 'bilstm'",
        ("--model-path", str(tmp_path / "no-such-model")): "does not exist",
        ("--seeds", "a,b"): "train.seeds.0 (--seeds): Input should be a valid integer",
    }
    for args, message in cases.items():
        with pytest.raises(SystemExit) as exc:
            main(["--params", str(params_file), "train", *args])
        assert exc.value.code == 2 and message in capsys.readouterr().err, args

    best = root / "params" / "best_synthetic_nli_bert.yaml"
    best.parent.mkdir(exist_ok=True)
    best.write_text("lr: [1e-4\nepochs: 2\n")
    try:
        with pytest.raises(SystemExit) as exc:
            main(["--params", str(params_file), "train"])
        assert exc.value.code == 2 and "does not parse" in capsys.readouterr().err
    finally:
        best.unlink()
    assert len(_runs()) == runs and len(_versions()) == versions


def test_under_mlflow_run_models_are_child_runs(store, monkeypatch):
    """`mlflow run` passes its run as MLFLOW_RUN_ID: every seed's run nests under it."""
    client = _client()
    parent = client.create_run(client.create_experiment("elsewhere")).info.run_id  # any experiment
    monkeypatch.setenv("MLFLOW_RUN_ID", parent)
    records = train_stage(shrink(store["params"], seeds=[3, 4]), progress=False)
    assert [r["status"] for r in records] == ["trained", "trained"]
    children = [r for r in _runs() if r.data.tags.get("mlflow.parentRunId") == parent]
    assert sorted(r.data.tags["seed"] for r in children) == ["3", "4"]
    assert all(r.info.status == "FINISHED" for r in children)
    assert {r.info.experiment_id for r in children} == {client.get_experiment_by_name("elsewhere").experiment_id}
    assert client.get_experiment_by_name("elsewhere").tags.get("mlflow.experimentKind") == "custom_model_development"
    assert {str(client.get_model_version_by_alias(NAME, f"dense-s{s}").run_id) for s in (3, 4)} == \
        {r.info.run_id for r in children}


def test_a_worker_job_looks_finished_runs_up_in_one_snapshot(store):
    """With a worker's snapshot (context.FinishedRuns), skip-on-rerun lookups come from one
    search per (dataset, arch); a retry drops the snapshot (forget) and sees runs finished since."""
    from pie_mlops import tracking
    from pie_mlops.jobs.context import FinishedRuns
    from pie_mlops.tracking import finished

    run_id = store["first"][0]["run_id"]
    tags = dict(_client().get_run(run_id).data.tags)
    other = dict(tags, seed="99")
    snapshot = FinishedRuns()
    assert tracking.find_finished_run(tags, snapshot) == run_id
    assert tracking.find_finished_run(other, snapshot) is None
    key = next(iter(snapshot._runs))
    snapshot._runs[key].pop(finished._identity(tags))  # as if it finished after the snapshot
    assert tracking.find_finished_run(tags, snapshot) is None  # the snapshot is not searched again
    snapshot.forget()
    assert tracking.find_finished_run(tags, snapshot) == run_id
    assert tracking.find_finished_run(tags) == run_id  # no snapshot: one search per call
