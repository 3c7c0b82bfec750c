"""config/plans.py: one resolved, typed plan per stage (docs/design.md §3, "Plans")."""

from __future__ import annotations

import pytest

from pie_mlops.config.plans import for_arch, per_arch, resolve, shrink
from pie_mlops.config.schema import Prune, Train
from pie_mlops.util.errors import PieError
from plans import plan


def test_command_line_values_are_parsed_and_checked_by_the_schema():
    t = resolve("train", overrides={"seeds": "0,1,1,2", "arch": "bert,bilstm", "epochs": None}, arch="bilstm")
    assert isinstance(t, Train) and t.arch == "bilstm" and t.seeds == [0, 1, 2] and t.epochs == 2
    with pytest.raises(PieError, match=r"command line: train\.seeds\.0 \(--seeds\): Input should be a valid integer"):
        resolve("train", overrides={"seeds": "a,b"})
    assert [p.arch for p in per_arch("prune", overrides={"arch": "bilstm"})] == ["bilstm"]


def test_tuned_values_then_explicit_ones(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "params").mkdir()
    (tmp_path / "params" / "best_rotten_tomatoes_bilstm.yaml").write_text(
        "lr: 0.005\nepochs: 6\nbatch_size: 16\nwarmup_ratio: 0.0\n_study: {name: x}\n")
    t = resolve("train", arch="bilstm")
    assert (t.lr, t.epochs, t.batch_size, t.warmup_ratio) == (0.005, 6, 16, 0.0)  # the tuned ones win
    assert resolve("train", overrides={"epochs": 3}, arch="bilstm").epochs == 3  # --epochs wins over them
    p = resolve("prune", arch="bilstm")
    assert (p.lr, p.batch_size) == (0.005, 16)  # prune: lr, batch size, warm-up; never epochs
    assert for_arch(shrink(Prune(), lr=0.1), "bilstm").lr == 0.1  # a prune.lr that is set wins
    assert for_arch(Train(), "bilstm", tuned=False).epochs == 2  # the grid's plans: tuned when the job runs


def test_a_per_architecture_overlay_keeps_the_other_architectures():
    base = plan("train")
    narrowed = shrink(base, seeds={"bilstm": [0]})
    assert narrowed.seeds == {"bert": base.seeds["bert"], "bilstm": [0]}
    assert plan("train", "bert").seeds == base.seeds["bert"] and plan("train", "bert").arch == "bert"


def test_stages_take_plans_for_one_architecture():
    from pie_mlops.stages.prune import prune
    from pie_mlops.stages.train import train

    with pytest.raises(TypeError, match="plans resolved for one architecture"):
        train(resolve("train"))  # arch [bert, bilstm]: resolve(..., arch=...) first
    with pytest.raises(TypeError, match="plans resolved for one architecture"):
        prune({"arch": "bert"})
