"""profiles/paper.yaml and profiles/repro.yaml: they load with every stage's schema and hold the
paper's settings; the fidelity options resolve and reject bad values."""

from pathlib import Path

import pytest

from pie_mlops.util.errors import PieError
from pie_mlops.config.fidelity import check_options, identity_extras, model_kwargs
from pie_mlops.config.plans import for_arch, resolve, shrink
from pie_mlops.config.schema import SECTIONS, Prune
from pie_mlops.pruning.schedules import resolve_epochs_per_step, schedule_epochs
from pie_mlops.stages import prune
from pie_mlops.stages.train import job_plan

ROOT = Path(__file__).resolve().parents[2]
PAPER = ROOT / "profiles" / "paper.yaml"
REPRO = ROOT / "profiles" / "repro.yaml"


def one(section: str, path, arch: str) -> dict:
    """One architecture's values of a profile's section (untuned), as the pure pruning plan reads them."""
    return for_arch(resolve(section, path), arch, tuned=False).model_dump()


@pytest.mark.parametrize("profile", [PAPER, REPRO], ids=["paper", "repro"])
@pytest.mark.parametrize("section", sorted(SECTIONS))
def test_paper_profiles_load_with_every_stage_schema(section, profile):
    resolve(section, profile)  # PieError on any unknown key


def test_repro_profile_has_the_scope_the_reproduction_needs():
    """The paper's method in issue 27's profiles; their grid: tests/code/test_repro_profiles.py."""
    paper = resolve("prune", PAPER)
    for name in ("repro", "repro-e"):
        path = REPRO.with_name(f"{name}.yaml")
        t, p = resolve("train", path), resolve("prune", path)
        for key in ("threshold", "prunable", "epochs_per_step", "impact_grads", "optimizer", "dropout"):
            assert getattr(p, key) == getattr(paper, key), (name, key)  # the paper's method
        assert p.dataset == t.dataset == "rotten_tomatoes"
        for arch in t.arch:
            pa = one("prune", path, arch)
            assert len(one("train", path, arch)["seeds"]) >= 10 and len(pa["seeds"]) >= 10
            # repro-e: MP-AI only since the 2026-12-07 grid cut (docs/budget.md)
            assert {j["schedule"] for j in prune.plan_jobs(pa)} == ({"ai"} if name == "repro-e" else {"ft", "wr", "ai"})
            assert len({j["sparsity"] for j in prune.plan_jobs(pa)}) >= 1
            assert one("train", path, arch)["max_train_examples"] == pa["max_train_examples"]  # training-set PIEs match


def test_paper_profile_holds_the_papers_method_for_both_architectures():
    p = resolve("prune", PAPER)
    assert (p.threshold, p.prunable, p.epochs_per_step, p.impact_grads) == ("per_layer", "paper", "dense", "last")
    for arch in ("bert", "bilstm"):
        plan = job_plan(for_arch(resolve("train", PAPER), arch, tuned=False))
        assert plan["optimizer"] == "adam_constant" and plan["max_length"] == 128  # rotten_tomatoes
        pa = one("prune", PAPER, arch)
        assert pa["optimizer"] == "adam_constant"
        jobs = prune.plan_jobs(pa)  # every value checked
        assert {(j["criterion"], j["schedule"]) for j in jobs} == {
            ("magnitude", "ft"), ("magnitude", "wr"), ("magnitude", "ai"), ("impact", "ft"), ("impact", "wr"),
            ("impact", "ai"), ("random", "ft"), ("random", "ai")}  # the paper's 8: no random-wr
        assert all(j["threshold"] == "per_layer" for j in jobs)
    assert job_plan(for_arch(resolve("train", PAPER), "bilstm", tuned=False))["dropout"] == 0.0
    assert resolve("tune", PAPER).optimizer == "adam_constant"  # tuned as trained
    assert model_kwargs("bilstm", one("train", PAPER, "bilstm"), "train") == {"max_length": 128, "dropout": 0.0}
    assert model_kwargs("bert", one("train", PAPER, "bert"), "train") == {"max_length": 128}
    bbc = shrink(resolve("train", PAPER), dataset="bbc_news")
    assert for_arch(bbc, "bert", tuned=False).max_length == 512


def test_default_params_keep_our_choices_and_their_run_identity():
    for section in ("train", "prune"):
        assert identity_extras(resolve(section, ROOT / "params.yaml").model_dump()) == {}  # nothing new in the params hash
    p = resolve("prune", ROOT / "params.yaml")
    # E = the dense epochs (the paper's): the default's ai group trains as long as its dense models
    assert (p.threshold, p.prunable, p.epochs_per_step) == ("global", "linear", "dense")


