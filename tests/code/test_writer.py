"""The tracking writer (pie_mlops/jobs/writer.py) and the one-file predictions artifact
(compare/predictions.py's bundle): order, bounds, faults, claims, and byte-identical splits."""

from __future__ import annotations

import threading
import time
from contextlib import ExitStack
from contextvars import ContextVar

import numpy as np
import pandas as pd
import pytest

from pie_mlops.jobs.writer import TrackWriter, resolved
from pie_mlops.util.errors import PieError

pytestmark = pytest.mark.unit


def test_tracks_in_order_beside_the_caller():
    done, main = [], threading.get_ident()
    with TrackWriter() as writer:
        records = [{"status": "skipped"}]
        for i in range(5):
            records.append(writer.submit(lambda i=i: done.append((i, threading.get_ident())) or {"i": i}))
    assert [r.get("i") for r in resolved(records)] == [None, 0, 1, 2, 3, 4]
    assert [i for i, _ in done] == [0, 1, 2, 3, 4] and all(t != main for _, t in done)


def test_bounded_queue_blocks_the_compute_loop():
    gate, started = threading.Event(), threading.Event()

    def slow():
        started.set()
        gate.wait(5)

    writer = TrackWriter(depth=1)
    writer.submit(slow)
    started.wait(5)
    writer.submit(lambda: None)  # queued: the queue holds one
    third = threading.Thread(target=writer.submit, args=(lambda: None,))
    third.start()
    time.sleep(0.2)
    assert third.is_alive()  # blocked until the writer takes the next one
    gate.set()
    third.join(5)
    assert not third.is_alive()
    writer.close()


def test_a_failure_stops_the_writer_and_reaches_the_loop():
    ran, released = [], []

    def hold(name):
        stack = ExitStack()
        stack.callback(released.append, name)
        return stack

    def fail():
        raise PieError("tracking failed")

    with pytest.raises(PieError, match="tracking failed"):
        with TrackWriter(depth=4) as writer:
            gate = threading.Event()
            writer.submit(lambda: gate.wait(5) and ran.append("a"), hold=hold("a"))
            writer.submit(fail, hold=hold("b"))
            writer.submit(lambda: ran.append("c"), hold=hold("c"))  # queued after the failure: never runs
            gate.set()
            time.sleep(0.3)
            writer.submit(lambda: ran.append("d"), hold=hold("d"))  # raises: the loop stops here
    assert ran == ["a"]
    assert sorted(released) == ["a", "b", "c", "d"]  # every claim released, run or not


def test_a_compute_error_drains_the_writer_then_propagates():
    ran = []
    with pytest.raises(ValueError, match="compute"):
        with TrackWriter(depth=2) as writer:
            writer.submit(lambda: time.sleep(0.2) or ran.append(1))
            writer.submit(lambda: ran.append(2))
            raise ValueError("compute")
    assert ran == [1, 2]  # the models computed before the error are tracked


def test_interrupt_drops_the_queue_but_finishes_the_model_in_flight():
    ran = []
    with pytest.raises(KeyboardInterrupt):
        with TrackWriter(depth=3) as writer:
            started = threading.Event()
            writer.submit(lambda: started.set() or time.sleep(0.2) or ran.append(1))
            writer.submit(lambda: ran.append(2))
            started.wait(5)
            raise KeyboardInterrupt
    assert ran == [1]


def test_tasks_see_the_submitters_context_variables():
    var: ContextVar[str] = ContextVar("var", default="unset")
    var.set("job")
    with TrackWriter() as writer:
        future = writer.submit(var.get)
    assert future.result() == "job"


def _frame(split: str, n: int, seed: int = 0) -> pd.DataFrame:
    from pie_mlops.compare.predictions import predictions_frame

    rng = np.random.default_rng(n)
    df = pd.DataFrame({"example_id": [f"{split}-{i}" for i in range(n)], "label": rng.integers(0, 3, n)})
    return predictions_frame(df, rng.normal(size=(n, 3)).astype(np.float32), split=split, group="dense",
                             seed=seed, task="single_label")


def test_one_bundle_file_splits_back_byte_identical(tmp_path):
    from pie_mlops.compare.predictions import (
        BUNDLE, read_split_frames, split_files, write_bundle, write_predictions,
    )

    splits = {"validation": 40, "test": 50, "train": 70, "train@epoch1": 70}
    files = [write_predictions(_frame(s, n), tmp_path / "job" / f"{s}.parquet") for s, n in splits.items()]
    bundle = write_bundle(files, tmp_path / "artifact" / BUNDLE)
    frames = read_split_frames(bundle.parent)
    assert list(frames) == list(splits)
    for f in files:
        assert frames[f.stem].equals(pd.read_parquet(f))
    split_files(bundle.parent)
    assert not bundle.exists()
    for f in files:
        assert (tmp_path / "artifact" / f.name).read_bytes() == f.read_bytes()


def test_readers_take_the_older_one_file_per_split_layout(tmp_path):
    from pie_mlops.compare.predictions import read_split_frames, split_files, write_predictions

    for s in ("validation", "test"):
        write_predictions(_frame(s, 10), tmp_path / f"{s}.parquet")
    before = {f.name: f.read_bytes() for f in tmp_path.iterdir()}
    assert sorted(read_split_frames(tmp_path)) == ["test", "validation"]
    assert split_files(tmp_path) == tmp_path
    assert {f.name: f.read_bytes() for f in tmp_path.iterdir()} == before
