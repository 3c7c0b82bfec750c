"""Issue 27's reproduction profiles state the grid the issue asks for, with the gate on, before any
run (profiles/repro.yaml, repro-e.yaml, repro-bbc.yaml), and `dense_long_epochs: 4E` follows the
tuned E."""

from __future__ import annotations

from pathlib import Path

import pytest

from pie_mlops.util.errors import PieError
from pie_mlops.config.params import profile_path, validate
from pie_mlops.config.plans import load_all, resolve
from pie_mlops.config.plans import for_arch as one_arch
from pie_mlops.config.plans import shrink
from pie_mlops.config.schema import SECTIONS
from pie_mlops.stages.train import dense_long_plan

ROOT = Path(__file__).resolve().parents[2]


def for_arch(section: dict, arch: str, name: str = "train") -> dict:
    """One architecture's values of a loaded section (untuned): config/plans.py's for_arch."""
    return one_arch(shrink(SECTIONS[name](), **section), arch, tuned=False).model_dump()


def seeds_for(section: dict, arch: str, name: str = "train") -> list[int]:
    return for_arch(section, arch, name)["seeds"]


def sections(path) -> dict:
    """Every section's plan values, the study keys (dataset, arch, ...) included."""
    return {name: resolve(name, path).model_dump() for name in SECTIONS}


@pytest.fixture
def profiles(monkeypatch):
    monkeypatch.chdir(ROOT)
    return {p: sections(profile_path(p)) for p in ("repro", "repro-e", "repro-bbc")}


def _pairs(params: dict, arch: str) -> set[tuple[str, float]]:
    """(method, sparsity) pairs; a whole-group entry `<method>[-layer]@<s>` is one pair."""
    prune = for_arch(params["prune"], arch, "prune")
    out = set()
    for m in prune["methods"]:
        if "@" in m:
            method, s = m.split("@")
            out.add((method.removesuffix("-layer"), float(s)))
        else:
            out |= {(m, float(s)) for s in prune["sparsities"]}
    return out


def test_the_gate_is_on_and_every_model_trains_on_what_the_issue_asks(profiles):
    for name, params in profiles.items():
        assert params["compare"]["min_gain_over_baseline"] >= 0.05, name  # no override
        for arch in params["train"]["arch"]:
            train = for_arch(params["train"], arch)
            assert train["max_train_examples"] == for_arch(params["prune"], arch, "prune")["max_train_examples"]
            space = params["tune"]["space"][arch]
            assert len(space["epochs"]["choices"]) >= 2, (name, arch)  # tuning searches E
    assert for_arch(profiles["repro"]["train"], "bilstm")["max_train_examples"] is None  # full split
    assert for_arch(profiles["repro-bbc"]["train"], "bilstm")["max_train_examples"] is None
    assert for_arch(profiles["repro-e"]["train"], "bert")["max_train_examples"] >= 3000


def test_the_grid(profiles):
    rt = profiles["repro"]
    assert len(seeds_for(rt["train"], "bilstm")) >= 20 and len(seeds_for(rt["prune"], "bilstm", "prune")) >= 20
    pairs = _pairs(rt, "bilstm")
    for method in ("magnitude-ft", "magnitude-wr", "magnitude-ai"):  # IMP-FT, IMP-WR, MP-AI
        sparsities = {s for m, s in pairs if m == method}
        assert len(sparsities) >= 2 and 0.9 in sparsities, method
    e = profiles["repro-e"]
    shared = _pairs(e, "bert") & _pairs(e, "bilstm") & pairs
    assert len(shared) >= 3
    assert seeds_for(e["train"], "bert") == seeds_for(e["train"], "bilstm") and len(seeds_for(e["train"], "bert")) >= 10
    assert for_arch(e["train"], "bert")["max_train_examples"] == for_arch(e["train"], "bilstm")["max_train_examples"]
    assert {m for m, _ in shared} == {"magnitude-ai"}  # the 2026-12-07 cut (docs/budget.md): MP-AI only
    for params, archs in ((rt, ["bilstm"]), (e, ["bert", "bilstm"])):  # ft/wr groups: a dense-long control
        for arch in archs:
            has_ft_wr = any(m.split("-")[1] in ("ft", "wr") for m, _ in _pairs(params, arch))
            assert for_arch(params["train"], arch)["dense_long_epochs"] == ("4E" if has_ft_wr else None), (arch,)
    # repro-e's BiLSTM must not overwrite repro's: its own predictions, comparison and tuned params
    for key in ("predictions_dir", "best_params"):
        assert e["train"][key] != rt["train"][key]
    assert e["compare"]["out"] != rt["compare"]["out"] and e["tune"]["storage"] != rt["tune"]["storage"]


def test_dense_long_4e_follows_the_tuned_epochs():
    assert dense_long_plan({"epochs": 3, "snapshot_epochs": [1]}, "4E")["epochs"] == 12
    assert dense_long_plan({"epochs": 6, "snapshot_epochs": []}, 8)["epochs"] == 8
    validate("train", {"dense_long_epochs": {"bert": "4E", "bilstm": 8}})
    with pytest.raises(PieError, match="dense_long_epochs"):
        validate("train", {"dense_long_epochs": "5E"})


