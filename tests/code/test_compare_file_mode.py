"""File-mode `pie-mlops compare` (docs/design.md §3) through the CLI on real Parquet files:
the outputs, and every exit-2 error, each leaving OUT without outputs."""

import json

import numpy as np
import pandas as pd
import pytest

from pie_mlops.cli import main
from pie_mlops.compare.predictions import predictions_frame, write_predictions

N = 12


def _data(multi=False):
    ids = [f"ex{i:02d}" for i in range(N)]
    if multi:
        return pd.DataFrame({"example_id": ids, "labels": [np.array([i % 2, 1 - i % 2, 1], np.int8) for i in range(N)]})
    return pd.DataFrame({"example_id": ids, "label": np.arange(N) % 2})


def _write(root, group, seed, df=None, multi=False, logits=None, name=None):
    df = _data(multi) if df is None else df
    rng = np.random.default_rng([seed, len(group)])
    if logits is None:
        logits = rng.normal(0, 1, (len(df), 3 if multi else 2)).astype(np.float32)
    frame = predictions_frame(df, logits, split="test", group=group, seed=seed,
                              task="multi_label" if multi else "single_label")
    path = root / (name or f"{group}_s{seed}.parquet")
    write_predictions(frame, path)
    return path


@pytest.fixture
def good(tmp_path):
    preds = tmp_path / "preds"
    for seed in range(3):
        _write(preds, "dense", seed)
        _write(preds, "magnitude-os@0.50", seed)
    return preds


def _run(preds, out, *extra):
    with pytest.raises(SystemExit) as exc:
        main(["compare", "--predictions", str(preds), "--out", str(out), *extra])
    return exc.value.code


def test_file_mode_writes_pies_and_summary(good, tmp_path, capsys):
    out = tmp_path / "out"
    main(["compare", "--predictions", str(good), "--out", str(out)])
    pies = pd.read_parquet(out / "pies.parquet")
    assert list(pies.columns) == ["group", "split", "example_id", "is_pie", "dense_label", "pruned_label",
                                  "dense_votes", "pruned_votes"]
    assert len(pies) == N and pies["is_pie"].dtype == bool and set(pies["group"]) == {"magnitude-os@0.50"}
    summary = json.loads((out / "summary.json").read_text())
    s = summary["magnitude-os@0.50"]
    keys = {"n_examples", "n_pies", "pie_share", "n_ties_dense", "n_ties_pruned", "pie_share_ci", "collapsed",
            "majority_pred_share", "above_floor"}
    for subset in ("all", "pie", "nonpie"):
        for side in ("dense", "pruned"):
            keys |= {f"{side}_acc_{subset}", f"{side}_acc_{subset}_std", f"{side}_modal_acc_{subset}",
                     f"{side}_acc_{subset}_ci", f"{side}_modal_acc_{subset}_ci"}
    keys |= {"floor_test", "pie_share_half", "pie_share_half_ci", "floor_half", "floor_half_ci", "half_k",
             "n_pies_tie_decided", "n_pies_pruned_right", "n_pies_dense_right", "n_pies_both_wrong",
             "pie_pruned_right_share", "pie_dense_right_share", "pie_both_wrong_share", "tie_rule"}
    assert set(summary["noise_floor"]) >= {"share", "ci", "seeds_per_side"}
    assert keys <= set(s) and s["n_examples"] == N and s["n_pies"] == int(pies["is_pie"].sum())
    assert set(s["floor_test"]) >= {"p_value", "p_holm", "method", "seeds_per_side", "n_perm"}
    assert s["floor_test"]["method"] == "paired_swap" and s["floor_test"]["n_perm"] >= 1000
    assert s["above_floor"] == (s["floor_test"]["p_holm"] < 0.05) and s["tie_rule"] == "probability"
    assert "magnitude-os@0.50" in capsys.readouterr().out


def test_file_mode_tie_rule_option(good, tmp_path):
    main(["compare", "--predictions", str(good), "--out", str(tmp_path / "out"), "--tie-rule", "paper"])
    s = json.loads((tmp_path / "out" / "summary.json").read_text())["magnitude-os@0.50"]
    assert s["tie_rule"] == "paper" and s["n_pies_tie_decided"] <= s["n_pies"]


def _bad_ids(preds):
    df = _data()
    df.loc[3, "example_id"] = "other"
    _write(preds, "magnitude-os@0.50", 9, df=df)


def _duplicate(preds):
    df = pd.concat([_data(), _data().iloc[[0]]], ignore_index=True)
    _write(preds, "magnitude-os@0.50", 9, df=df)


def _nan(preds):
    z = np.zeros((N, 2), np.float32)
    z[5, 1] = np.nan
    _write(preds, "magnitude-os@0.50", 9, logits=z)


