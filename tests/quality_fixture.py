"""Small datasets for the data-quality gate's tests (tests/data/test_quality.py, test_check_stage.py),
written with the contract writer, and the defects more than one of them plants."""

from __future__ import annotations

import pandas as pd
import pytest

from pie_mlops.data.contract import SPLITS, write_dataset
from plans import plan

CLASSES = ["neg", "neu", "pos"]
PER_CLASS = {"train": 8, "validation": 3, "test": 3}
WORDS = ["apple", "river", "stone", "cloud", "tiger", "piano", "lemon", "forest", "candle", "rocket", "violet"]


@pytest.fixture(scope="module", autouse=True)
def gx_imported():
    """Pay great-expectations' slow import once, up front, not inside the first test's timing."""
    import great_expectations  # noqa: F401


@pytest.fixture(autouse=True)
def gx_project_here(tmp_path, monkeypatch):
    """The GX project (`gx/`) goes where a command would put it: its working directory."""
    monkeypatch.chdir(tmp_path)


def make_splits(task: str = "single_label", pairs: bool = False) -> dict[str, pd.DataFrame]:
    splits, i = {}, 0
    for split in SPLITS:
        rows = []
        for c in range(len(CLASSES)):
            for _ in range(PER_CLASS[split]):
                text = f"{WORDS[i % len(WORDS)]} story number {i} about {CLASSES[c]}"
                row = {"example_id": f"ex-{i:04d}", "text": text, "text_pair": f"a claim about item {i}" if pairs else None}
                if task == "multi_label":  # multi-hot, as the contract says; odd rows carry two labels
                    row["labels"] = [int(k == c or (i % 2 and k == (c + 1) % 3)) for k in range(len(CLASSES))]
                else:
                    row["label"] = c
                rows.append(row)
                i += 1
        splits[split] = pd.DataFrame(rows)
    return splits


def write(root, splits, name="toy", task="single_label"):
    meta = {"name": name, "task": task, "label_names": CLASSES, "source": "tests", "license": "CC0-1.0",
            "synthetic": True}
    return write_dataset(root, name, splits, meta)


def params(**overrides):
    return plan("check", **overrides).model_dump()


def failing(summary: dict) -> dict[str, list[str]]:
    return {c["name"]: c["sample_ids"] for c in summary["checks"] if not c["success"]}


def leak(s):  # a test text that is a train text up to case and spacing
    s["test"].loc[0, "text"] = "  " + s["train"].loc[0, "text"].upper().replace(" ", "   ") + " "
    return "ex-0033"  # first test row: 24 train and 9 validation rows come before it


def duplicate_id(s):
    s["validation"].loc[0, "example_id"] = "ex-0003"
    return "ex-0003"
