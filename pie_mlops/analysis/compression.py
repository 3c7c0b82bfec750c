"""Pruning against quantization (compare's `compression.json`, the report's compression section):
each group's size, CPU latency, accuracy and compression-identified exemplars side by side, and
for each quantized group the pruned group nearest to it in size and in latency. Pure: no I/O.

Sizes and latencies are the model runs' own metrics (`model_mb`: the deployable weights, int8 at
one byte and pruned zeros packed; `latency_ms`: the median CPU time of one fixed test batch,
pie_mlops/pruning/apply.py), averaged over a group's seeds. The dense reference comes from the
quantized runs, which measure their dense model beside themselves (`dense_mb`, `dense_latency_ms`).
"""

from __future__ import annotations

import math

import numpy as np

from pie_mlops.config.vocabulary import DENSE, QUANT_BITS, QUANT_PREFIX, compression_of

_STATS = ("pie_share", "pie_share_ci", "n_pies", "pruned_acc_all", "dense_acc_all", "pruned_acc_pie",
          "dense_acc_pie", "pruned_acc_nonpie", "collapsed")


def _mean(values: list) -> float | None:
    ok = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    return sum(ok) / len(ok) if ok else None


def paired_flips(dense_preds: np.ndarray, dense_seeds: list, preds: np.ndarray, seeds: list,
                 n_boot: int = 200, seed: int = 0) -> dict | None:
    """Examples each model predicts differently from the dense model of its own seed (the one it
    was compressed from, for os and quantized groups): a paired count, free of the seed noise
    that modal labels over a few seeds carry. `*_preds`: (models, n) labels or (models, n, C)
    multi-hot. `flip_share` is the mean over the paired seeds; its CI bootstraps the examples."""
    common = [s for s in seeds if s in dense_seeds]
    if not common:
        return None
    diff = np.stack([dense_preds[list(dense_seeds).index(s)] != preds[list(seeds).index(s)] for s in common])
    flips = diff.any(axis=2) if diff.ndim == 3 else diff  # (k, n): multi-label, any label
    rng, n = np.random.default_rng(seed), flips.shape[1]
    boot = [flips[:, rng.integers(0, n, n)].mean() for _ in range(n_boot)]
    return {"flip_share": float(flips.mean()), "flip_share_ci": [float(np.percentile(boot, 2.5)),
                                                                  float(np.percentile(boot, 97.5))],
            "flips_per_seed": [int(v) for v in flips.sum(axis=1)], "paired_seeds": len(common)}


def compression_table(summary: dict, runs: list[dict], flips: dict | None = None) -> dict:
    """{"dense": {model_mb, latency_ms}, "groups": {group: {...}}, "matched": [...]} from a
    summary.json's groups, the model runs ({group, seed, metrics}) behind them and each group's
    `paired_flips`."""
    metrics: dict[str, list[dict]] = {}
    for run in runs:
        metrics.setdefault(run["group"], []).append(run.get("metrics") or {})

    def mean_of(group: str, key: str) -> float | None:
        return _mean([m.get(key) for m in metrics.get(group, [])])

    quant = [g for g in summary if compression_of(g) == "quantization"]
    dense = {"model_mb": _mean([mean_of(g, "dense_mb") for g in quant]),
             "latency_ms": _mean([mean_of(g, "dense_latency_ms") for g in quant])}
    groups = {}
    for group, s in sorted(summary.items()):
        if not isinstance(s, dict) or group == DENSE or "pie_share" not in s:  # noise_floor sits beside the groups
            continue
        kind = compression_of(group)
        row = {"compression": kind, "method": group[len(QUANT_PREFIX):] if kind == "quantization" else
               group.rsplit("@", 1)[0], "model_mb": mean_of(group, "model_mb"),
               "latency_ms": mean_of(group, "latency_ms"), **{k: s.get(k) for k in _STATS},
               **((flips or {}).get(group) or {"flip_share": None, "flip_share_ci": None})}
        if kind == "quantization":
            row["bits"] = QUANT_BITS.get(row["method"])
        else:
            row["sparsity"] = s.get("sparsity")
        for key, ref in (("size_ratio", "model_mb"), ("latency_ratio", "latency_ms")):
            row[key] = dense[ref] / row[ref] if dense[ref] and row[ref] else None  # > 1: smaller, faster
        groups[group] = row
    return {"dense": dense, "groups": groups, "matched": matched(groups)}


def matched(groups: dict) -> list[dict]:
    """For each quantized group, the pruned group nearest to it in model size and the one nearest
    in CPU latency (relative distance), with both groups' exemplar shares and accuracies."""
    pruned = {g: r for g, r in groups.items() if r["compression"] == "pruning" and not r.get("collapsed")}
    out = []
    for group, q in sorted(groups.items()):
        if q["compression"] != "quantization":
            continue
        for axis in ("model_mb", "latency_ms"):
            near = [(abs(r[axis] / q[axis] - 1.0), g) for g, r in pruned.items() if r[axis] and q[axis]]
            if not near:
                continue
            gap, other = min(near)
            p = pruned[other]
            out.append({"quantized": group, "pruned": other, "matched_on": axis, "relative_gap": gap,
                        "quantized_value": q[axis], "pruned_value": p[axis],
                        "quantized_pie_share": q["pie_share"], "pruned_pie_share": p["pie_share"],
                        "quantized_pie_share_ci": q["pie_share_ci"], "pruned_pie_share_ci": p["pie_share_ci"],
                        "quantized_acc_all": q["pruned_acc_all"], "pruned_acc_all": p["pruned_acc_all"],
                        "quantized_flip_share": q["flip_share"], "pruned_flip_share": p["flip_share"],
                        "quantized_flip_share_ci": q["flip_share_ci"], "pruned_flip_share_ci": p["flip_share_ci"]})
    return out
