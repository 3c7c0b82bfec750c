"""Committed predictions (pie_mlops/compare/committed.py): float16 logits that reproduce every pie_share
exactly, a float16 label change caught when writing, and a sync that resumes without losing or
duplicating a model. Last, every committed reproduction under docs/results/ is recomputed."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from pie_mlops.compare.committed import (dense_gate, expected_splits, export_model, index_examples, reproduce_exactly, sync,
                                         verify)
from pie_mlops.compare.files import compare_files
from pie_mlops.compare.predictions import predictions_frame, write_predictions
from pie_mlops.util.errors import PieError

ROOT = Path(__file__).resolve().parents[2]
N = 400


def _write(root: Path, rel: str, group: str, seed: int, logits: np.ndarray, labels: np.ndarray,
           splits=("validation", "test")) -> None:
    df = pd.DataFrame({"example_id": [f"ex{i:04d}" for i in range(len(labels))], "label": labels})
    for split in splits:
        frame = predictions_frame(df, logits, split=split, group=group, seed=seed, task="single_label")
        write_predictions(frame, root / rel / f"s{seed}" / f"{split}.parquet")


def _study(root: Path, seeds: int = 4) -> None:
    """The pipeline's layout: dense, dense-long and two pruned groups, 3 classes."""
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, N)
    for rel, group, flip in (("dense", "dense", 0.1), ("dense/dense-long", "dense-long", 0.12),
                             ("pruned/magnitude-ft@0.50", "magnitude-ft@0.50", 0.2),
                             ("pruned/random-ai@0.90", "random-ai@0.90", 0.5)):
        for seed in range(seeds):
            pred = np.where(rng.random(N) < flip, rng.integers(0, 3, N), labels)
            z = rng.normal(0, 1.0, (N, 3))
            z[np.arange(N), pred] += 1.5
            _write(root, rel, group, seed, z.astype(np.float32), labels)


EXPECT = expected_splits({"predict_train": False, "snapshot_epochs": []},
                         {"predict_validation": True, "predict_test": True, "predict_train": False})


def test_float16_logits_reproduce_every_pie_share(tmp_path):
    src, dst = tmp_path / "predictions", tmp_path / "committed"
    _study(src)
    summary = compare_files(src, tmp_path / "out32", min_seeds=2).summary
    done = sync(src, dst, EXPECT)
    assert len(done) == 16 and not any(e.float32_splits for e in done)
    f = dst / "pruned" / "magnitude-ft@0.50" / "s0" / "test.parquet"
    assert str(pq.read_schema(f).field("logits").type) == "list<element: halffloat>"
    assert f.stat().st_size < (src / "pruned" / "magnitude-ft@0.50" / "s0" / "test.parquet").stat().st_size
    again = compare_files(dst, tmp_path / "out16", min_seeds=2).summary
    groups = [g for g in summary if isinstance(summary[g], dict) and "pie_share" in summary[g]]
    assert {"dense-long", "magnitude-ft@0.50", "random-ai@0.90"} <= set(groups)
    assert all(again[g]["pie_share"] == summary[g]["pie_share"] for g in groups)
    assert verify(dst, summary, min_seeds=2) == {}
    # the ids and labels live once per split, in the example index; each model file drops them
    assert "example_id" not in pq.read_schema(f).names and "label" not in pq.read_schema(f).names
    assert sorted(p.name for p in (dst / "_examples").iterdir()) == ["test.parquet", "validation.parquet"]
    assert pq.read_table(dst / "_examples" / "test.parquet").column_names == ["example_id", "label"]
    skipped = sync(src, tmp_path / "test-only", EXPECT, skip=frozenset({"validation"}))
    assert len(skipped) == 16 and not list((tmp_path / "test-only").rglob("validation.parquet"))


def test_a_float16_label_change_keeps_that_file_float32(tmp_path):
    labels = np.array([1, 0, 1, 0])
    # 1.0004 and 1.0002 round to the same float16 (1.0): float32 says class 1, float16 a tie (class 0)
    z = np.array([[1.0002, 1.0004], [2.0, -1.0], [0.0, 3.0], [1.0, 0.0]], np.float32)
    _write(tmp_path / "src", "dense", "dense", 0, z, labels, splits=("test",))
    e = export_model(tmp_path / "src" / "dense" / "s0", tmp_path / "dst")
    assert e.float32_splits == ["test"]
    back = pq.read_table(tmp_path / "dst" / "test.parquet")
    assert str(back.schema.field("logits").type) == "list<element: float>"
    assert np.array_equal(np.stack(back["logits"].to_numpy(zero_copy_only=False)), z)


