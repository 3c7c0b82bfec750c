"""Great-expectations checks on predictions: real GX validations over small frames."""

import json

import numpy as np
import pandas as pd
import pytest

from pie_mlops.data.prediction_quality import validate_predictions

IDS = [f"ex-{i}" for i in range(6)]


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
    assert result["success"] and result["n_checks"] == 5 and _failed(result) == {}
    assert json.loads((tmp_path / "result.json").read_text())["success"]
    assert (tmp_path / "data_docs" / "index.html").is_file()


@pytest.mark.parametrize("break_it, check, culprit", [
    (lambda f: f.drop(f[(f.group == "dense") & (f.seed == 1)].index[:1]), "covers_split", "dense/s1"),
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
    assert not result["success"] and set(failed) == {check}
    assert failed[check] == [culprit]


def test_a_run_from_an_older_data_version_fails(tmp_path):
    md5s = {(g, s): "abc" for g in ("dense", "magnitude-os@0.50") for s in (0, 1, 2)}
    md5s[("dense", 0)] = "old"
    result = validate_predictions(_frame(), IDS, 2, 3, tmp_path, md5s=md5s, current_md5="abc")
    assert _failed(result) == {"current_data_version": ["dense/s0"]}
