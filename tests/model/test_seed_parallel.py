"""Seed-parallel training (train.seed_parallel: the stacked BiLSTM, BERT through vmap): the same
models as one at a time, and crash-safe in the train stage (a real process, SIGKILLed mid-group,
then rerun)."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from pie_mlops.util.errors import PieError
from pie_mlops.models import build_model
from pie_mlops.jobs.seed_training import predict_logits_stacked, train_seeds
from pie_mlops.jobs.training import TrainConfig, predict_logits, train

SEEDS = [0, 1, 2]
# Stated tolerance: with dropout off both ways compute the same function per step; what differs
# is float rounding (bmm vs PyTorch's fused LSTM kernel), which Adam carries along. After one
# epoch the logits stay within 1e-2 and at least 98% of the predicted labels are identical.
LOGIT_ATOL, MIN_AGREEMENT = 1e-2, 0.98


def _models(seeds, dropout=0.0):
    return [build_model("bilstm", 2, seed=s, dropout=dropout, max_length=64) for s in seeds]


def test_same_predictions_as_one_at_a_time(sentiment):
    train_df, val_df = sentiment["train"], sentiment["validation"]
    cfg = lambda seed: TrainConfig(epochs=1, batch_size=32, seed=seed, progress=False, snapshot_epochs=(1,))
    alone = []
    for model, seed in zip(_models(SEEDS), SEEDS):
        result = train(model, train_df, val_df, cfg(seed))
        alone.append((predict_logits(model, val_df), result))
    models = _models(SEEDS)
    init = [m.head[0].weight.detach().clone() for m in models]
    results, stack = train_seeds(models, SEEDS, train_df, val_df, cfg(0))
    together = predict_logits_stacked(stack, val_df, models[0])
    for i, (logits, result) in enumerate(alone):
        assert not torch.equal(init[i], models[i].head[0].weight)  # trained, and written back
        assert np.abs(together[i] - logits).max() < LOGIT_ATOL
        assert (together[i].argmax(1) == logits.argmax(1)).mean() >= MIN_AGREEMENT
        # the written-back model alone predicts what the stack predicted for its seed
        np.testing.assert_allclose(predict_logits(models[i], val_df), together[i], atol=1e-5)
        assert results[i].history[0]["train_loss"] == pytest.approx(result.history[0]["train_loss"], abs=1e-3)
        assert results[i].history[0]["val_accuracy"] == pytest.approx(result.history[0]["val_accuracy"], abs=0.02)
        assert np.abs(results[i].snapshots["train@epoch1"] - result.snapshots["train@epoch1"]).max() < LOGIT_ATOL
    assert not np.allclose(together[0], together[1])  # the seeds are different models


def test_each_seed_keeps_its_own_initialisation_and_dropout_stream(sentiment):
    from pie_mlops.models.bilstm_stack import StackedBiLSTM

    models = _models([3, 4], dropout=0.5)
    stack = StackedBiLSTM(models, [3, 4])
    for i, m in enumerate(models):
        assert torch.equal(stack.p("lstm.weight_hh_l0")[i], m.lstm.weight_hh_l0)
    x = torch.ones(2, 4, 8)
    a, b = stack._drop(x)
    assert not torch.equal(a, b)  # two generators, two masks
    again = StackedBiLSTM(_models([3, 4], dropout=0.5), [3, 4])._drop(x)
    assert torch.equal(again[0], a)  # seeded by the seed: reproducible


def test_which_architectures_and_sections_stack():
    from pie_mlops.config.plans import seed_parallel as wanted
    from pie_mlops.stages.train import seed_parallel
    from plans import plan

    assert seed_parallel(plan("train", "bilstm", seed_parallel=True)) is True
    assert seed_parallel(plan("train", "bert", seed_parallel=True)) is True  # vmap, for a GPU
    with pytest.raises(PieError, match="bilstm only"):
        wanted(plan("prune", "bert", seed_parallel=True))
    with pytest.raises(PieError, match=r"train\.seed_parallel: Input should be a valid boolean"):
        plan("train", "bilstm", seed_parallel="maybe")


# -- the train stage, killed mid-group --------------------------------------------------------
ALL = [0, 1, 2]
LIVE = "current_stage != 'Deleted_Internal'"  # MLflow's SQL store keeps deleted versions' rows


def _versions(db: Path) -> list[tuple[str, str]]:
    with sqlite3.connect(db, timeout=0.2) as con:
        return con.execute(f"select name, version from model_versions where {LIVE}").fetchall()


def _store_rows(db: Path):
    with sqlite3.connect(db) as con:
        runs = con.execute("select run_uuid, status from runs").fetchall()
        seeds = con.execute("select v.version, t.value from model_versions v join model_version_tags t "
                            "on v.name = t.name and v.version = t.version where t.key = 'seed' and "
                            f"v.{LIVE}").fetchall()
        aliases = con.execute("select alias, version from registered_model_aliases").fetchall()
    return runs, seeds, aliases


def _kill_while_registering(cmd, cwd, env, log_path, before: int):
    """Run `cmd`, stop and SIGKILL it as soon as it has registered a version beyond `before`."""
    log = log_path.open("w")
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    db = cwd / "mlflow.db"
    deadline = time.time() + 300
    try:
        while time.time() < deadline:
            assert proc.poll() is None, log_path.read_text()[-3000:]
            try:
                if db.exists() and len(_versions(db)) > before:  # the group is computed; seeds are being registered
                    os.killpg(proc.pid, signal.SIGSTOP)
                    break
            except sqlite3.OperationalError:
                pass  # locked or not created yet
            time.sleep(0.02)
        else:
            pytest.fail("no version was ever registered")
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        log.close()


@pytest.mark.parametrize("stage", ["train", "train-bert", "train-processes", "prune", "prune-processes"])
def test_sigkill_mid_group_then_rerun_leaves_one_version_per_seed(tmp_path, stage):
    from plans import params_doc, plan
    from pie_mlops.stages.materialize import materialize

    materialize(plan("materialize", data_dir=str(tmp_path / "data")), ["synthetic_nli"], progress=False)
    arch = "bert" if stage.endswith("-bert") else "bilstm"  # bert: the tiny random one, through vmap
    stage = stage.removesuffix("-bert")
    common = {"dataset": "synthetic_nli", "arch": arch, "seeds": ALL, "max_length": 64, "predict_train": False,
              "max_train_examples": 100, "seed_parallel": True, "model_path": "tiny-random"}
    params = {"train": dict(common, epochs=1, snapshot_epochs=[]),
              "prune": dict(common, criteria=["magnitude"], methods=None, sparsities=[0.5])}  # null: not the per-arch grid
    if stage.endswith("-processes"):  # the seeds in 2 child processes instead of one batch
        stage = stage.split("-")[0]
        params[stage].update(seed_parallel=False, seed_processes=2)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params_doc(**params)), encoding="utf-8")
    db = tmp_path / "mlflow.db"
    env = dict(os.environ, MLFLOW_TRACKING_URI=f"sqlite:///{db}", PYTHONPATH=str(Path(__file__).parents[2]))
    for var in ("MLFLOW_REGISTRY_URI", "MLFLOW_RUN_ID", "MLFLOW_EXPERIMENT_NAME"):
        env.pop(var, None)
    cli = [sys.executable, "-m", "pie_mlops.cli"]
    if stage == "prune":  # the dense seeds first, whole
        subprocess.run([*cli, "train"], cwd=tmp_path, env=env, capture_output=True, check=True, timeout=600)
    before = len(_versions(db)) if db.exists() else 0
    _kill_while_registering([*cli, stage], tmp_path, env, tmp_path / "first.log", before)
    runs, seeds, _ = _store_rows(db)
    assert 1 <= len(seeds) - before < len(ALL), "the kill must land while the group's seeds are being registered"
    finished = sum(status == "FINISHED" for _, status in runs) - before

    again = subprocess.run([*cli, stage], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600,
                           check=False)
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    runs, seeds, aliases = _store_rows(db)
    assert "RUNNING" not in {status for _, status in runs}
    group = "dense" if stage == "train" else "magnitude-os-0_50"
    # exactly one version per (group, seed)
    assert sorted(a for a, _ in aliases if a.startswith(group)) == [f"{group}-s{s}" for s in ALL]
    assert len(seeds) == before + len(ALL)
    # the rerun made exactly the seeds whose runs had not finished, and skipped the others
    verb = "trained" if stage == "train" else "pruned"
    assert f"{verb} {len(ALL) - finished}, skipped {finished} " in again.stdout
    for seed in ALL:
        out = tmp_path / "predictions" / "synthetic_nli" / arch / ("dense" if stage == "train" else
                                                                        "pruned/magnitude-os@0.50") / f"s{seed}"
        want = ["test.parquet", "validation.parquet"] if stage == "train" else ["validation.parquet"]
        assert sorted(p.name for p in out.glob("*.parquet")) == want


def test_seed_parallel_pruning_predicts_what_one_at_a_time_does(tmp_path, monkeypatch):
    """The prune stage both ways on the same dense seeds: the same masks, so the same models,
    and predictions equal to float rounding (bmm against the fused LSTM kernel); the registered
    seed-parallel model, loaded back, predicts what was logged for it."""
    import pandas as pd

    from plans import plan
    from pie_mlops.config.plans import shrink
    from pie_mlops.stages.materialize import materialize
    from pie_mlops.stages.prune import prune
    from pie_mlops.stages.train import train as train_stage
    from pie_mlops.tracking import load_version

    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/mlflow.db")
    for var in ("MLFLOW_REGISTRY_URI", "MLFLOW_RUN_ID", "MLFLOW_EXPERIMENT_NAME"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.chdir(tmp_path)
    materialize(plan("materialize", data_dir="data"), ["synthetic_nli"], progress=False)
    common = dict(dataset="synthetic_nli", arch="bilstm", seeds=SEEDS, max_length=64, max_train_examples=200,
                  predict_train=False)
    train_stage(plan("train", profile="default", **common, epochs=1, snapshot_epochs=[]), progress=False)
    base = plan("prune", profile="default", **common, criteria=["magnitude", "impact"], methods=None, sparsities=[0.5],
                impact_batches=2)
    alone = prune(shrink(base, predictions_dir="alone", seed_processes=1), progress=False)
    key = lambda r: (r["group"], r["seed"])  # noqa: E731
    # stacked (one batch per group), then 2 child processes: each registers its own versions
    for way, extra in (("together", {"seed_parallel": True, "seed_processes": 1}), ("pooled", {"seed_processes": 2})):
        if way == "pooled":  # the same identity as one at a time: a store of its own, or it skips them all
            monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/pooled.db")
            train_stage(plan("train", profile="default", **common, epochs=1, snapshot_epochs=[]), progress=False)
        made = prune(shrink(base, predictions_dir=way, **extra), progress=False)
        assert [r["status"] for r in alone + made] == ["pruned"] * 12
        for a, b in zip(sorted(alone, key=key), sorted(made, key=key)):
            assert (a["group"], a["seed"], a["achieved_sparsity"]) == (b["group"], b["seed"], b["achieved_sparsity"])
            rel = Path("synthetic_nli/bilstm/pruned") / a["group"] / f"s{a['seed']}" / "validation.parquet"
            one, many = (pd.read_parquet(Path(d) / rel) for d in ("alone", way))
            x, y = np.stack(one["logits"].to_numpy()), np.stack(many["logits"].to_numpy())
            assert np.abs(x - y).max() < 1e-4, way
            assert (x.argmax(1) == y.argmax(1)).mean() >= MIN_AGREEMENT
            if a["group"].startswith("magnitude"):  # the stored model (the latest version) is the one that predicted
                model = load_version("pie-synthetic_nli-bilstm", f"magnitude-os-0_50-s{a['seed']}",
                                     tmp_path / "dl" / way / str(a["seed"]))
                val = pd.read_parquet(Path("data/synthetic_nli/validation.parquet"))
                np.testing.assert_allclose(predict_logits(model, val), y, atol=1e-4)


def test_seed_processes_compute_what_one_seed_alone_computes(tmp_path, monkeypatch):
    """train.seed_processes: 2 against one seed at a time, both on one intra-op thread (what each
    child gets on 2 cores; train.num_threads: 1 here): the same weights and predictions, to float
    noise (1e-5)."""
    import pandas as pd

    from plans import plan
    from pie_mlops.config.plans import shrink
    from pie_mlops.stages.materialize import materialize
    from pie_mlops.stages.train import train as train_stage

    for var in ("MLFLOW_REGISTRY_URI", "MLFLOW_RUN_ID", "MLFLOW_EXPERIMENT_NAME"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.chdir(tmp_path)
    materialize(plan("materialize", data_dir="data"), ["synthetic_nli"], progress=False)
    params = plan("train", profile="default", dataset="synthetic_nli", arch="bilstm", seeds=SEEDS, max_length=64, max_train_examples=200,
                  epochs=2, snapshot_epochs=[1], predict_train=True, seed_parallel=False)
    from pie_mlops.jobs import training

    seen, fit = [], training.train  # the threads each seed trains on in the stage's own process
    monkeypatch.setattr(training, "train", lambda *a, **k: seen.append(torch.get_num_threads()) or fit(*a, **k))
    threads = torch.get_num_threads()
    torch.set_num_threads(2)  # more than one, whatever this machine's default
    try:
        monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/alone.db")
        alone = train_stage(shrink(params, seed_processes=1, num_threads=1, predictions_dir="alone"), progress=False)
        assert seen == [1] * len(SEEDS) and torch.get_num_threads() == 2  # train.num_threads, then restored
    finally:
        torch.set_num_threads(threads)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/pooled.db")
    pooled = train_stage(shrink(params, seed_processes=2, predictions_dir="pooled"), progress=False)
    assert [r["status"] for r in alone + pooled] == ["trained"] * 6
    for seed in SEEDS:
        rel = Path("synthetic_nli/bilstm/dense") / f"s{seed}"
        names = sorted(p.name for p in (Path("alone") / rel).glob("*.parquet"))
        assert names == sorted(p.name for p in (Path("pooled") / rel).glob("*.parquet"))
        assert "train@epoch1.parquet" in names and "validation.parquet" in names
        for name in names:
            x, y = (np.stack(pd.read_parquet(Path(d) / rel / name)["logits"].to_numpy()) for d in ("alone", "pooled"))
            np.testing.assert_allclose(x, y, atol=1e-5, err_msg=f"s{seed}/{name}")
    assert {r["seed"]: r["validation_score"] for r in alone} == {r["seed"]: r["validation_score"] for r in pooled}


def test_a_child_prunes_a_copy_never_the_parents_model(sentiment):
    """Tasks travel as plain pickle bytes: torch's multiprocessing reducers would share the start
    model's storage, and a child pruning it in place would prune the parent's dense model too."""
    from pie_mlops.jobs.seed_pool import SeedTask, compute_seeds

    model = _models([0])[0]
    before = {k: v.clone() for k, v in model.state_dict().items()}
    plan = {"criterion": "magnitude", "schedule": "os", "sparsity": 0.5, "scope": "unstructured",
            "threshold": "global", "group": "magnitude-os@0.50", "impact_batches": 1, "impact_batch_size": 1}
    task = SeedTask({"task": "single_label", "seed": 0}, sentiment, ("validation",), plan=plan, start=model)
    outs = list(compute_seeds([task] * 2, 1))
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
    assert [o.outcome.accounting["achieved_sparsity"] for o in outs] == [pytest.approx(0.5, abs=1e-3)] * 2
    np.testing.assert_array_equal(outs[0].logits["validation"], outs[1].logits["validation"])
