"""`pie-mlops import`: every supported format in, and a precise one-line exit-2 error for bad input.

Each bad-input case runs against real files and an existing dataset imported first from a good
file: the failed `--overwrite` import must leave that dataset byte-identical, with no temp dirs.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pie_mlops.cli import main

OFFLINE_ENV = {"MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true", "DVC_NO_ANALYTICS": "1",
               "HF_HUB_OFFLINE": "1", "HF_HUB_DISABLE_TELEMETRY": "1", "HF_DATASETS_OFFLINE": "1"}
CLASSES = ["pos", "neg", "neutral"]
N = 30


@pytest.fixture(autouse=True)
def _offline(monkeypatch, tmp_path):
    for key, value in OFFLINE_ENV.items():
        monkeypatch.setenv(key, value)
    monkeypatch.chdir(tmp_path)  # no params.yaml here: the split defaults apply


def rows(n: int = N) -> list[dict]:
    return [{"id": f"{i:03d}", "text": f"review number {i} says {CLASSES[i % 3]} things", "label": CLASSES[i % 3]}
            for i in range(n)]


def write_csv(path: Path, records: list[dict], sep: str = ",") -> Path:
    pd.DataFrame(records).to_csv(path, sep=sep, index=False)
    return path


def write_jsonl(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def cli(*args: str, capsys) -> tuple[int, str]:
    """Run the real entry point; returns (exit code, stderr)."""
    capsys.readouterr()
    try:
        main(list(args))
        code = 0
    except SystemExit as exc:
        code = exc.code
    return code, capsys.readouterr().err


def do_import(path, *extra: str, capsys, name: str = "ds", data_dir: Path) -> tuple[int, str]:
    return cli("import", str(path), "--name", name, "--data-dir", str(data_dir), "--text-col", "text",
               "--label-col", "label", *extra, capsys=capsys)


def snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def load(root: Path) -> tuple[dict, pd.DataFrame]:
    meta = json.loads((root / "meta.json").read_text())
    frames = [pq.read_table(root / f"{s}.parquet").to_pandas().assign(split=s) for s in ("train", "validation", "test")]
    return meta, pd.concat(frames, ignore_index=True)


# --- bad input -----------------------------------------------------------------------------

def _bad_bytes(p: Path) -> Path:
    lines = ["text,label"] + [f"t{i} plain,pos" if i % 2 else f"t{i} other,neg" for i in range(1, 30)]
    raw = "\n".join(lines).encode()
    line17 = raw.split(b"\n")[16]
    p.write_bytes(raw.replace(line17, b"t16\xff more,neg"))  # line 17, after 3 good characters
    return p


def _csv_text(p: Path, body: str) -> Path:
    p.write_text(body, encoding="utf-8")
    return p


def _good_lines(n: int = 12) -> list[str]:
    return [f"text number {i},{CLASSES[i % 3]}" for i in range(n)]


BAD = {
    "missing": (lambda d: d / "nope.csv", [], ["nope.csv: no such file or directory"]),
    "empty": (lambda d: _csv_text(d / "empty.csv", ""), [], ["empty.csv: empty file (0 bytes)"]),
    "header_only": (lambda d: _csv_text(d / "head.csv", "text,label\n"), [], ["head.csv: has a header but no data rows"]),
    "missing_column": (lambda d: write_csv(d / "cols.csv", rows()), ["--text-pair-col", "hypothesis"],
                       ["cols.csv: no column 'hypothesis' (from --text-pair-col)", "available columns: 'id', 'text', 'label'"]),
    "undecodable": (lambda d: _bad_bytes(d / "latin.csv"), [],
                    ["latin.csv: line 17: not valid UTF-8 (byte 0xff at column 4)", "re-save the file as UTF-8"]),
    "null_labels": (lambda d: _csv_text(d / "nulls.csv", "text,label\n" + "\n".join(
                        line if i not in (4, 9) else f"text number {i}," for i, line in enumerate(_good_lines()))),
                    [], ["nulls.csv: column 'label': 2 empty label(s), at row 5 (line 6), row 10 (line 11)"]),
    "no_labels": (lambda d: _csv_text(d / "multi.csv", "text,label\n" + "\n".join(
                      line if i != 6 else "text number 6, | " for i, line in enumerate(_good_lines()))),
                  ["--label-sep", "|"], ["multi.csv: column 'label': 1 row(s) with no labels, at row 7 (line 8)"]),
    "mixed_csv": (lambda d: _csv_text(d / "mixed.csv", "text,label\n" + "\n".join(
                      f"text number {i},{i % 2 if i != 5 else 'pos'}" for i in range(12))),
                  [], ["mixed.csv: column 'label' mixes label types: numeric at row 1 (line 2) (0), "
                       "text at row 6 (line 7) ('pos')"]),
    "mixed_jsonl": (lambda d: write_jsonl(d / "mixed.jsonl", [{"text": f"text {i}", "label": i % 2 if i != 3 else "1"}
                                                               for i in range(12)]),
                    [], ["mixed.jsonl: column 'label' mixes label types: integer at row 1 (line 1) (0), "
                         "string at row 4 (line 4) ('1')"]),
    "empty_text": (lambda d: _csv_text(d / "blank.csv", "text,label\n" + "\n".join(
                       line if i != 3 else '"   ",pos' for i, line in enumerate(_good_lines()))),
                   [], ["blank.csv: column 'text': empty text at row 4 (line 5)"]),
    "malformed_csv": (lambda d: _csv_text(d / "bad.csv", "text,label\n" + "\n".join(
                          line if i != 7 else "text, with comma,pos" for i, line in enumerate(_good_lines()))),
                      [], ["bad.csv: line 9: expected 2 fields like the header, found 3"]),
    "unclosed_quote": (lambda d: _csv_text(d / "quote.csv", "text,label\n" + "\n".join(
                           line if i != 2 else '"never closed,pos' for i, line in enumerate(_good_lines()))),
                       [], ["quote.csv: line 4: a quoted field is never closed"]),
    "malformed_jsonl": (lambda d: _csv_text(d / "bad.jsonl", '{"text": "a", "label": 0}\n{"text": "b", "label": 1}\n'
                                            '\n{"text": "c", "label": 1,}\n'),
                        [], ["bad.jsonl: line 4: not valid JSON (Expecting property name enclosed in double quotes"]),
    "unknown_split": (lambda d: write_csv(d / "split.csv", [dict(r, split=["train", "dev", "test", "train2"][i % 4])
                                                            for i, r in enumerate(rows())]),
                      ["--split-col", "split"],
                      ["split.csv: column 'split' (--split-col): unknown split name(s) 'train2' at row 4 (line 5), "
                       "row 8 (line 9), row 12 (line 13) and 4 more (7 in all)"]),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_input_exits_2_and_keeps_existing_dataset(case, tmp_path, capsys):
    data = tmp_path / "data"
    assert do_import(write_csv(tmp_path / "good.csv", rows()), capsys=capsys, data_dir=data) == (0, "")
    before, entries = snapshot(data), sorted(os.listdir(data))

    make, extra, expected = BAD[case]
    code, err = do_import(make(tmp_path), "--overwrite", *extra, capsys=capsys, data_dir=data)

    assert code == 2, err
    assert err.count("\n") == 1 and err.startswith("error: "), err
    for part in expected:
        assert part in err, err
    assert snapshot(data) == before
    assert sorted(os.listdir(data)) == entries  # no .ds.tmp-* or .ds.old-* left behind


def test_fractional_and_list_vs_scalar_labels(tmp_path, capsys):
    frame = pa.table({"text": [f"t {i}" for i in range(6)], "label": [0.0, 1.0, 0.5, 1.0, 0.0, 1.0]})
    pq.write_table(frame, tmp_path / "f.parquet")
    code, err = do_import(tmp_path / "f.parquet", capsys=capsys, data_dir=tmp_path / "data")
    assert code == 2 and "f.parquet: column 'label': row 3 holds the number 0.5" in err, err
    write_jsonl(tmp_path / "l.jsonl", [{"text": f"t {i}", "label": ["a"] if i != 2 else "b"} for i in range(6)])
    code, err = do_import(tmp_path / "l.jsonl", capsys=capsys, data_dir=tmp_path / "data")
    assert code == 2 and "l.jsonl: column 'label': row 3 (line 3) holds str 'b' but other rows hold lists" in err, err


@pytest.mark.parametrize("name", ["", "a/b", "..", ".hidden", "x\\y"])
def test_invalid_names(name, tmp_path, capsys):
    code, err = do_import(write_csv(tmp_path / "good.csv", rows()), name=name, capsys=capsys, data_dir=tmp_path / "d")
    assert code == 2 and "is not a dataset name" in err, err
    assert not (tmp_path / "d").exists()


def test_existing_needs_overwrite_and_subprocess_cli(tmp_path):
    """The installed console script: exit 0, then exit 2 with one line asking for --overwrite."""
    exe = Path(sys.executable).with_name("pie-mlops")
    env = {**os.environ, **OFFLINE_ENV}
    args = [str(exe), "import", str(write_csv(tmp_path / "good.csv", rows())), "--name", "ds", "--data-dir",
            str(tmp_path / "data"), "--text-col", "text", "--label-col", "label"]
    first = subprocess.run(args, capture_output=True, text=True, env=env, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    again = subprocess.run(args, capture_output=True, text=True, env=env, cwd=tmp_path)
    assert again.returncode == 2
    assert again.stderr.strip().splitlines() == [f"error: {tmp_path / 'data' / 'ds'}: already exists; pass "
                                                 f"--overwrite to replace it (only if the import succeeds)"]


def test_hub_name_offline(tmp_path, capsys):
    code, err = do_import("someone/reviews", capsys=capsys, data_dir=tmp_path / "data")
    assert code == 2 and err.count("\n") == 1, err
    assert "someone/reviews: no such file or directory, and it could not be loaded as a Hugging Face hub" in err


# --- good input ----------------------------------------------------------------------------

def test_csv_string_labels_and_byte_identical_reimport(tmp_path, capsys):
    data, src = tmp_path / "data", write_csv(tmp_path / "good.csv", rows() + rows()[:4])  # 4 exact duplicates
    assert do_import(src, "--license", "CC0-1.0", capsys=capsys, data_dir=data)[0] == 0
    meta, df = load(data / "ds")
    assert meta["label_names"] == ["neg", "neutral", "pos"] and meta["task"] == "single_label"
    assert meta["synthetic"] is False and meta["license"] == "CC0-1.0"
    assert meta["source"] == f"{src} (csv)" and meta["n_duplicates_removed"] == 4
    assert len(df) == N and df["example_id"].is_unique and df["example_id"].str.startswith("ds-").all()
    by_text = dict(zip(df["text"], df["label"]))
    assert all(by_text[r["text"]] == meta["label_names"].index(r["label"]) for r in rows())
    assert set(df["split"]) == {"train", "validation", "test"} and df["text_pair"].isna().all()

    before = snapshot(data)
    assert do_import(src, "--license", "CC0-1.0", "--overwrite", capsys=capsys, data_dir=data)[0] == 0
    assert snapshot(data) == before
    assert sorted(os.listdir(data)) == ["ds"]


def test_tsv_with_pairs_and_split_col(tmp_path, capsys):
    recs = [{"premise": f"a person does thing {i}\twith tab" if i == 0 else f"a person does thing {i}",
             "hypothesis": f"claim {i}", "gold": ["entail", "neutral"][i % 2], "part": ["train", "dev", "test"][i % 3]}
            for i in range(18)]
    src = write_csv(tmp_path / "nli.tsv", recs, sep="\t")
    code, err = cli("import", str(src), "--name", "nli", "--data-dir", str(tmp_path / "data"), "--text-col", "premise",
                    "--text-pair-col", "hypothesis", "--label-col", "gold", "--split-col", "part", capsys=capsys)
    assert code == 0, err
    meta, df = load(tmp_path / "data" / "nli")
    assert meta["label_names"] == ["entail", "neutral"] and meta["source"].endswith("(tsv)")
    assert meta["split"] == {"column": "part"}
    got = {r.text: (r.text_pair, r.split) for r in df.itertuples()}
    want = {"train": "train", "dev": "validation", "test": "test"}
    assert got == {r["premise"]: (r["hypothesis"], want[r["part"]]) for r in recs}


def test_jsonl_integer_labels(tmp_path, capsys):
    dense = [{"text": f"item {i}", "label": i % 3} for i in range(15)]
    assert do_import(write_jsonl(tmp_path / "a.jsonl", dense), capsys=capsys, data_dir=tmp_path / "data")[0] == 0
    meta, df = load(tmp_path / "data" / "ds")
    assert meta["label_names"] == ["0", "1", "2"]
    assert dict(zip(df["text"], df["label"])) == {r["text"]: r["label"] for r in dense}
    gappy = [{"text": f"item {i}", "label": [10, 3, 7][i % 3]} for i in range(15)]  # .ndjson, not 0..K-1
    assert do_import(write_jsonl(tmp_path / "b.ndjson", gappy), "--overwrite", capsys=capsys,
                     data_dir=tmp_path / "data")[0] == 0
    meta, df = load(tmp_path / "data" / "ds")
    assert meta["label_names"] == ["3", "7", "10"]
    assert dict(zip(df["text"], df["label"])) == {r["text"]: [3, 7, 10].index(r["label"]) for r in gappy}


def test_multilabel_label_sep_csv(tmp_path, capsys):
    tags = ["sports|arts", "politics", " arts | | science ", "sports", "science|politics"]
    recs = [{"text": f"news item {i}", "label": tags[i % 5]} for i in range(20)]
    assert do_import(write_csv(tmp_path / "m.csv", recs), "--label-sep", "|", capsys=capsys,
                     data_dir=tmp_path / "data")[0] == 0
    meta, df = load(tmp_path / "data" / "ds")
    names = ["arts", "politics", "science", "sports"]
    assert meta["task"] == "multi_label" and meta["label_names"] == names
    want = {r["text"]: sorted(names.index(t.strip()) for t in r["label"].split("|") if t.strip()) for r in recs}
    assert {t: np.flatnonzero(v).tolist() for t, v in zip(df["text"], df["labels"])} == want  # multi-hot on disk


def test_parquet_list_labels(tmp_path, capsys):
    recs = {"text": [f"doc {i}" for i in range(20)], "label": [[["x"], ["y", "x"], ["z"], ["y"]][i % 4] for i in range(20)]}
    pq.write_table(pa.table(recs), tmp_path / "m.parquet")
    assert do_import(tmp_path / "m.parquet", capsys=capsys, data_dir=tmp_path / "data")[0] == 0
    meta, df = load(tmp_path / "data" / "ds")
    assert meta["task"] == "multi_label" and meta["label_names"] == ["x", "y", "z"]
    assert pq.read_schema(tmp_path / "data" / "ds" / "train.parquet").field("labels").type == pa.list_(pa.int8())
    assert {t: np.flatnonzero(v).tolist() for t, v in zip(df["text"], df["labels"])} == {
        t: sorted("xyz".index(x) for x in labels) for t, labels in zip(recs["text"], recs["label"])}


def test_hf_save_to_disk_dataset_and_dict(tmp_path, capsys):
    datasets = pytest.importorskip("datasets")
    features = datasets.Features({"sentence": datasets.Value("string"),
                                  "sentiment": datasets.ClassLabel(names=["negative", "positive", "mixed"])})

    def part(lo: int, hi: int):
        return datasets.Dataset.from_dict({"sentence": [f"sentence {i}" for i in range(lo, hi)],
                                           "sentiment": [i % 3 for i in range(lo, hi)]}, features=features)

    part(0, 30).save_to_disk(str(tmp_path / "single"))
    args = ("--text-col", "sentence", "--label-col", "sentiment", "--data-dir", str(tmp_path / "data"))
    code, err = cli("import", str(tmp_path / "single"), "--name", "one", *args, capsys=capsys)
    assert code == 0, err
    meta, df = load(tmp_path / "data" / "one")
    assert meta["label_names"] == ["negative", "positive", "mixed"] and meta["source"].endswith("(hf-disk)")
    assert dict(zip(df["text"], df["label"])) == {f"sentence {i}": i % 3 for i in range(30)}

    datasets.DatasetDict({"train": part(0, 21), "validation": part(21, 24), "test": part(24, 30)}).save_to_disk(
        str(tmp_path / "dict"))
    code, err = cli("import", str(tmp_path / "dict"), "--name", "kept", "--hf-split", "keep", *args, capsys=capsys)
    assert code == 0, err
    meta, df = load(tmp_path / "data" / "kept")
    assert meta["n_examples"] == {"train": 21, "validation": 3, "test": 6}
    assert set(df[df["split"] == "validation"]["text"]) == {f"sentence {i}" for i in range(21, 24)}

    code, err = cli("import", str(tmp_path / "dict"), "--name", "bad", "--hf-split", "keep,train,nope", *args,
                    capsys=capsys)
    assert code == 2 and "dict: no split(s) 'nope'; available: train, validation, test" in err, err
