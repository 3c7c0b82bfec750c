"""Benchmark: the comparison, ours against the reference style, on the same synthetic predictions.

2 groups x 30 seeds x 25,000 examples x 2 classes (issue 5), one file per model.
- Reference (the paper's code): each model's logits written with np.savetxt as CSV, read back
  with np.genfromtxt, votes counted as one-hot sums (argmax -> one-hot -> sum -> argmax, so a
  tie goes to the lowest index).
- Ours: the predictions contract in Parquet (predictions_table + write_predictions), read by
  file-mode compare's loader (pyarrow, logits flattened straight into numpy), and our core
  with the full tie rule (mean probabilities), flags and per-subset metrics.
Both sides run in this process on the same arrays, interleaved, best of --repeats.
Last stdout line: {"core_s", "e2e_ratio", "peak_rss_gib"} (docs/design.md §6).
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from pie_mlops.compare.pies import compare  # noqa: E402
from pie_mlops.compare.predictions import predictions_table, write_predictions  # noqa: E402
from pie_mlops.compare.files import load_predictions_dir  # noqa: E402

GROUPS = ("dense", "magnitude-os@0.90")


def synthetic(n_seeds: int, n: int, seed: int = 0) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, n)
    signal = np.where(labels[:, None] == np.arange(2)[None], 1.0, -1.0)
    logits = {}
    for g, noise in zip(GROUPS, (1.0, 2.0)):
        logits[g] = (signal[None] + rng.normal(0, noise, (n_seeds, n, 2))).astype(np.float32)
    return labels, logits


def reference(root: Path, labels: np.ndarray, logits: dict) -> tuple[dict, np.ndarray]:
    times = {}
    t = time.perf_counter()
    for g, z in logits.items():
        for s, m in enumerate(z):
            np.savetxt(root / f"{g}_{s}.csv", m, delimiter=",")
    times["write"] = time.perf_counter() - t
    t = time.perf_counter()
    read = {g: np.stack([np.genfromtxt(root / f"{g}_{s}.csv", delimiter=",") for s in range(len(z))])
            for g, z in logits.items()}
    times["read"] = time.perf_counter() - t
    t = time.perf_counter()
    modal = {}
    for g, z in read.items():  # retrieve_preds: one-hot votes summed over models
        onehot = np.eye(z.shape[-1])[z.argmax(-1)]
        modal[g] = onehot.sum(0).argmax(-1)
    pies = modal[GROUPS[0]] != modal[GROUPS[1]]
    times["core"] = time.perf_counter() - t
    return times, np.stack([modal[g] for g in GROUPS]), pies


def ours(root: Path, labels: np.ndarray, logits: dict) -> tuple[dict, np.ndarray]:
    times = {}
    df = pd.DataFrame({"example_id": [f"ex{i:06d}" for i in range(len(labels))], "label": labels})
    t = time.perf_counter()
    for g, z in logits.items():
        for s, m in enumerate(z):
            table = predictions_table(df, m, split="test", group=g, seed=s, task="single_label")
            write_predictions(table, root / g.replace("@", "-") / f"s{s}.parquet")
    times["write"] = time.perf_counter() - t
    t = time.perf_counter()
    stacked = load_predictions_dir(root, "test")
    times["read"] = time.perf_counter() - t
    t = time.perf_counter()
    result = compare(stacked, min_seeds=3)
    times["core"] = time.perf_counter() - t
    return times, np.stack([result.modal[g].label for g in GROUPS]), result.flags[GROUPS[1]]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=30)
    ap.add_argument("--examples", type=int, default=25_000)
    ap.add_argument("--repeats", type=int, default=2, help="best of this many interleaved runs per side")
    ap.add_argument("--small", action="store_true", help="5 seeds x 2,000 examples: a quick check")
    args = ap.parse_args()
    if args.small:
        args.seeds, args.examples = 5, 2_000
    labels, logits = synthetic(args.seeds, args.examples)
    best = {"reference": {}, "ours": {}}
    for _ in range(args.repeats):
        for name, fn in (("reference", reference), ("ours", ours)):
            root = Path(tempfile.mkdtemp(prefix=f"bench-{name}-"))
            try:
                times, modal, pies = fn(root, labels, logits)
            finally:
                shutil.rmtree(root, ignore_errors=True)
            for k, v in times.items():
                best[name][k] = min(v, best[name].get(k, np.inf))
            best[name]["modal"], best[name]["pies"] = modal, pies
    for side in best.values():
        side["total"] = side["write"] + side["read"] + side["core"]
    ratio = best["reference"]["total"] / best["ours"]["total"]
    differ = int((best["reference"]["modal"] != best["ours"]["modal"]).sum())
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB -> GiB
    print(f"{len(GROUPS)} groups x {args.seeds} seeds x {args.examples:,} examples x 2 classes, one file per model")
    print(f"{'':<11}{'write s':>10}{'read s':>10}{'core s':>10}{'total s':>10}")
    for name, t in best.items():
        print(f"{name:<11}{t['write']:>10.3f}{t['read']:>10.3f}{t['core']:>10.4f}{t['total']:>10.3f}")
    print(f"ratios (reference / ours): write {best['reference']['write'] / best['ours']['write']:.1f}x, "
          f"read {best['reference']['read'] / best['ours']['read']:.1f}x, "
          f"core {best['reference']['core'] / best['ours']['core']:.2f}x, end to end {ratio:.1f}x (goal >= 20x)")
    print(f"our core: {best['ours']['core']:.4f} s (goal <= 0.2 s; it includes the tie rule, flags and "
          f"per-subset metrics); peak RSS {rss:.2f} GiB")
    print(f"modal labels differing from the reference: {differ} of {labels.size * len(GROUPS)} "
          f"(vote ties only: the reference takes the lowest index, we the highest mean probability); "
          f"PIEs: reference {int(best['reference']['pies'].sum())}, ours {int(best['ours']['pies'].sum())}")
    print(json.dumps({"core_s": round(best["ours"]["core"], 4), "e2e_ratio": round(ratio, 2),
                      "peak_rss_gib": round(rss, 3)}))


if __name__ == "__main__":
    main()
