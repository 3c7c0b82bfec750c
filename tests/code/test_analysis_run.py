"""`analyse` on synthetic stacks: every analysis.json schema key, JSON-clean, aligned tables."""

import json

import numpy as np
import pandas as pd
import pytest

from pie_mlops.analysis.complexity import MEASURES
from pie_mlops.analysis.run import analyse, clean
from pie_mlops.util.errors import PieError
from pie_mlops.compare.pies import GroupStack, Stacked, compare

GROUPS = ("magnitude-os@0.50", "magnitude-os@0.90")
WORDS = np.array(["good", "bad", "film", "plot", "acting", "remarkably", "tedious", "the", "a", "is"])


def _stacked(split: str, n: int, seed: int, task: str = "single_label", groups=("dense",) + GROUPS) -> Stacked:
    rng = np.random.default_rng(seed)
    c = 3
    ids = np.array([f"ex{i:03d}" for i in range(n)])
    labels = rng.integers(0, 2, (n, c)).astype(np.int8) if task == "multi_label" else rng.integers(0, c, n)
    stacks = {}
    for j, g in enumerate(groups):
        # Shared signal plus per-model noise that grows with sparsity: some flips, some ties.
        base = 3.0 * (np.eye(c)[labels] if task == "single_label" else 2 * labels - 1.0)
        logits = base[None] + rng.normal(0, 1.0 + 1.5 * j, (4, n, c))
        thr = np.full(4, 0.5, np.float32) if task == "multi_label" else None
        stacks[g] = GroupStack(np.arange(4), logits.astype(np.float32), thr)
    return Stacked(split, task, ids, labels, stacks)


def _texts(test: Stacked, task: str = "single_label") -> pd.DataFrame:
    rng = np.random.default_rng(1)
    text = [" ".join(rng.choice(WORDS, rng.integers(3, 15))) + "." for _ in test.example_ids]
    frame = pd.DataFrame({"example_id": test.example_ids[::-1], "text": text[::-1], "text_pair": None})
    key = "labels" if task == "multi_label" else "label"
    frame[key] = list(test.labels[::-1])  # reversed: analyse must align by example_id
    return frame


def _check_schema(a: dict, groups: list[str]) -> None:
    json.dumps(a, allow_nan=False)
    assert set(a) == {"meta", "influence", "classes", "complexity", "stability", "noise_floor", "overlap",
                      "heldout", "vs_dense_long"}
    assert {"dataset", "arch", "split", "task", "label_names", "n_examples", "n_dense_models",
            "groups"} <= set(a["meta"])
    assert a["meta"]["groups"] == groups
    for g in groups:
        score = "f1" if a["meta"]["task"] == "multi_label" else "acc"  # per-label F1 for multi-label
        assert {"chi2", "p_value", "dof", "pie_counts", "data_counts", f"dense_{score}_per_class",
                f"pruned_{score}_per_class"} <= set(a["classes"][g])
        assert set(a["complexity"][g]) >= set(MEASURES)
        for row in a["complexity"][g].values():
            assert {"pie_mean", "nonpie_mean", "ratio", "u", "p_value", "p_holm", "cliffs_delta"} <= set(row)
        assert set(a["stability"][g]) == {"k", "jaccard_mean", "jaccard_low", "jaccard_high"}
        assert {"pie_share", "pie_share_low", "pie_share_high", "pie_share_at_k",
                "above_floor"} <= set(a["noise_floor"]["groups"][g])
    assert {"k", "floor_share", "floor_low", "floor_high", "groups"} <= set(a["noise_floor"])
    assert a["overlap"]["groups"] == groups and len(a["overlap"]["jaccard"]) == len(groups)


