"""Great-expectations checks on per-example predictions, run before any comparison.

The comparison is only as good as its inputs: every model must cover exactly the split's
example ids, with finite logits, one per class; every group needs enough seeds; and dense
runs must come from the current data version. With a `baseline`, each dense model must also
beat the trivial baseline (pie_mlops/compare/baseline.py) by a margin: a model that learned
nothing makes every PIE and champion after it noise. Each check is judged by a real GX validation
over a small per-model (or per-group) frame, indexed by a readable key ("dense/s3"), so a
failure names the models at fault. The suites and their Checkpoint
(`<dataset>.<arch>.predictions`) live in the GX project beside the data gate's
(pie_mlops/data/gx_project.py).
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd

from pie_mlops.util.atomic import atomic_dir, write_text
from pie_mlops.data.gx_project import run_checkpoint
from pie_mlops.data.quality import Check, _entry  # the data gate's check and report rows


def build_frames(predictions: pd.DataFrame, expected_ids: list[str], n_classes: int,
                 md5s: dict[tuple[str, int], str] | None = None) -> dict[str, pd.DataFrame]:
    """Per-model and per-group frames for the checks; pure pandas.

    `predictions`: long frame of one split (group, seed, example_id, logits). `md5s`: the
    data_md5 tag per (group, seed) when the predictions come from MLflow runs."""
    expected = set(map(str, expected_ids))
    rows = []
    for (group, seed), df in predictions.groupby(["group", "seed"], sort=True):
        ids = df["example_id"].astype(str)
        widths = np.fromiter((len(v) for v in df["logits"]), dtype=np.int64, count=len(df))
        flat = np.concatenate([np.asarray(v, dtype=np.float64) for v in df["logits"]]) if len(df) else np.array([])
        # Counts, not a verdict: a model covers the split exactly when it has one row per
        # example and that many distinct ids of the split (the expectations say so).
        row = {"key": f"{group}/s{int(seed)}", "group": group, "n_rows": int(len(ids)),
               "n_split_ids": int(ids[ids.isin(expected)].nunique()),
               "n_nonfinite": int((~np.isfinite(flat)).sum()),
               "n_wrong_width": int((widths != n_classes).sum())}
        if md5s is not None:
            row["data_md5"] = md5s.get((group, int(seed)), "missing")
        rows.append(row)
    models = pd.DataFrame(rows)
    models.index = pd.Index(models.pop("key").to_numpy(dtype=object), name=None)  # unnamed: see quality.py
    seeds = models.groupby("group").size()
    groups = pd.DataFrame({"n_seeds": seeds.to_numpy()}, index=pd.Index(seeds.index.to_numpy(dtype=object)))
    return {"models": models, "groups": groups}


def baseline_frame(baseline: dict) -> pd.DataFrame:
    """One row per dense model: its gain over the baseline (-1 when it could not be scored,
    so that it fails: GX skips NaN cells)."""
    scores = baseline["scores"]
    gains = [s - baseline["value"] if np.isfinite(s) else -1.0 for s in scores.values()]
    return pd.DataFrame({"gain": np.asarray(gains, dtype=np.float64)},
                        index=pd.Index(np.asarray(list(scores), dtype=object)))


def plan_checks(n_classes: int, min_seeds: int, current_md5: str | None,
                baseline: dict | None = None, expected_ids: list | tuple = ()) -> list[Check]:
    n = len(expected_ids)
    checks = [
        Check("covers_split", "models", "ExpectColumnValuesToBeBetween", {"column": "n_rows", "min_value": n,
              "max_value": n}, f"every model has one prediction per example of the split ({n})", column="example_id"),
        Check("covers_split_ids", "models", "ExpectColumnValuesToBeBetween", {"column": "n_split_ids", "min_value": n,
              "max_value": n}, f"every model predicts all {n} example ids of the split", column="example_id"),
        Check("logits_finite", "models", "ExpectColumnValuesToBeBetween",
              {"column": "n_nonfinite", "min_value": 0, "max_value": 0}, "every logit is finite", column="logits"),
        Check("logits_per_class", "models", "ExpectColumnValuesToBeBetween",
              {"column": "n_wrong_width", "min_value": 0, "max_value": 0},
              f"each example has {n_classes} logits, one per class", column="logits"),
        Check("enough_seeds", "groups", "ExpectColumnValuesToBeBetween", {"column": "n_seeds", "min_value": min_seeds},
              f"every group has at least {min_seeds} seeds", column="seed"),
    ]
    if current_md5 is not None:
        checks.append(Check("current_data_version", "models", "ExpectColumnValuesToBeInSet",
                            {"column": "data_md5", "value_set": [current_md5]},
                            f"every model was trained on the current data (data.dvc md5 {current_md5})",
                            column="data_md5"))
    if baseline is not None:
        checks.append(Check("dense_beats_baseline", "baseline", "ExpectColumnValuesToBeBetween",
                            {"column": "gain", "min_value": float(baseline["min_gain"])},
                            f"every dense model beats {baseline['name']} ({baseline['value']:.4f}) by at least "
                            f"{float(baseline['min_gain']):g}", column="logits"))
    return checks


def validate_predictions(predictions: pd.DataFrame, expected_ids: list[str], n_classes: int, min_seeds: int,
                         report_dir: Path, *, md5s: dict | None = None, current_md5: str | None = None,
                         baseline: dict | None = None, sample_ids: int = 5, name: str = "predictions",
                         gx_root: Path | None = None) -> dict:
    """Run the checks; write `report_dir/result.json` and `report_dir/data_docs/`; return the result.

    `success` is False when any check failed (all are critical: a comparison over bad
    predictions would be wrong, not merely weaker). `baseline`: {name, value, min_gain,
    scores: {"dense/s<seed>": score}} adds the dense_beats_baseline check. `name`: the GX
    Checkpoint (`<dataset>.<arch>.predictions` from compare), in the GX project of `gx_root`
    (default: the working directory's)."""
    report_dir = Path(report_dir)
    frames = build_frames(predictions, expected_ids, n_classes, md5s)
    if baseline is not None:
        frames["baseline"] = baseline_frame(baseline)
    checks = plan_checks(n_classes, min_seeds, current_md5 if md5s is not None else None, baseline,
                         [str(i) for i in expected_ids])
    with atomic_dir(report_dir / "data_docs") as tmp_docs:
        results, gate_ok = run_checkpoint(Path(gx_root or "."), name, frames, checks, tmp_docs, sample_ids)
    entries = [_entry(c, r, sample_ids) for c, r in zip(checks, results)]
    summary = {"success": bool(gate_ok), "n_checks": len(entries),
               "n_failed": sum(not e["success"] for e in entries), "n_models": int(len(frames["models"])),
               "checked_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
               "checks": entries, "data_docs": "data_docs/index.html"}
    if baseline is not None:
        summary["baseline"] = {k: baseline[k] for k in ("name", "value", "min_gain")}
        summary["baseline"]["scores"] = {k: (float(v) if np.isfinite(v) else None)
                                         for k, v in baseline["scores"].items()}
    write_text(report_dir / "result.json", json.dumps(summary, indent=2, sort_keys=True) + "\n")
    return summary