def test_a_tie_moved_by_float16_is_rewritten_in_float32(tmp_path):
    """Each model's argmax survives float16, but a 1-1 vote decided by the mean probability does
    not: verify sees the pie_share move and reproduce_exactly rewrites the groups in float32."""
    labels = np.ones(4, np.int64)
    src, dst = tmp_path / "src", tmp_path / "dst"
    tie = [np.array([[0.0, 1.0004]] * 4, np.float32), np.array([[1.0002, 0.0]] * 4, np.float32)]
    for seed in (0, 1):
        _write(src, "dense", "dense", seed, tie[seed], labels, splits=("test",))
        _write(src, "pruned/magnitude-ai@0.50", "magnitude-ai@0.50", seed,
               np.array([[0.0, 3.0]] * 4, np.float32), labels, splits=("test",))
    summary = compare_files(src, tmp_path / "out", min_seeds=2).summary
    assert summary["magnitude-ai@0.50"]["pie_share"] == 0.0  # float32: dense's tie goes to class 1
    sync(src, dst)
    assert verify(dst, summary, min_seeds=2)  # float16: the tie goes to class 0, every example a PIE
    assert reproduce_exactly(dst, src, summary, min_seeds=2) == ["magnitude-ai@0.50"]
    assert verify(dst, summary, min_seeds=2) == {}


def test_sync_resumes_without_loss_or_duplicates(tmp_path):
    src, dst = tmp_path / "predictions", tmp_path / "committed"
    _study(src, seeds=2)
    partial = src / "pruned" / "random-ai@0.90" / "s1" / "validation.parquet"
    partial.rename(tmp_path / "held")  # a model whose publish was cut off: test is there, validation not
    first = sync(src, dst, EXPECT)
    assert len(first) == 7 and not (dst / "pruned" / "random-ai@0.90" / "s1").exists()
    before = {p: p.read_bytes() for p in dst.rglob("*.parquet")}
    (dst / "pruned" / ".s9.tmp-host-1-x").mkdir()  # what a killed export leaves: not a model
    (tmp_path / "held").rename(partial)
    second = sync(src, dst, EXPECT)
    assert [str(e.model_dir) for e in second] == ["pruned/random-ai@0.90/s1"]
    assert all(p.read_bytes() == b for p, b in before.items())  # a committed model is never rewritten
    assert sync(src, dst, EXPECT) == []
    files = sorted(p.relative_to(dst) for p in dst.rglob("*.parquet") if ".tmp-" not in str(p) and "_examples" not in str(p))
    assert len(files) == len(set(files)) == 16


def test_files_with_ids_move_them_to_the_index_and_compare_the_same(tmp_path):
    """A folder committed before the index (or by an older checkout): index_examples rewrites its
    files without ids, once, and file mode gives the same pies and summary; a file listing the
    examples in another order keeps its own ids, and both kinds are read together."""
    root = tmp_path / "committed"
    _study(root, seeds=3)
    mixed = root / "pruned" / "random-ai@0.90" / "s2" / "test.parquet"
    table = pq.read_table(mixed)
    pq.write_table(table.take(np.arange(N)[::-1].copy()), mixed)  # another example order
    before = compare_files(root, tmp_path / "before", min_seeds=2)
    assert index_examples(root) == 23 and index_examples(root) == 0
    assert "example_id" in pq.read_schema(mixed).names
    assert "example_id" not in pq.read_schema(root / "dense" / "s0" / "test.parquet").names
    after = compare_files(root, tmp_path / "after", min_seeds=2)
    assert after.summary == before.summary and after.pies.equals(before.pies)


def test_a_file_without_ids_needs_its_index_with_as_many_rows(tmp_path):
    root = tmp_path / "committed"
    _study(root, seeds=3)
    index_examples(root)
    out = tmp_path / "out"
    index = root / "_examples" / "test.parquet"
    pq.write_table(pq.read_table(index).slice(0, N - 1), index)
    with pytest.raises(PieError, match=r"s0/test.parquet: 400 rows, but its index .* lists 399 examples"):
        compare_files(root, out, min_seeds=2)
    index.unlink()
    exe = Path(sys.executable).parent / "pie-mlops"
    run = subprocess.run([str(exe), "compare", "--predictions", str(root), "--out", str(out), "--min-seeds", "2"],
                         capture_output=True, text=True)
    assert run.returncode == 2 and len(run.stderr.strip().splitlines()) == 1, run.stderr
    assert "no example_id column and no _examples/test.parquet" in run.stderr and not out.exists()


def test_the_dense_gate_is_recomputed_from_committed_logits(tmp_path):
    root = tmp_path / "committed"
    _study(root, seeds=3)
    index_examples(root)
    labels = pq.read_table(root / "_examples" / "test.parquet")["label"].to_numpy()
    gate = dense_gate(root, 0.05)
    assert gate["value"] == round(np.bincount(labels).max() / N, 6) and gate["split"] == "test"
    assert list(gate["scores"]) == ["dense/s0", "dense/s1", "dense/s2"]  # dense-long is not a dense seed
    logits = np.stack(pq.read_table(root / "dense" / "s1" / "test.parquet")["logits"].to_numpy(zero_copy_only=False))
    assert gate["scores"]["dense/s1"] == round(float((logits.argmax(1) == labels).mean()), 6)
    assert gate["passed"] and not dense_gate(root, 1.0)["passed"]
    with pytest.raises(PieError, match="no dense/s<seed>/validation.parquet"):
        dense_gate(root / "pruned", 0.05, "validation")


