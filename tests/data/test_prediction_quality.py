"""Great-expectations checks on predictions: real GX validations over small frames."""

import json

import numpy as np
import pandas as pd
import pytest

from pie_mlops.data.prediction_quality import validate_predictions

IDS = [f"ex-{i}" for i in range(6)]


@pytest.fixture(autouse=True)
def _gx_project_here(tmp_path, monkeypatch):
    """The GX project (`gx/`) goes where a command would put it: its working directory."""
    monkeypatch.chdir(tmp_path)


def _frame(groups=("dense", "magnitude-os@0.50"), seeds=(0, 1, 2), n_classes=2) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    rows = [{"group": g, "seed": s, "example_id": e, "logits": rng.normal(size=n_classes).astype(np.float32).tolist()}
            for g in groups for s in seeds for e in IDS]
    return pd.DataFrame(rows)


def _failed(result) -> dict:
    return {c["name"]: c["sample_ids"] for c in result["checks"] if not c["success"]}


def test_good_predictions_pass_and_write_the_gx_result(tmp_path):
    md5s = {(g, s): "abc" for g in ("dense", "magnitude-os@0.50") for s in (0, 1, 2)}
    result = validate_predictions(_frame(), IDS, 2, 3, tmp_path, md5s=md5s, current_md5="abc")
    assert result["success"] and result["n_checks"] == 6 and _failed(result) == {}
    assert json.loads((tmp_path / "result.json").read_text())["success"]
    assert (tmp_path / "data_docs" / "index.html").is_file()


def _foreign(f):  # one example id of dense/s1 replaced by one not in the split
    f = f.copy()
    f.loc[f[(f.group == "dense") & (f.seed == 1)].index[0], "example_id"] = "ex-99"
    return f


@pytest.mark.parametrize("break_it, check, culprit", [
    (lambda f: f.drop(f[(f.group == "dense") & (f.seed == 1)].index[:1]), {"covers_split", "covers_split_ids"},
     "dense/s1"),
    (lambda f: pd.concat([f, f[(f.group == "dense") & (f.seed == 1)].iloc[:1]]), {"covers_split"}, "dense/s1"),
    (_foreign, {"covers_split_ids"}, "dense/s1"),
    (lambda f: f.assign(logits=[[np.nan, 1.0] if (g, s, e) == ("dense", 2, "ex-3") else l
                                for g, s, e, l in zip(f.group, f.seed, f.example_id, f.logits)]),
     "logits_finite", "dense/s2"),
    (lambda f: f.assign(logits=[l + [0.0] if s == 0 and g != "dense" else l
                                for g, s, l in zip(f.group, f.seed, f.logits)]),
     "logits_per_class", "magnitude-os@0.50/s0"),
    (lambda f: f[~((f.group == "magnitude-os@0.50") & (f.seed == 2))], "enough_seeds", "magnitude-os@0.50"),
])
def test_each_broken_input_fails_its_check_and_names_the_model(tmp_path, break_it, check, culprit):
    result = validate_predictions(break_it(_frame()).reset_index(drop=True), IDS, 2, 3, tmp_path)
    failed = _failed(result)
    checks = check if isinstance(check, set) else {check}
    assert not result["success"] and set(failed) == checks
    assert all(failed[c] == [culprit] for c in checks)


def test_a_run_from_an_older_data_version_fails(tmp_path):
    md5s = {(g, s): "abc" for g in ("dense", "magnitude-os@0.50") for s in (0, 1, 2)}
    md5s[("dense", 0)] = "old"
    result = validate_predictions(_frame(), IDS, 2, 3, tmp_path, md5s=md5s, current_md5="abc")
    assert _failed(result) == {"current_data_version": ["dense/s0"]}


def _labelled(dense_logits) -> tuple[pd.DataFrame, list[int]]:
    """Labels 0,0,0,0,1,1 (majority share 4/6); dense seeds with the given per-example logits."""
    labels = [0, 0, 0, 0, 1, 1]
    rows = [{"group": "dense", "seed": s, "example_id": e, "label": y, "logits": lg}
            for s, logits in enumerate(dense_logits) for e, y, lg in zip(IDS, labels, logits)]
    return pd.DataFrame(rows), labels


def test_a_constant_dense_model_fails_the_baseline_gate_and_is_named(tmp_path):
    from pie_mlops.compare.baseline import frame_scores, trivial_baseline

    constant = [[1.0, 0.0]] * 6                                    # always class 0: the majority share
    learned = [[1.0, 0.0]] * 4 + [[0.0, 1.0]] * 2                  # all right
    frame, labels = _labelled([learned, constant, learned])
    spec = {"name": "the majority class (accuracy)", "value": trivial_baseline(labels, "single_label"),
            "min_gain": 0.02, "scores": frame_scores(frame, "single_label")}
    assert spec["value"] == pytest.approx(4 / 6) and spec["scores"]["dense/s1"] == pytest.approx(4 / 6)
    result = validate_predictions(frame, IDS, 2, 3, tmp_path, baseline=spec)
    assert not result["success"] and _failed(result) == {"dense_beats_baseline": ["dense/s1"]}
    assert result["baseline"]["value"] == pytest.approx(4 / 6)
    assert result["baseline"]["scores"] == {"dense/s0": 1.0, "dense/s1": pytest.approx(4 / 6), "dense/s2": 1.0}

    good = validate_predictions(_labelled([learned] * 3)[0], IDS, 2, 3, tmp_path,
                                baseline=dict(spec, scores={k: 1.0 for k in spec["scores"]}))
    assert good["success"] and good["n_checks"] == 6


def test_multi_label_baseline_is_predicting_nothing_and_an_unscorable_model_fails():
    from pie_mlops.compare.baseline import frame_scores, micro_f1, trivial_baseline

    y = np.array([[1, 0], [0, 1]])
    assert trivial_baseline(y, "multi_label") == 0.0 and micro_f1(y, np.zeros_like(y)) == 0.0
    frame = pd.DataFrame({"group": "dense", "seed": 0, "example_id": ["a", "b"], "labels": list(y),
                          "logits": [[5.0, -5.0], [-5.0, 5.0]]})
    assert frame_scores(frame, "multi_label") == {"dense/s0": 1.0}
    frame["logits"] = [[np.nan, 1.0], [1.0, 1.0]]
    assert np.isnan(frame_scores(frame, "multi_label")["dense/s0"])


def test_the_checkpoint_and_its_suites_are_saved_in_the_gx_project(tmp_path):
    """A file-backed GX project: the named Checkpoint reruns from GX alone, over the staged frames."""
    import great_expectations as gx

    validate_predictions(_frame(), IDS, 2, 3, tmp_path / "rep", name="toy.bert.predictions")
    context = gx.get_context(mode="file", project_root_dir=str(tmp_path))
    checkpoint = context.checkpoints.get("toy.bert.predictions")
    assert {v.suite.name for v in checkpoint.validation_definitions} == {"toy.bert.predictions.models",
                                                                         "toy.bert.predictions.groups"}
    suite = context.suites.get("toy.bert.predictions.models")
    assert {e.column for e in suite.expectations} >= {"n_rows", "n_split_ids", "n_nonfinite"}
    assert checkpoint.run().success