def test_the_gpu_grid_and_its_projection(profiles, monkeypatch):
    """scripts/reproduce_gpu.py: the paper's grid (2,460 models, + 60 dense-long) as chunks, and a
    projection that is the measured seconds per epoch-model times what is left."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("reproduce_gpu", ROOT / "scripts" / "reproduce_gpu.py")
    gpu = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gpu)
    params = sections(profile_path("repro-gpu"))
    grid = gpu.chunks(load_all(profile_path("repro-gpu")), profile_path("repro-gpu"))
    assert sum(c["models"] for c in grid) == 2460 + 60
    assert params["compare"]["min_gain_over_baseline"] >= 0.05
    assert all(for_arch(params["train"], a)["seed_parallel"] for a in ("bert", "bilstm"))
    progress = {"done": {}, "slice": {"bert": {"arch": "bert", "seconds": 100.0, "epochs": 12},
                                      "bilstm": {"arch": "bilstm", "seconds": 10.0, "epochs": 12}}}
    p = gpu.project(progress, grid)
    expect = sum(c["epochs"] * (100 / 12 if c["arch"] == "bert" else 10 / 12) for c in grid)
    assert p["projected_seconds_left"] == round(expect) and p["models_left"] == 2520
    progress["done"] = {c["id"]: {"seconds": 1.0, "epochs": c["epochs"], "models": c["models"]} for c in grid}
    assert gpu.project(progress, grid)["models_left"] == 0


def test_the_resume_plan_makes_only_what_is_not_committed(tmp_path, monkeypatch):
    """scripts/reproduce.py --resume-plan on another machine: a command per missing (method,
    sparsity), for its missing seeds only, and the dense seeds those need."""
    import importlib.util

    monkeypatch.chdir(ROOT)
    spec = importlib.util.spec_from_file_location("reproduce", ROOT / "scripts" / "reproduce.py")
    rep = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(rep)
    monkeypatch.setattr(rep, "ROOT", tmp_path)  # its params/ (no tuned file yet) and its results
    out = tmp_path / "docs" / "results" / "run"
    # a profile's folder does not depend on the others listed: repro-e is always rotten_tomatoes@repro-e
    assert rep.result_keys(["repro-e"]) == {"repro-e": "rotten_tomatoes@repro-e"}
    assert rep.result_keys(["repro-e", "repro", "repro-bbc"]) == {
        "repro-e": "rotten_tomatoes@repro-e", "repro": "rotten_tomatoes", "repro-bbc": "bbc_news"}
    with pytest.raises(rep.PieError, match="profiles repro and paper both study rotten_tomatoes"):
        rep.result_keys(["repro", "paper"])
    full = rep.resume_plan(out, ["repro"])
    assert full[0] == "pie-mlops --profile repro tune -a bilstm"  # nothing tuned anywhere: tune first
    assert full[1] == "pie-mlops --profile repro train -a bilstm -s " + ",".join(map(str, range(20)))
    assert len(full) == 2 + 7  # 3 methods x 2 sparsities, and MP-AI@0.7 (claim (e)'s third pair)
    assert full[-1] == "pie-mlops --profile repro prune -a bilstm -m magnitude-ai --sparsities 0.7 -s " + ",".join(
        map(str, range(20)))
    # the committed models' tuned values travel with their logits, and are restored before training
    (tmp_path / "params").mkdir()
    (tmp_path / "params" / "best_rotten_tomatoes_bilstm.yaml").write_text("epochs: 2\nlr: 0.005\n")
    assert rep.sync_tuned(out, ["repro"]) == [out / "tuned" / "best_rotten_tomatoes_bilstm.yaml"]
    assert rep.sync_tuned(out, ["repro"]) == []  # once
    (tmp_path / "params" / "best_rotten_tomatoes_bilstm.yaml").unlink()
    assert rep.resume_plan(out, ["repro"])[0] == ("mkdir -p params && cp docs/results/run/tuned/"
                                                  "best_rotten_tomatoes_bilstm.yaml params/best_rotten_tomatoes_bilstm.yaml")
    (tmp_path / "params" / "best_rotten_tomatoes_bilstm.yaml").write_text("epochs: 4\nlr: 0.005\n")
    assert rep.resume_plan(out, ["repro"])[0].startswith("# params/best_rotten_tomatoes_bilstm.yaml differs")
    (tmp_path / "params" / "best_rotten_tomatoes_bilstm.yaml").write_text("epochs: 2\nlr: 0.005\n")
    assert rep.resume_plan(out, ["repro"])[0].startswith("pie-mlops --profile repro train")
    root = out / "predictions" / "rotten_tomatoes" / "bilstm"
    done = [f"dense/s{s}" for s in range(20)] + [f"dense/dense-long/s{s}" for s in range(20)]
    done += [f"pruned/{g}/s{s}" for g in ("magnitude-ft-layer@0.50", "magnitude-ft-layer@0.90", "magnitude-wr-layer@0.50",
                                          "magnitude-wr-layer@0.90", "magnitude-ai-layer@0.50",
                                          "magnitude-ai-layer@0.70") for s in range(20)]
    done += [f"pruned/magnitude-ai-layer@0.90/s{s}" for s in range(20) if s != 7]
    for rel in done:
        (root / rel).mkdir(parents=True)
        (root / rel / "test.parquet").write_bytes(b"x")
    assert rep.resume_plan(out, ["repro"]) == [
        "pie-mlops --profile repro train -a bilstm -s 7",
        "pie-mlops --profile repro prune -a bilstm -m magnitude-ai --sparsities 0.9 -s 7"]
    (root / "pruned/magnitude-ai-layer@0.90/s7").mkdir()
    (root / "pruned/magnitude-ai-layer@0.90/s7/test.parquet").write_bytes(b"x")
    assert rep.resume_plan(out, ["repro"]) == ["# every model of these profiles has its logits committed"]


def test_every_bilstm_of_the_reproduction_computes_on_one_intra_op_thread(profiles):
    """A lone seed, dense-long and the tuning trials train in the stage's own process: with torch's
    default (a thread per core) a BiLSTM ran ~10x slower on the shared 2-core machine (docs/budget.md)."""
    for name, params in profiles.items():
        for section in ("tune", "train", "prune"):
            assert params[section]["num_threads"]["bilstm"] == 1, (name, section)
