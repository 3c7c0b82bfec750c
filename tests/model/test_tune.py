"""Optuna tuning for real: SQLite storage, median pruning, nested MLflow runs, resume."""

import pytest
import yaml

from pie_mlops.util.errors import PieError
from plans import plan
from pie_mlops.stages.materialize import materialize
from pie_mlops.stages.tune import study_name, tune


@pytest.fixture
def tiny_bert_dir(tmp_path, tokenizer):
    """A 2-layer, hidden-32 BERT saved like any Hugging Face checkpoint."""
    from transformers import BertConfig, BertForSequenceClassification

    config = BertConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=128)
    path = tmp_path / "tiny-bert"
    BertForSequenceClassification(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return str(path)


@pytest.fixture
def tune_params(tmp_path, tiny_bert_dir, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/mlflow.db")
    materialize(plan("materialize", data_dir=str(tmp_path / "data")), ["synthetic_nli"], progress=False)
    return plan("tune", profile="default", dataset="synthetic_nli", arch="bert", model_path=tiny_bert_dir,
                data_dir=str(tmp_path / "data"), n_trials=3, storage=f"sqlite:///{tmp_path}/optuna.db",
                max_train_examples=200, max_validation_examples=80, max_length=64,
                out=str(tmp_path / "params" / "best_{dataset}_{arch}.yaml"),
                space={"lr": {"low": 1e-4, "high": 1e-3, "log": True}, "epochs": {"choices": [1, 2]},
                       "batch_size": {"choices": [16, 32]}, "warmup_ratio": {"low": 0.0, "high": 0.1}}).model_dump()


def _tune(values: dict, progress: bool = True) -> dict:
    """The tune stage on the plans `values` resolve to: the tiny profile's tune section with them over it."""
    from pie_mlops.config.plans import archs, for_arch

    from plans import plan

    section = plan("tune", **values)
    return tune([for_arch(section, arch) for arch in archs(section)], progress)


def _studies(storage: str) -> list[str]:
    """Every study in the storage, as `optuna studies` lists them: no lock tokens beside ours."""
    import optuna

    return sorted(optuna.get_all_study_names(storage))


def _runs():
    import mlflow

    experiments = [e.experiment_id for e in mlflow.search_experiments()]
    return mlflow.search_runs(experiments, output_format="list")


def test_study_nests_trials_writes_best_and_resumes(tune_params, tmp_path):
    import optuna

    best = _tune(tune_params, progress=False)["bert"]
    best_file = tmp_path / "params" / "best_synthetic_nli_bert.yaml"
    saved = yaml.safe_load(best_file.read_text())
    assert {k: saved[k] for k in best} == best and set(best) == {"lr", "epochs", "batch_size", "warmup_ratio"}
    assert saved["_study"]["n_trials"] == 3 and 0.0 <= saved["_study"]["best_value"] <= 1.0

    runs = _runs()
    [parent] = [r for r in runs if r.data.tags.get("stage") == "tune"]
    trials = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert len(trials) == 3 and {r.data.tags["state"] for r in trials} <= {"complete", "pruned"}
    assert all("val_score" in r.data.metrics for r in trials)
    assert {f"best_{k}" for k in best} <= set(parent.data.params) and parent.info.status == "FINISHED"
    # Each trial names its run (optuna-dashboard shows the attr); the runs record the data read.
    [name] = _studies(tune_params["storage"])
    study = optuna.load_study(study_name=name, storage=tune_params["storage"])
    assert sorted(t.user_attrs["mlflow_run_id"] for t in study.trials) == sorted(r.info.run_id for r in trials)
    for run in [parent, *trials]:
        inputs = run.inputs.dataset_inputs
        assert sorted(i.tags[0].value for i in inputs) == ["train", "validation"]  # never test
        assert all(i.dataset.digest == "untracked" and "mlflow_colspec" in i.dataset.schema for i in inputs)
        assert all('"num_rows"' in i.dataset.profile for i in inputs)

    # Resume: the same storage continues the same study, only up to the new n_trials.
    _tune(dict(tune_params, n_trials=4), progress=False)
    [name] = _studies(tune_params["storage"])
    assert name == study_name(tune_params, "untracked")  # data_dir is not tracked by DVC here
    study = optuna.load_study(study_name=name, storage=tune_params["storage"])
    assert len(study.trials) == 4
    runs = _runs()
    assert len([r for r in runs if r.data.tags.get("stage") == "tune"]) == 1  # still one parent
    assert len([r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]) == 4


def test_a_resumed_study_samples_reproducibly(tune_params):
    """Reopening a study seeds its sampler from tune.seed and the trials so far (not fresh
    entropy): two resumes draw the same next parameters, a later resume other ones."""
    import optuna

    from pie_mlops.stages.tune import open_study

    def next_draw(study) -> float:
        probe = optuna.trial.create_trial(params={}, distributions={}, value=0.0)
        return study.sampler.sample_independent(study, probe, "lr", optuna.distributions.FloatDistribution(0, 1))

    name = study_name(tune_params, "untracked")
    first, created = open_study(name, tune_params)
    assert created
    first.tell(first.ask({"lr": optuna.distributions.FloatDistribution(0, 1)}), 0.5)
    (a, resumed_a), (b, resumed_b) = open_study(name, tune_params), open_study(name, tune_params)
    assert not resumed_a and not resumed_b
    assert next_draw(a) == next_draw(b)
    c, _ = open_study(name, dict(tune_params, seed=tune_params["seed"] + 1))
    assert next_draw(c) != next_draw(open_study(name, tune_params)[0])


def test_every_architecture_gets_its_own_study_space_and_file(tune_params, tmp_path):
    import optuna

    space = {"bert": tune_params["space"],
             "bilstm": {"lr": {"low": 3e-3, "high": 1e-2, "log": True}, "epochs": {"choices": [3, 4]}}}
    best = _tune(dict(tune_params, arch=["bert", "bilstm"], n_trials={"bert": 1, "bilstm": 2}, space=space),
                progress=False)
    assert set(best) == {"bert", "bilstm"} and set(best["bilstm"]) == {"lr", "epochs"}
    assert 3e-3 <= best["bilstm"]["lr"] <= 1e-2 and best["bilstm"]["epochs"] in (3, 4)
    for arch, n in (("bert", 1), ("bilstm", 2)):
        saved = yaml.safe_load((tmp_path / "params" / f"best_synthetic_nli_{arch}.yaml").read_text())
        assert {k: saved[k] for k in best[arch]} == best[arch] and saved["_study"]["n_trials"] == n
        study = optuna.load_study(study_name=saved["_study"]["name"], storage=tune_params["storage"])
        assert study.study_name.startswith(f"pie-synthetic_nli-{arch}-")  # + the hash of what it searches
        assert len(study.trials) == n
    # A space naming bert alone keeps bilstm's default space (an overlay, tests/code/test_params_schema.py).


def test_tune_never_reads_test(tune_params, monkeypatch):
    import pie_mlops.data.contract as contract

    seen = []
    real = contract.read_split
    monkeypatch.setattr(contract, "read_split", lambda path, split: seen.append(split) or real(path, split))
    _tune(dict(tune_params, n_trials=1), progress=False)
    assert "test" not in seen and {"train", "validation"} <= set(seen)


def test_bad_inputs_fail_before_any_run(tune_params):
    with pytest.raises(PieError, match=r"tune\.arch\.0: Input should be 'bert' or 'bilstm'"):
        _tune(dict(tune_params, arch="gpt"))
    with pytest.raises(PieError, match="does not exist"):
        _tune(dict(tune_params, model_path="./no/such/model"))
    with pytest.raises(PieError, match="no dataset here|not found"):
        _tune(dict(tune_params, dataset="nope"))
    assert _runs() == []


def test_changed_search_settings_start_a_new_study_and_say_so(tune_params, capsys):
    """Issue 17 item 2: a resumed study must search what the params say, not what it searched."""
    import optuna

    from pie_mlops.util.log import setup

    setup(0)  # the message is an INFO line: configure the console as the CLI does (alone, nothing else has)

    _tune(dict(tune_params, n_trials=1), progress=False)
    capsys.readouterr()
    _tune(dict(tune_params, n_trials=1), progress=False)  # same settings: resumed, nothing new
    assert "starting a new study" not in capsys.readouterr().out
    first = study_name(tune_params, "untracked")
    assert _studies(tune_params["storage"]) == [first]
    changed = dict(tune_params, n_trials=1, max_length=32, space={"lr": {"low": 1e-4, "high": 2e-4}})
    _tune(changed, progress=False)
    second = study_name(changed, "untracked")
    assert second != first and _studies(tune_params["storage"]) == sorted([first, second])
    assert f"differ from those of study {first}: starting a new study {second}" in capsys.readouterr().out
    study = optuna.load_study(study_name=second, storage=tune_params["storage"])
    assert len(study.trials) == 1 and set(study.trials[0].params) == {"lr"}  # searched the new space
    assert study.user_attrs["identity"]["max_length"] == 32