def _inf(preds):
    z = np.zeros((N, 2), np.float32)
    z[2, 0] = np.inf
    _write(preds, "dense", 9, logits=z)


def _mixed(preds):
    _write(preds, "magnitude-os@0.50", 9, multi=True)


@pytest.mark.parametrize("break_it, message", [
    (_bad_ids, "example ids differ"),
    (_duplicate, "duplicate (group, seed, example_id)"),
    (_nan, "NaN or infinite logits"),
    (_inf, "NaN or infinite logits"),
    (_mixed, "mixed single- and multi-label"),
])
def test_bad_predictions_exit_2_with_one_line_and_write_nothing(good, tmp_path, capsys, break_it, message):
    break_it(good)
    out = tmp_path / "out"
    assert _run(good, out) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0] and err[0].startswith("error: ")
    assert not (out / "pies.parquet").exists() and not (out / "summary.json").exists()


def test_too_few_seeds_and_no_dense_group_exit_2(good, tmp_path, capsys):
    out = tmp_path / "out"
    assert _run(good, out, "--min-seeds", "4") == 2
    err = capsys.readouterr().err.strip()
    assert "'magnitude-os@0.50' has 3 model(s), fewer than --min-seeds 4" in err or "'dense' has 3" in err
    for f in good.glob("dense_*"):
        f.unlink()
    assert _run(good, out) == 2
    assert "no 'dense' group" in capsys.readouterr().err
    assert not out.exists() or not any(out.iterdir())


def test_a_file_that_is_not_predictions_is_named(good, tmp_path, capsys):
    pd.DataFrame({"example_id": ["a"], "text": ["x"]}).to_parquet(good / "notes.parquet")
    assert _run(good, tmp_path / "out") == 2
    err = capsys.readouterr().err
    assert "notes.parquet" in err and "missing column(s)" in err


def _raw(preds, group="magnitude-os@0.50", labels=None, ids=None, width=2):
    """Every model's file (3 dense, 3 of `group`) written with pandas, past predictions_frame's
    own checks, all with the same (broken) labels and ids, so only the broken value is wrong."""
    ids = [f"ex{i:02d}" for i in range(N)] if ids is None else ids
    labels = list(np.arange(N) % 2) if labels is None else labels
    for f in preds.glob("*.parquet"):
        f.unlink()
    for g in ("dense", group):
        for seed in range(3):
            pd.DataFrame({"example_id": ids, "split": "test", "group": g, "seed": seed, "label": labels,
                          "logits": [np.zeros(width, np.float32)] * N}).to_parquet(preds / f"{len(g)}_{seed}.parquet")


def _labels(*changes):
    labels = list(np.arange(N) % 2)
    for row, value in changes:
        labels[row] = value
    return labels


@pytest.mark.parametrize("break_it, message", [
    (lambda p: _raw(p, labels=_labels((4, 2))), "'label' holds 2 at example_id ex04: not a class of the 2 logits"),
    (lambda p: _raw(p, labels=_labels((4, -1))), "'label' holds -1 at example_id ex04"),
    (lambda p: _raw(p, labels=_labels((6, None))), "row 6: column 'label' holds null (example_id ex06)"),
    (lambda p: _raw(p, labels=_labels((3, 0.5))), "row 3: column 'label' holds 0.5"),
    (lambda p: _raw(p, ids=[None] + [f"ex{i:02d}" for i in range(1, N)]), "row 0: column 'example_id' is null"),
    (lambda p: _raw(p, width=0), "empty logits"),
    (lambda p: _raw(p, group="../../escape"), "group '../../escape' is not"),
    (lambda p: _raw(p, group="magnitude-os@0.50/x"), "group 'magnitude-os@0.50/x' is not"),
])
def test_impossible_labels_ids_logits_and_group_names_exit_2(good, tmp_path, capsys, break_it, message):
    break_it(good)
    out = tmp_path / "out"
    assert _run(good, out) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0] and err[0].startswith("error: "), err
    assert not out.exists() or not any(out.iterdir())


def test_a_dense_only_dir_and_a_file_as_out_exit_2(good, tmp_path, capsys):
    for f in good.glob("magnitude-*"):
        f.unlink()
    assert _run(good, tmp_path / "out") == 2
    assert "only the dense group" in capsys.readouterr().err
    _write(good, "magnitude-os@0.50", 0)
    for seed in (1, 2):
        _write(good, "magnitude-os@0.50", seed)
    out = tmp_path / "out.txt"
    out.write_text("mine")
    assert _run(good, out) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "exists and is not a directory" in err[0] and out.read_text() == "mine"
