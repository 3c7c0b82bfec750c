"""The worker grid (pie_mlops/scale/grid.py): jobs per phase and the retry bookkeeping, pure."""

from __future__ import annotations


import pytest

from pie_mlops.util.errors import PieError
from pie_mlops.config.plans import shrink
from pie_mlops.scale.grid import grid_id, phase_state, plan_grid
from pie_mlops.stages import prune
from plans import plan


def tiny(**prune_values) -> dict:
    return {"train": plan("train"), "prune": plan("prune", **prune_values), "compare": plan("compare")}


def test_the_tiny_grid_has_one_job_per_model_and_one_compare_per_arch():
    grid = plan_grid(tiny())
    assert [len(grid[p]) for p in ("train", "prune", "compare")] == [3 + 8, 2 * (3 + 8), 2]  # tiny: bert 3, bilstm 8 seeds; magnitude-os at 0.3 and 0.9
    keys = [j.key for p in grid.values() for j in p]
    assert len(set(keys)) == len(keys)
    assert "prune:bert:magnitude-os@0.30:s1" in keys and "train:bilstm:s0" in keys
    # A prune job's params select exactly its own group and seed ...
    for job in grid["prune"]:
        (only,) = prune.plan_jobs(job.plan.model_dump())
        assert only["group"] == job.group and job.plan.seeds == [job.seed]
    # ... and compare is restricted to the grid's own models.
    bert = next(j for j in grid["compare"] if j.arch == "bert")
    assert len(bert.models) == 3 + 2 * 3 and bert.plan.predictions_dir is None


def test_a_quantized_group_is_one_grid_job_per_seed_that_prunes_nothing():
    grid = plan_grid(tiny(quantize={"bert": ["int8-dyn"], "bilstm": ["int8-dyn", "bf16"]}))
    quant = [j for j in grid["prune"] if j.group.startswith("quant-")]
    assert sorted(j.key for j in quant) == sorted(
        [f"prune:bert:quant-int8-dyn:s{s}" for s in range(3)]  # tiny: bert 3 seeds, bilstm 8
        + [f"prune:bilstm:quant-{m}:s{s}" for m in ("int8-dyn", "bf16") for s in range(8)])
    for job in quant:  # no pruned group in its params; its own method and seed only
        assert job.plan.sparsities == [] and job.plan.quantize == [job.group.removeprefix("quant-")]
        assert job.plan.seeds == [job.seed]
    for job in grid["prune"]:
        if not job.group.startswith("quant-"):
            assert job.plan.quantize == []  # a pruned group's job quantizes nothing
    bilstm = next(j for j in grid["compare"] if j.arch == "bilstm")
    assert ["quant-bf16", 1] in [list(m) for m in bilstm.models]


def test_bad_params_fail_before_any_claim():
    params = tiny()
    params["prune"] = params["prune"].model_copy(update={"sparsities": [1.5]})  # past the schema, as a bad caller would
    with pytest.raises(PieError, match="sparsities"):
        plan_grid(params)


def test_grid_id_follows_the_grid():
    params = tiny()
    jobs = [j for p in plan_grid(params).values() for j in p]
    changed = dict(params, train=shrink(params["train"], epochs=7))
    other = [j for p in plan_grid(changed).values() for j in p]
    assert grid_id({}, jobs) == grid_id({}, [j for p in plan_grid(tiny()).values() for j in p])
    assert grid_id({}, jobs) != grid_id({}, other)


def t(number, state, job, history=None, error=None):
    return {"number": number, "state": state, "job": job, "retry_history": history, "error": error}


def test_phase_state_retries_a_failed_job_until_its_retries_run_out():
    keys = ["a", "b", "c"]
    # a done; b failed once (no successor yet): retry it; c never claimed.
    s = phase_state([t(0, "COMPLETE", "a"), t(1, "FAIL", "b")], keys, max_retry=2)
    assert s.done == {"a"} and s.retry == [1] and s.unvisited == 1 and not s.complete(keys)
    # b's retry (trial 2, history [1]) is running: trial 1 is not retried again.
    s = phase_state([t(0, "COMPLETE", "a"), t(1, "FAIL", "b"), t(2, "RUNNING", "b", [1])], keys, 2)
    assert s.retry == [] and s.running == {"b"}
    # b failed on its second retry: dead, with its error.
    trials = [t(0, "COMPLETE", "a"), t(1, "FAIL", "b"), t(2, "FAIL", "b", [1]), t(3, "FAIL", "b", [1, 2], "boom")]
    s = phase_state(trials + [t(4, "COMPLETE", "c")], keys, 2)
    assert s.dead == {"b": "boom"} and s.retry == []
    # A job done by any attempt is done, whatever its other attempts did.
    s = phase_state(trials + [t(4, "COMPLETE", "c"), t(5, "COMPLETE", "b", [1, 2, 3])], keys, 2)
    assert s.complete(keys) and s.dead == {}
    # WAITING retries are counted (a worker must pick them up).
    s = phase_state([t(0, "WAITING", "a", [9])], keys, 2)
    assert s.waiting == 1


def test_a_duplicate_claim_never_makes_its_job_done():
    """A claim that deferred to a running attempt is COMPLETE in Optuna, with no work done: the
    phase must wait for the real attempt (pruning had started before the dense models were
    registered), and a retry must not be spent on a duplicate."""
    keys = ["a"]
    dup = dict(t(1, "COMPLETE", "a"), duplicate=True)
    s = phase_state([t(0, "RUNNING", "a"), dup], keys, 2)
    assert not s.complete(keys) and s.running == {"a"} and s.unvisited == 0
    s = phase_state([t(0, "RUNNING", "a"), dup, t(2, "COMPLETE", "a")], keys, 2)
    assert s.complete(keys)
    # The real attempt died; its retry deferred (a race) and did nothing: retry it again.
    s = phase_state([t(0, "FAIL", "a"), dict(t(1, "COMPLETE", "a", [0]), duplicate=True)], keys, 2)
    assert not s.complete(keys) and s.retry == [0]


def test_a_claim_sees_an_earlier_trial_before_its_job_is_written():
    """Trial n < grid size owns grid point n from the moment it exists (GridSampler's rule):
    a later claim of the same job (a race beyond the grid) must see it even before the
    trial's grid_id or param is written, and defer to it."""
    from types import SimpleNamespace as NS

    from pie_mlops.scale.claims import _job_of, earlier_attempt

    sampler = NS(_all_grids=[("train:s0",), ("train:s1",)])
    running = NS(name="RUNNING")
    bare = NS(number=0, params={}, system_attrs={}, user_attrs={}, state=running)  # just created
    assert _job_of(bare, sampler) == "train:s0"
    retry = NS(number=1, params={}, system_attrs={"fixed_params": {"job": "train:s0"}}, user_attrs={}, state=running)
    assert _job_of(retry, sampler) == "train:s0"  # enqueued: its fixed params, not grid point 1
    beyond = NS(number=2, params={}, system_attrs={}, user_attrs={}, state=running)
    assert _job_of(beyond, sampler) is None  # beyond the grid: unknown until GridSampler picks
    study = NS(sampler=sampler, get_trials=lambda deepcopy=False: [bare, beyond])
    assert earlier_attempt(study, 2, "train:s0") == "running"
    # A later claim waits (briefly) for an earlier trial whose job is not known yet.
    late = NS(number=3, params={}, system_attrs={}, user_attrs={}, state=running)
    study = NS(sampler=sampler, get_trials=lambda deepcopy=False: [beyond, late])
    assert earlier_attempt(study, 3, "train:s1", patience=0.3) is None
