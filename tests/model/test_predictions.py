"""Prediction frames and files follow the contract of docs/design.md §3, types included."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pie_mlops.util.errors import PieError
from pie_mlops.compare.predictions import predictions_frame, read_predictions, write_predictions
from pie_mlops.jobs.frames import predict_split, snapshot_frames
from pie_mlops.jobs.training import TrainConfig, train


def _schema(path) -> dict[str, pa.DataType]:
    return {f.name: f.type for f in pq.read_schema(path)}


def test_single_label_file_matches_the_contract(tiny_bilstm, nli, tmp_path):
    model = tiny_bilstm(nli, 3)
    frame = predict_split(model, nli["test"], split="test", group="dense", seed=7)
    path = write_predictions(frame, tmp_path / "p" / "test.parquet")
    types = _schema(path)
    assert types["example_id"] == pa.string() and types["split"] == pa.string() and types["group"] == pa.string()
    assert types["seed"] == pa.int64() and types["label"] == pa.int64()
    assert types["logits"] == pa.list_(pa.float32())
    assert types["pred"] == pa.int64() and types["loss"] == pa.float32() and types["prob"] == pa.float32()
    back = read_predictions(path)
    assert back["example_id"].tolist() == nli["test"]["example_id"].tolist()
    assert (back["seed"] == 7).all() and (back["split"] == "test").all() and (back["group"] == "dense").all()
    assert all(len(v) == 3 for v in back["logits"])
    np.testing.assert_array_equal(np.stack(back["logits"]).argmax(1), back["pred"])
    assert [p.name for p in path.parent.iterdir()] == ["test.parquet"]  # no temp file left behind


def test_multi_label_file_and_early_snapshots(tiny_bilstm, topics, tmp_path):
    model = tiny_bilstm(topics, 4, "multi_label")
    result = train(model, topics["train"], topics["validation"],
                   TrainConfig(epochs=2, snapshot_epochs=(1,), progress=False))
    frames = snapshot_frames(result, topics["train"], group="dense", seed=0, task="multi_label")
    assert list(frames) == ["train@epoch1"]
    frame = predict_split(model, topics["validation"], split="validation", group="dense", seed=0,
                          threshold=result.threshold)
    for name, f in {**frames, "validation": frame}.items():
        path = write_predictions(f, tmp_path / f"{name}.parquet")
        types = _schema(path)
        assert types["labels"] == pa.list_(pa.int8()) and types["logits"] == pa.list_(pa.float32())
        assert types["pred"] == pa.list_(pa.int8()) and types["threshold"] == pa.float32()
        back = read_predictions(path)
        assert (back["split"] == name).all()
        assert np.allclose(back["threshold"], result.threshold)
        assert all(len(v) == 4 for v in back["labels"])


def test_mismatched_logits_are_refused(nli):
    with pytest.raises(PieError, match="examples but"):
        predictions_frame(nli["test"], np.zeros((3, 3)), split="test", group="dense", seed=0, task="single_label")


def test_failed_write_keeps_the_old_file(tmp_path, nli):
    frame = predictions_frame(nli["test"], np.zeros((len(nli["test"]), 3)), split="test", group="dense", seed=0,
                              task="single_label")
    path = write_predictions(frame, tmp_path / "x.parquet")
    before = path.read_bytes()
    with pytest.raises(PieError):
        write_predictions(frame.drop(columns=["logits"]), path)
    assert path.read_bytes() == before and len(list(tmp_path.iterdir())) == 1
