"""A study whose models learned nothing stops, and tuning fixes it (issue: baseline gates).

A small review set is imported from CSV, 67/33 like the user's: each review holds one
sentiment word among fillers. Untuned (lr 1e-3, one epoch) the BiLSTM predicts the majority
class for every example. Then, through the CLI and a real SQLite store:
1. train warns, and compare stops with exit 1 and one line naming the dense models and the
   baseline; champion.json says why, the report page says it, and a stale `champion` alias
   from an earlier run is removed;
2. with the BiLSTM tuned (a real Optuna study), the dense models beat the baseline and the
   comparison runs.
"""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from pie_mlops.cli import main

NAME = "pie-reviews-bilstm"


def _reviews(path: Path, n: int = 450) -> None:
    rng = np.random.default_rng(0)
    pos, neg = ["great", "superb", "lovely", "moving", "brilliant"], ["dull", "awful", "boring", "weak", "bad"]
    filler = ["the", "film", "was", "a", "story", "really", "and", "plot", "acting", "quite", "this", "movie"]
    rows = []
    for i in range(n):
        label = int(i % 3 == 0)  # a third positive: the majority class is 67% of every split
        words = list(rng.choice(filler, rng.integers(4, 10))) + [str(rng.choice(pos if label else neg))]
        rng.shuffle(words)
        rows.append((" ".join(words), "positive" if label else "negative"))
    pd.DataFrame(rows, columns=["review", "score"]).to_csv(path, index=False)


def _params(root: Path) -> dict:
    return {
        "study": {"dataset": "reviews", "arch": ["bilstm"], "data_dir": "data"},
        "tune": {"max_length": 64, "n_trials": 1, "seed": 0, "storage": f"sqlite:///{root}/optuna.db",
                 "max_train_examples": None, "max_validation_examples": None,
                 "out": "params/best_{dataset}_{arch}.yaml",
                 "space": {"bilstm": {"lr": {"low": 8e-3, "high": 1.2e-2, "log": True}, "epochs": {"choices": [6]}}}},
        "train": {"max_length": 64, "seeds": [0, 1], "epochs": 1, "lr": None, "snapshot_epochs": [], "predict_train": False,
                  "best_params": "params/best_{dataset}_{arch}.yaml"},
        "prune": {"max_length": 64, "criteria": ["magnitude"], "schedules": ["os"], "methods": None,
                  "sparsities": [0.5], "seeds": [0, 1],
                  "predict_train": False, "predict_test": False, "best_params": "params/best_{dataset}_{arch}.yaml"},
        "compare": {"split": "validation", "min_seeds": 2, "n_boot": 20, "export_pies": False,
                    "min_gain_over_baseline": 0.02},
    }


def _cli(*args: str) -> tuple[int, str]:
    """(exit code, stderr) of `pie-mlops --params params.yaml <args>`."""
    err = io.StringIO()
    code = 0
    with contextlib.redirect_stderr(err):
        try:
            main(["--params", "params.yaml", *args])
        except SystemExit as exc:
            code = exc.code
    return code, err.getvalue()


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    from mlflow import MlflowClient

    root = tmp_path_factory.mktemp("gate")
    out = root / "reports" / "compare" / "reviews" / "bilstm"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{root}/mlflow.db")
        for var in ("MLFLOW_REGISTRY_URI", "MLFLOW_RUN_ID", "MLFLOW_EXPERIMENT_NAME"):
            mp.delenv(var, raising=False)
        mp.chdir(root)
        _reviews(root / "reviews.csv")
        (root / "params.yaml").write_text(yaml.safe_dump(_params(root)))
        main(["import", "reviews.csv", "--name", "reviews", "--text-col", "review", "--label-col", "score",
              "--data-dir", "data"])
        client = MlflowClient()
        got = {"root": root, "out": out}
        got["train_untuned"] = _cli("train")
        # An earlier run's champion, which must not survive a comparison that finds none.
        got["stale_version"] = client.get_model_version_by_alias(NAME, "dense-s0").version
        client.set_registered_model_alias(NAME, "champion", got["stale_version"])
        got["compare_untuned"] = _cli("compare")
        got["champion_untuned"] = json.loads((out / "champion.json").read_text())
        got["report_untuned"] = (out / "report" / "index.html").read_text()
        got["aliases_untuned"] = set(client.get_registered_model(NAME).aliases)

        for stage in ("tune", "train", "prune"):
            got[stage] = _cli(stage)
        got["compare_tuned"] = _cli("compare")
        got["checks_tuned"] = json.loads((root / "reports" / "prediction_checks" / "reviews" / "bilstm"
                                          / "result.json").read_text())
        got["summary_tuned"] = json.loads((out / "summary.json").read_text())
        yield got


def test_untuned_bilstm_collapses_train_warns_and_compare_stops_with_one_line(study):
    code, err = study["train_untuned"]
    assert code == 0 and err.count("ends at the trivial baseline on validation") == 2
    code, err = study["compare_untuned"]
    lines = [line for line in err.splitlines() if line.startswith("error")]
    assert code == 1 and len(lines) == 1, err
    line = lines[0]
    assert "bilstm: the dense models did not beat the majority class (accuracy) 0.6" in line
    assert "dense/s0 0.6" in line and "dense/s1 0.6" in line and "by 0.02 on validation" in line


def test_no_champion_and_the_report_says_why(study):
    champ = study["champion_untuned"]
    assert champ["champion"] is None and "did not beat the majority class" in champ["reason"]
    assert 0.6 < champ["baseline"] < 0.7
    assert "champion" not in study["aliases_untuned"]  # the stale alias is gone
    assert "stopped. The dense models did not beat the trivial baseline" in study["report_untuned"]
    assert "Largest PIE accuracy gap" not in study["report_untuned"]


def test_tuned_bilstm_beats_the_baseline_and_the_comparison_runs(study):
    for stage in ("tune", "train", "prune"):
        assert study[stage][0] == 0, study[stage][1][-2000:]
    best = yaml.safe_load((study["root"] / "params" / "best_reviews_bilstm.yaml").read_text())
    assert best["epochs"] == 6 and 8e-3 <= best["lr"] <= 1.2e-2
    assert "ends at the trivial baseline" not in study["train"][1]
    code, err = study["compare_tuned"]
    assert code == 0, err[-2000:]
    base = study["checks_tuned"]["baseline"]
    assert study["checks_tuned"]["success"] and set(base["scores"]) == {"dense/s0", "dense/s1"}
    assert all(s >= base["value"] + 0.02 for s in base["scores"].values())
    assert set(study["summary_tuned"]) - {"noise_floor"} == {"magnitude-os@0.50"}
    champ = json.loads((study["out"] / "champion.json").read_text())
    assert "reason" in champ and champ.get("baseline") == pytest.approx(base["value"])
