"""A model run's params, training history, final metrics and late tags go up together, in as few
log-batch requests as MLflow's limits allow (tracking/models.py; issue 27: tracking's CPU and
round trips per model), and nothing is sent twice or dropped."""

from __future__ import annotations

import pytest

from pie_mlops.tracking.models import ModelRun

pytestmark = pytest.mark.unit


class _Client:
    """Records log_batch calls; refuses one MLflow would refuse."""

    tracking_uri = "sqlite:///unused.db"

    def __init__(self):
        self.batches = []

    def log_batch(self, run_id, metrics=(), params=(), tags=()):
        assert len(params) <= 100 and len(tags) <= 100 and len(metrics) <= 1000
        assert len(params) + len(tags) + len(metrics) <= 1000
        self.batches.append((list(metrics), list(params), list(tags)))


def _run(n_params: int):
    from mlflow.entities import Param

    run = ModelRun(_Client(), "r1", {}, "0", "file:///unused", {})
    run._pending_params = [Param(f"p{i}", str(i)) for i in range(n_params)]
    return run


def test_one_request_for_params_history_metrics_and_tags():
    run = _run(40)
    run.log_history([{"epoch": e, "train_loss": 1 / e, "val_score": 0.5 + e / 100} for e in (1, 2, 3)])
    run.set_tags({"achieved_sparsity": 0.5})
    assert run.client.batches == []  # nothing yet: it rides with the final metrics
    run.log_metrics({"test_score": 0.7, "latency_ms": 1.0}, step=3)
    [(metrics, params, tags)] = run.client.batches
    assert len(params) == 40 and [(t.key, t.value) for t in tags] == [("achieved_sparsity", "0.5")]
    assert sorted((m.key, m.step) for m in metrics) == sorted(
        [(k, e) for e in (1, 2, 3) for k in ("train_loss", "val_score")] + [("test_score", 3), ("latency_ms", 3)])
    assert run.metrics["val_score"] == pytest.approx(0.53)  # the last epoch's, for the description
    run._flush()
    assert len(run.client.batches) == 1  # nothing left to send


def test_past_the_limits_every_value_goes_up_once():
    run = _run(150)
    run.log_history([{"epoch": e, **{f"m{k}": k for k in range(10)}} for e in range(1, 121)])  # 1,200 values
    run.log_metrics({"test_score": 0.7}, step=120)
    sent = run.client.batches
    assert len(sent) == 2  # 100 params + 900 values, then 50 params + 301 values
    assert sum(len(m) for m, _, _ in sent) == 1201 and sum(len(p) for _, p, _ in sent) == 150
    assert len({(m.key, m.step) for b in sent for m in b[0]}) == 1201


def test_a_failed_run_keeps_params_and_history_but_not_late_tags():
    run = _run(3)
    run.log_history([{"epoch": 1, "train_loss": 0.3}])
    run.set_tags({"achieved_sparsity": 0.5})
    run._flush(tags=False)  # what model_run does when the block fails
    [(metrics, params, tags)] = run.client.batches
    assert len(params) == 3 and [m.key for m in metrics] == ["train_loss"] and tags == []
