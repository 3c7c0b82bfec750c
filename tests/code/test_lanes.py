"""Lanes: one compute slot per worker, shared by its claim loops through their job contexts
(pie_mlops/jobs/context.py), and the --max-jobs budget those loops share (pie_mlops/scale/claims.py)."""

import threading
import time

import pytest

from pie_mlops.jobs.context import JobContext, Worker, lane_context
from pie_mlops.scale.claims import Budget
from pie_mlops.stages.worker import _run_lanes, default_lanes


def _section(ctx: JobContext, log: list, name: str, hold: float = 0.05) -> None:
    with ctx.compute():
        log.append(("in", name))
        time.sleep(hold)
        log.append(("out", name))


def test_two_lanes_never_compute_at_once():
    worker = Worker(2)
    log: list = []
    threads = [threading.Thread(target=_section, args=(lane_context(worker), log, f"job{i}")) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(log) == 8
    for i in range(0, 8, 2):  # every entry is followed by its own exit: the sections never overlap
        assert log[i][0] == "in" and log[i + 1] == ("out", log[i][1])


def test_one_lane_and_the_default_context_take_no_lock():
    worker = Worker(1)
    assert worker.slot is None and JobContext().slot is None and not JobContext().in_worker
    both_inside = threading.Barrier(2, timeout=10)  # would time out if compute() serialized them

    def job():
        with lane_context(worker).compute():
            both_inside.wait()

    threads = [threading.Thread(target=job) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not both_inside.broken


def test_counters_are_per_lane_and_a_job_shares_its_lane():
    worker = Worker(2)
    got = {}

    def job(name: str, hold: float):
        lane = lane_context(worker)
        ctx = lane.for_job({"pie.job": name})
        assert ctx.in_worker and ctx.slot is worker.slot and ctx.finished is worker.finished and ctx.dense is lane.dense
        _section(ctx, [], name, hold)
        got[name] = dict(lane.totals)  # the job's seconds are its lane's

    first = threading.Thread(target=job, args=("first", 0.3))
    first.start()
    time.sleep(0.1)  # `first` holds the slot
    second = threading.Thread(target=job, args=("second", 0.0))
    second.start()
    first.join()
    second.join()
    assert got["first"]["compute_s"] >= 0.3 and got["first"]["wait_s"] < 0.1
    assert got["second"]["compute_s"] < 0.1 and got["second"]["wait_s"] >= 0.1


def test_tracking_time_goes_into_the_running_jobs_totals():
    """Issue 28: tracking seconds live in ctx.totals beside compute and wait, per lane, and a
    nested tracking block counts once; outside a job nothing is counted anywhere."""
    from pie_mlops.tracking.accounting import counting, spent, timed

    @timed
    def call(hold: float):  # a tracking call (it nests one more tracking block)
        with spent():
            time.sleep(hold)

    worker, got = Worker(2), {}
    call(0.05)  # no job bound: counts nowhere
    ready = threading.Barrier(2, timeout=10)

    def lane(name: str, hold: float):
        totals = lane_context(worker).totals
        with counting(totals):
            ready.wait()  # both lanes count at once: neither sees the other's seconds
            call(hold)
            call(hold)
        call(hold)  # after the job: not counted
        got[name] = totals

    threads = [threading.Thread(target=lane, args=(n, h)) for n, h in (("slow", 0.15), ("fast", 0.02))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert 0.3 <= got["slow"]["tracking_s"] < 0.45, got  # two calls of 0.15 s, not 4 (nesting) nor 3 (after)
    assert 0.04 <= got["fast"]["tracking_s"] < 0.12, got
    assert JobContext().totals == {"compute_s": 0.0, "wait_s": 0.0, "tracking_s": 0.0}


def test_budget_is_shared_and_given_back():
    budget = Budget(2)
    assert budget.take() and budget.take() and not budget.take() and not budget.left()
    budget.give_back()  # a duplicate claim did no work
    assert budget.left() and budget.take()
    unlimited = Budget(None)
    assert all(unlimited.take() for _ in range(100))
    unlimited.stop()
    assert not unlimited.left() and not unlimited.take()


def test_a_failing_lane_stops_the_others_and_raises():
    budget = Budget(None)
    finished = []

    def lane():
        if threading.current_thread().name == "lane-0":
            raise RuntimeError("lane-0 broke")
        while budget.left():  # the other lane works until the failure stops the budget
            time.sleep(0.01)
        finished.append(threading.current_thread().name)

    with pytest.raises(RuntimeError, match="lane-0 broke"):
        _run_lanes(lane, 2, budget)
    assert finished == ["lane-1"]


def test_default_lanes():
    assert default_lanes("http://tracking:5000", "postgresql+psycopg://pie@db/optuna") == 2
    assert default_lanes("sqlite:///mlflow.db", "postgresql+psycopg://pie@db/optuna") == 1
    assert default_lanes("http://tracking:5000", "sqlite:///optuna.db") == 1
