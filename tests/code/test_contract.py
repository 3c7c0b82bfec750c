import json

import pandas as pd
import pyarrow.parquet as pq
import pytest

from pie_mlops.data.build import build_dataset
from pie_mlops.data.contract import read_dataset, write_dataset
from pie_mlops.util.errors import PieError

META = {"name": "toy", "task": "single_label", "label_names": ["neg", "pos"], "source": "test",
        "license": "CC0", "synthetic": True}


def _frame(n=60):
    return pd.DataFrame({"text": [f"text number {i}" for i in range(n)], "label": [i % 2 for i in range(n)]})


def test_schema_matches_contract(tmp_path):
    path = build_dataset(_frame(), root=tmp_path, name="toy", task="single_label", label_names=["neg", "pos"],
                         id_prefix="toy", source="test", license="CC0", synthetic=True)
    schema = pq.read_schema(path / "train.parquet")
    assert [(f.name, str(f.type)) for f in schema] == [
        ("example_id", "string"), ("text", "string"), ("text_pair", "string"), ("label", "int64")]
    assert schema.metadata is None  # no pandas metadata: bytes independent of the pandas version
    meta = json.loads((path / "meta.json").read_text())
    assert {"name", "task", "label_names", "source", "license", "synthetic"} <= set(meta)
    assert sum(meta["n_examples"].values()) == 60


def test_multilabel_schema(tmp_path):
    df = pd.DataFrame({"text": [f"t{i}" for i in range(30)], "labels": [[i % 3] for i in range(30)]})
    path = build_dataset(df, root=tmp_path, name="ml", task="multi_label", label_names=list("abc"),
                         id_prefix="ml", source="test", license="CC0", synthetic=True)
    assert str(pq.read_schema(path / "test.parquet").field("labels").type) == "list<element: int8>"
    _, splits = read_dataset(path)
    assert all(len(v) >= 1 for v in splits["train"]["labels"])


def test_build_is_byte_deterministic(tmp_path):
    kw = dict(task="single_label", label_names=["neg", "pos"], id_prefix="toy", source="t", license="CC0",
              synthetic=True)
    a = build_dataset(_frame(), root=tmp_path / "a", name="toy", **kw)
    b = build_dataset(_frame().iloc[::-1].reset_index(drop=True).iloc[::-1], root=tmp_path / "b", name="toy", **kw)
    for f in ["train.parquet", "validation.parquet", "test.parquet", "meta.json"]:
        assert (a / f).read_bytes() == (b / f).read_bytes(), f


def test_failed_write_keeps_previous_version(tmp_path):
    frames = {s: _frame(10).assign(example_id=[f"{s}{i}" for i in range(10)]) for s in ("train", "validation", "test")}
    path = write_dataset(tmp_path, "toy", frames, META)
    before = {f.name: f.read_bytes() for f in path.iterdir()}
    bad = dict(frames, test=frames["test"].assign(label="not-an-int"))
    with pytest.raises(Exception):
        write_dataset(tmp_path, "toy", bad, META)
    assert {f.name: f.read_bytes() for f in path.iterdir()} == before
    assert [p.name for p in tmp_path.iterdir()] == ["toy"]  # no temp directory left behind


def test_meta_is_validated(tmp_path):
    frames = {s: _frame(4).assign(example_id=list("abcd")) for s in ("train", "validation", "test")}
    with pytest.raises(PieError, match="missing field"):
        write_dataset(tmp_path, "toy", frames, {"name": "toy"})