def test_epochs_per_step_dense_follows_the_dense_epochs():
    assert resolve_epochs_per_step("dense", 3) == 3 and resolve_epochs_per_step("dense", "5") == 5
    assert resolve_epochs_per_step(2) == 2
    e = resolve_epochs_per_step("dense", 3)
    assert (schedule_epochs("ft", e), schedule_epochs("wr", e), schedule_epochs("ai", e)) == (12, 12, 3)
    for value, dense, message in (("dense", None, "dense model's epochs"), ("dense", "x", "dense model's epochs"),
                                  (0, None, "positive integer"), (1.5, None, "positive integer"),
                                  ("often", None, "positive integer")):
        with pytest.raises(PieError, match=message):
            resolve_epochs_per_step(value, dense)


@pytest.mark.parametrize("change, message", [
    ({"optimizer": "sgd"}, "prune.optimizer must be one of adamw_warmup, adam_constant"),
    ({"prunable": "all"}, "prune.prunable must be one of linear, paper"),
    ({"impact_grads": "mean"}, "prune.impact_grads must be one of sum, last"),
    ({"dropout": 1.5}, "prune.dropout must be null or a number in [0, 1)"),
    ({"dropout": "none"}, "prune.dropout must be null or a number in [0, 1)"),
])
def test_bad_options_name_their_key(change, message):
    with pytest.raises(PieError) as exc:
        check_options(dict(Prune().model_dump(), **change), "prune")
    assert message in str(exc.value)


def test_plan_jobs_rejects_paper_options_that_cannot_apply():
    base = dict(Prune().model_dump(), arch="bert", schedules=["os"], criteria=["magnitude"], methods=None,
                sparsities=[0.5])
    with pytest.raises(PieError, match="structured scope"):
        prune.plan_jobs(dict(base, scope="structured", prunable="paper"))
    with pytest.raises(PieError, match="prune.dropout applies to the bilstm"):
        prune.plan_jobs(dict(base, dropout=0.0))
    with pytest.raises(PieError, match="positive integer or 'dense'"):
        prune.plan_jobs(dict(base, epochs_per_step="twice"))
    with pytest.raises(PieError, match="one value per dataset but none for 'imdb'"):
        for_arch(Prune(dataset="imdb", max_length={"rotten_tomatoes": 128}), "bert", tuned=False)


def test_the_default_study_has_a_paper_method_group_per_architecture():
    """params.yaml: our os grid plus magnitude-ai-layer@0.50 (the paper's method) in each architecture."""
    from pie_mlops.analysis.claim_rules import method_kind
    p = Prune().model_dump()
    for arch in ("bert", "bilstm"):
        jobs = prune.plan_jobs(for_arch(Prune(), arch, tuned=False).model_dump())
        kinds = {j["group"]: method_kind(j["group"]) for j in jobs}
        assert [g for g, k in kinds.items() if k == "paper"] == ["magnitude-ai-layer@0.50"]
        assert {j["threshold"] for j in jobs if j["group"] == "magnitude-ai-layer@0.50"} == {"per_layer"}
        # one-shot: BiLSTM 3 criteria x 2 sparsities; MiniLM 2 criteria (no impact-os) x 1 (0.5): the budget
        assert sum(k == "ours" for k in kinds.values()) == (2 if arch == "bert" else 6)
    with pytest.raises(PieError, match="sparsity"):
        prune.plan_jobs(dict(p, arch="bert", methods=["magnitude-ai-layer"]))
    with pytest.raises(PieError, match="not a number"):
        prune.plan_jobs(dict(p, arch="bert", methods=["magnitude-ai@half"]))


def test_paper_profiles_train_the_dense_long_control_for_ft_and_wr():
    t, p = resolve("train", PAPER), resolve("prune", PAPER)
    assert t.dense_long_epochs == 4 * t.epochs and p.epochs_per_step == "dense" and p.steps == 3
    assert one("train", REPRO, "bilstm")["dense_long_epochs"] == "4E"   # 4 x the tuned E: the ft/wr length


def test_a_worker_job_of_a_whole_group_selects_exactly_that_group():
    from pie_mlops.scale.grid import prune_jobs

    jobs = prune_jobs(Prune(arch=["bert"]))
    ai = [j for j in jobs if j.group == "magnitude-ai-layer@0.50"]
    assert len(ai) == 3 and len(jobs) == 3 * 3  # MiniLM: 2 os methods at 0.5 + ai
    for job in jobs:
        (only,) = prune.plan_jobs(job.plan.model_dump())
        assert only["group"] == job.group
