"""Inference speed of structurally pruned MiniLM against the dense model (docs/design.md §6).

Dense, structured 30/50/70 % (heads and FFN neurons removed, magnitude, per layer) and
unstructured 50 % (the 50 % smallest |w| of every Linear zeroed, shapes unchanged) predict
the same Rotten Tomatoes test texts through our real path, training.predict_logits. Rounds
are interleaved (the order rotates every round) and each model's median round is compared,
so a slow spell on this shared 2-core machine hits every model alike.

Run from the repository root:  flock /tmp/bench.lock .venv/bin/python bench/structured_speedup.py
The last stdout line is JSON: speedup_30, speedup_50, speedup_70, unstructured_50.
"""

from __future__ import annotations

import copy
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

for _k, _v in {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "HF_HUB_DISABLE_TELEMETRY": "1",
               "MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true", "DVC_NO_ANALYTICS": "1"}.items():
    os.environ.setdefault(_k, _v)

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import torch  # noqa: E402

N_TEXTS, ROUNDS, BATCH = 512, 5, 128
FRACTIONS = (0.3, 0.5, 0.7)
DATA = Path("data/rotten_tomatoes/test.parquet")


def unstructured(model, fraction: float):
    """Zero the `fraction` smallest |w| of each Linear weight (per layer), as masks would; shapes stay."""
    with torch.no_grad():
        for mod in model.modules():
            if isinstance(mod, torch.nn.Linear):
                w = mod.weight
                k = int(round(fraction * w.numel()))
                cut = w.abs().flatten().kthvalue(k).values
                w.masked_fill_(w.abs() <= cut, 0.0)
    return model


def saved_mb(model) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        model.save(tmp)
        return (Path(tmp) / "model.safetensors").stat().st_size / 2**20


def main() -> int:
    if not DATA.is_file():
        print(f"{DATA} is missing: run `.venv/bin/pie-mlops materialize --dataset rotten_tomatoes` first",
              file=sys.stderr)
        return 2
    from transformers.utils import logging as hf_logging

    from pie_mlops.models import build_model, load_model
    from pie_mlops.pruning.structured import prune_structured
    from pie_mlops.jobs.training import predict_logits

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    torch.set_num_threads(2)
    df = pd.read_parquet(DATA)
    df = df.sample(n=min(N_TEXTS, len(df)), random_state=0).reset_index(drop=True)

    dense = build_model("bert", 2, seed=0)
    models = {"dense": dense}
    for f in FRACTIONS:
        models[f"structured {f:.0%}"] = m = copy.deepcopy(dense)
        prune_structured(m, f)
    models["unstructured 50%"] = unstructured(copy.deepcopy(dense), 0.5)

    # exactness: the 50 % model reloaded from disk predicts bit for bit the same
    s50 = models["structured 50%"]
    with tempfile.TemporaryDirectory() as tmp:
        s50.save(tmp)
        same = np.array_equal(predict_logits(load_model(tmp), df, batch_size=BATCH),
                              predict_logits(s50, df, batch_size=BATCH))

    names = list(models)
    for name in names:  # warm-up: tokenisation cache, allocator, oneDNN kernels
        predict_logits(models[name], df, batch_size=BATCH)
    times = {name: [] for name in names}
    for r in range(ROUNDS):
        for name in names[r % len(names):] + names[:r % len(names)]:
            start = time.perf_counter()
            predict_logits(models[name], df, batch_size=BATCH)
            times[name].append(time.perf_counter() - start)

    med = {name: statistics.median(t) for name, t in times.items()}
    speed = {name: med["dense"] / med[name] for name in names}
    print(f"MiniLM inference, {len(df)} Rotten Tomatoes test texts, batch {BATCH}, "
          f"{torch.get_num_threads()} threads, median of {ROUNDS} interleaved rounds")
    print(f"{'model':<18} {'ex/s':>8} {'speedup':>8} {'params':>12} {'saved MB':>9} {'spread':>7}")
    for name in names:
        m = models[name]
        spread = (max(times[name]) - min(times[name])) / med[name]
        print(f"{name:<18} {len(df) / med[name]:>8.1f} {speed[name]:>7.2f}x "
              f"{sum(p.numel() for p in m.parameters()):>12,} {saved_mb(m):>9.1f} {spread:>6.0%}")
    s = s50.structure
    print(f"structured 50%: heads per layer {s['heads']}, FFN {s['intermediate']}; "
          f"save -> load predicts identically: {same}")
    print(json.dumps({"speedup_30": round(speed["structured 30%"], 3),
                      "speedup_50": round(speed["structured 50%"], 3),
                      "speedup_70": round(speed["structured 70%"], 3),
                      "unstructured_50": round(speed["unstructured 50%"], 3)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