def committed_arch_dirs(results: Path) -> list[Path]:
    """Each collected reproduction's predictions/<dataset>/<arch> folders. A folder without run.json
    is a reproduction still running (scripts/reproduce.py writes run.json last, when it collects;
    its logits are committed as it goes): no summary to recompute yet, so it is left out. One
    collected in part (run.json `status: running`, `pending`) leaves out its pending datasets;
    every other folder must have its summary."""
    dirs = []
    for d in sorted(results.glob("*/predictions/*/*/dense")):
        arch, result = d.parent, d.parents[3]
        if not (result / "run.json").is_file():
            continue
        run = json.loads((result / "run.json").read_text())
        if run.get("status") == "running" and arch.parent.name in run.get("pending", []):
            continue
        assert (result / arch.parent.name / arch.name / "summary.json").is_file(), f"{arch}: logits without a summary"
        dirs.append(arch)
    return dirs


def check_reproduces(arch_dir: Path, out: Path) -> None:
    """`pie-mlops compare --predictions` on a committed reproduction's logits gives its summary's
    pie_share for every group, exactly (the CLI, as a reader would run it)."""
    import yaml

    result = arch_dir.parents[2]
    summary = json.loads((result / arch_dir.parent.name / arch_dir.name / "summary.json").read_text())
    compare = yaml.safe_load((result / f"params-{arch_dir.parent.name}.yaml").read_text())["compare"]
    exe = Path(sys.executable).parent / "pie-mlops"
    subprocess.run([str(exe), "-q", "compare", "--predictions", str(arch_dir), "--out", str(out),
                    "--split", compare["split"], "--min-seeds", str(compare["min_seeds"]),
                    "--tie-rule", compare["tie_rule"]], check=True)
    got = json.loads((out / "summary.json").read_text())
    for group, row in summary.items():
        if isinstance(row, dict) and "pie_share" in row:
            assert got[group]["pie_share"] == row["pie_share"], group


def test_a_reproduction_without_run_json_is_skipped_and_a_finished_one_checked(tmp_path):
    results = tmp_path / "results"
    for name in ("done", "running"):  # the same logits; only "done" has been collected
        _study(results / name / "predictions" / "toy" / "bilstm", seeds=3)
    done = results / "done"
    summary = compare_files(done / "predictions" / "toy" / "bilstm", tmp_path / "out", min_seeds=2).summary
    (done / "toy" / "bilstm").mkdir(parents=True)
    (done / "toy" / "bilstm" / "summary.json").write_text(json.dumps(summary))
    (done / "params-toy.yaml").write_text("compare: {split: test, min_seeds: 2, tie_rule: probability}\n")
    (done / "run.json").write_text("{}")
    assert committed_arch_dirs(results) == [done / "predictions" / "toy" / "bilstm"]
    _study(done / "predictions" / "toy@later" / "bilstm", seeds=1)  # collected in part: toy@later still runs
    (done / "run.json").write_text(json.dumps({"status": "running", "pending": ["toy@later"]}))
    assert committed_arch_dirs(results) == [done / "predictions" / "toy" / "bilstm"]
    (done / "run.json").write_text("{}")  # collected as finished, yet toy@later has no summary: caught
    with pytest.raises(AssertionError, match="toy@later/bilstm: logits without a summary"):
        committed_arch_dirs(results)
    (done / "run.json").write_text(json.dumps({"status": "running", "pending": ["toy@later"]}))
    check_reproduces(done / "predictions" / "toy" / "bilstm", tmp_path / "check")
    summary["magnitude-ft@0.50"]["pie_share"] += 0.01  # a summary its logits do not give: caught
    (done / "toy" / "bilstm" / "summary.json").write_text(json.dumps(summary))
    with pytest.raises(AssertionError, match="magnitude-ft@0.50"):
        check_reproduces(done / "predictions" / "toy" / "bilstm", tmp_path / "check2")


COMMITTED = committed_arch_dirs(ROOT / "docs" / "results")


@pytest.mark.parametrize("arch_dir", COMMITTED, ids=[str(d.relative_to(ROOT)) for d in COMMITTED])
def test_committed_logits_reproduce_the_committed_pie_shares(arch_dir, tmp_path):
    check_reproduces(arch_dir, tmp_path)


GATED = sorted(p.parent for p in (ROOT / "docs" / "results").glob("*/run.json") if "dense_gate" in json.loads(p.read_text()))


@pytest.mark.parametrize("result", GATED, ids=[d.name for d in GATED])
def test_every_listed_dense_seed_beats_the_majority_class_by_the_gate_with_no_override(result):
    """Issue 27's acceptance: each dense seed in run.json beats the trivial baseline by >= 0.05, as
    recomputed from its committed logits, and no params file lowers the gate."""
    import yaml

    run = json.loads((result / "run.json").read_text())
    for key, archs in run["dense_gate"].items():
        params = yaml.safe_load((result / f"params-{key}.yaml").read_text())
        assert params["compare"]["min_gain_over_baseline"] >= 0.05, key
        for arch, gate in archs.items():
            assert gate["passed"] and gate["min_gain"] >= 0.05, (key, arch)
            assert dense_gate(result / "predictions" / key / arch, gate["min_gain"], gate["split"]) == gate, (key, arch)