def test_analyse_returns_every_schema_key_and_clean_json():
    test = _stacked("test", 80, 0)
    train, snap = _stacked("train", 200, 2), _stacked("train@epoch1", 200, 3, groups=("dense",))
    snap.labels = train.labels  # one training set, two moments of training
    texts = _texts(test)
    a, cx, ex = analyse(test, texts, train=train, snapshot=snap, label_names=["neg", "neu", "pos"],
                        meta={"dataset": "toy", "arch": "bert", "split": "test"}, n_boot=20, progress=False)
    _check_schema(a, list(GROUPS))
    core = compare(test, min_seeds=1)
    for g in GROUPS:
        assert a["noise_floor"]["groups"][g]["pie_share"] == pytest.approx(core.summary[g]["pie_share"])
        assert sum(a["classes"][g]["pie_counts"]) == core.summary[g]["n_pies"]
        assert a["classes"][g]["data_counts"] == np.bincount(test.labels, minlength=3).tolist()
        inf = a["influence"][g]
        assert inf["snapshot"] == "train@epoch1" and len(inf["bins"]) == 20
        assert [b["bin"] for b in inf["bins"]] == list(range(1, 21)) and sum(b["n"] for b in inf["bins"]) == 200
        assert {"el2n_low", "el2n_high", "dense_loss", "pruned_loss", "loss_ratio", "paired_loss_ratio",
                "pie_share"} <= set(inf["bins"][0])
        assert inf["n_seed_pairs"] == 4 and inf["bins"][0]["paired_loss_ratio"] > 0
        assert inf["top5"]["n"] == 10 and inf["top10"]["n"] == 20
        assert inf["top5"]["enrichment"] == pytest.approx(inf["top5"]["pie_share"] / inf["base_rate"])
    assert a["noise_floor"]["k"] == 2 and a["stability"][GROUPS[0]]["k"] == [2]  # 4 seeds: disjoint 2 + 2
    # complexity.parquet: one row per test example, in the stack's order, texts aligned by id.
    assert cx["example_id"].tolist() == test.example_ids.tolist() and list(cx.columns[1:]) == list(MEASURES)
    first = texts.set_index("example_id").loc[test.example_ids[0], "text"]
    assert cx["n_chars"].iloc[0] == len(first)
    # pie_examples.parquet: PIEs only, label names, highest pruned vote first, at most 20 per group.
    assert list(ex.columns) == ["group", "example_id", "text", "text_pair", "gold", "dense_label", "pruned_label",
                                "dense_votes", "pruned_votes"]
    assert len(ex) > 0 and set(ex["gold"]) <= {"neg", "neu", "pos"}
    flagged = set(core.pies.loc[core.pies["is_pie"], ["group", "example_id"]].itertuples(index=False, name=None))
    assert set(ex[["group", "example_id"]].itertuples(index=False, name=None)) <= flagged
    for _, g in ex.groupby("group"):
        assert len(g) <= 20 and g["pruned_votes"].is_monotonic_decreasing


def test_analyse_multi_label_without_train_has_no_influence():
    test = _stacked("test", 40, 5, task="multi_label")
    a, _, ex = analyse(test, _texts(test, "multi_label"), label_names=["a", "b", "c"],
                       meta={"dataset": "toy", "arch": "bert", "split": "test"}, n_boot=10, progress=False)
    _check_schema(a, list(GROUPS))
    assert a["influence"] == {} and a["meta"]["task"] == "multi_label"
    g = a["classes"][GROUPS[1]]
    assert g["chi2"] is None and len(g["pie_counts"]) == 3 and g["data_counts"] == test.labels.sum(0).tolist()
    assert all(set(s.split(", ")) <= {"a", "b", "c", "(none)"} for s in ex["gold"])


def test_analyse_rejects_predictions_of_examples_missing_from_the_data():
    test = _stacked("test", 10, 0)
    with pytest.raises(PieError, match="not in the dataset split"):
        analyse(test, _texts(test).iloc[1:], label_names=["a", "b", "c"], meta={}, n_boot=5, progress=False)


def test_clean_turns_nan_and_numpy_into_json():
    got = clean({"a": np.float32(np.nan), "b": [np.int64(2), np.inf], "c": np.bool_(True), 3: (np.float64(0.5),)})
    assert got == {"a": None, "b": [2, None], "c": True, "3": [0.5]}
