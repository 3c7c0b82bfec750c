"""Quantized against full-precision models on the CPU, side by side in one run (issue 31; docs/quantization.md).

MiniLM and the GloVe BiLSTM, each briefly trained on Rotten Tomatoes (`--seeds` seeds), predict
the same test texts in fp32 and in every quantized form of pie_mlops/models/quantize.py, through
the real path (training.predict_logits, batch 32 as the prune stage times latency). Rounds are
interleaved (the order rotates every round) and each form's median round is compared with fp32's.

- `latency_ratio`: fp32 seconds / quantized seconds (goal >= 1.5 for MiniLM int8-dyn);
- `size_ratio`: fp32 MB / quantized MB (deployable weights, models/quantize.model_mb);
- `agreement`: share of (seed, example) predictions equal to fp32's;
- `exemplar_share`: share of examples whose modal label over the seeds differs from fp32's
  (the compression-identified exemplars; with one seed, 1 - agreement).
A form without CPU kernels (fp8) is skipped with one line.

Run from the repository root:  flock /tmp/bench.lock .venv/bin/python bench/quantize_speed.py
The last stdout line is JSON: latency_ratio, size_ratio, agreement, exemplar_share (MiniLM
int8-dyn), build_s (quantizing one MiniLM, seconds), and `forms`: {arch: {form: those four}}.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import statistics
import sys
import time
from pathlib import Path

for _k, _v in {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "HF_HUB_DISABLE_TELEMETRY": "1",
               "MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true", "DVC_NO_ANALYTICS": "1"}.items():
    os.environ.setdefault(_k, _v)

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import torch  # noqa: E402

DATA = Path("data/rotten_tomatoes")
BATCH = 32  # the prune stage's latency batch (prune.latency_batch)
TRAIN = {"bert": (300, 1, 5e-5), "bilstm": (2000, 2, 5e-3)}  # examples, epochs, lr: a quick, real model


def trained(arch: str, seed: int, train_df: pd.DataFrame):
    from pie_mlops.models import build_model
    from pie_mlops.jobs.training import TrainConfig, train

    n, epochs, lr = TRAIN[arch]
    model = build_model(arch, 2, seed=seed)
    train(model, train_df.sample(n=min(n, len(train_df)), random_state=seed), None,
          TrainConfig(epochs=epochs, batch_size=16, lr=lr, seed=seed, progress=False, device="cpu"))
    return model.eval()


def measure(arch: str, seeds: int, rounds: int, splits: dict, texts: int) -> tuple[dict, float]:
    from pie_mlops.models.quantize import METHODS, model_mb, quantize, why_not_runs
    from pie_mlops.compare.pies import modal_labels
    from pie_mlops.jobs.training import predict_logits

    test = splits["test"]
    df = test if not texts or texts >= len(test) else test.sample(n=texts, random_state=0).reset_index(drop=True)
    fp32 = [trained(arch, s, splits["train"]) for s in range(seeds)]
    forms, build = {"fp32": fp32}, 0.0
    for method in METHODS:
        start = time.perf_counter()
        models = [quantize(copy.deepcopy(m), method) for m in fp32]
        build = build if method != "int8-dyn" else (time.perf_counter() - start) / seeds
        why = why_not_runs(lambda models=models: predict_logits(models[0], df.head(2), device="cpu"))
        if why:
            print(f"{arch} {method}: skipped, it does not run on this CPU ({why})")
            continue
        forms[method] = models
    names = list(forms)
    logits = {n: np.stack([predict_logits(m, df, batch_size=BATCH, device="cpu") for m in forms[n]]) for n in names}
    times = {n: [] for n in names}
    for r in range(rounds):  # seed 0's model of each form, interleaved, order rotating
        for n in names[r % len(names):] + names[:r % len(names)]:
            start = time.perf_counter()
            predict_logits(forms[n][0], df, batch_size=BATCH, device="cpu")
            times[n].append(time.perf_counter() - start)
    med = {n: statistics.median(t) for n, t in times.items()}
    ref_pred, ref_modal = logits["fp32"].argmax(-1), modal_labels(logits["fp32"]).label
    out = {}
    print(f"{arch}: {len(df)} test texts, batch {BATCH}, {seeds} seed(s), median of {rounds} interleaved rounds, "
          f"{torch.get_num_threads()} threads")
    print(f"{'form':<9} {'ex/s':>8} {'latency':>8} {'MB':>8} {'size':>6} {'agree':>7} {'exemplars':>9}")
    for n in names:
        mb = model_mb(forms[n][0])
        row = {"latency_ratio": med["fp32"] / med[n], "size_ratio": model_mb(forms["fp32"][0]) / mb,
               "agreement": float((logits[n].argmax(-1) == ref_pred).mean()),
               "exemplar_share": float((modal_labels(logits[n]).label != ref_modal).mean())}
        print(f"{n:<9} {len(df) / med[n]:>8.1f} {row['latency_ratio']:>7.2f}x {mb:>8.1f} {row['size_ratio']:>5.2f}x "
              f"{row['agreement']:>7.3f} {row['exemplar_share']:>9.3f}")
        if n != "fp32":
            out[n] = {k: round(v, 4) for k, v in row.items()}
    return out, build


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=2, help="models per architecture (default 2)")
    ap.add_argument("--rounds", type=int, default=3, help="interleaved timing rounds (default 3)")
    ap.add_argument("--arch", action="append", choices=["bert", "bilstm"], help="default: both")
    ap.add_argument("--texts", type=int, default=0,
                    help="test texts to predict (default 0: the whole test split; a sample of N otherwise)")
    ap.add_argument("--threads", type=int, default=2, help="torch threads (default 2; 1 on a loaded machine)")
    args = ap.parse_args()
    if not (DATA / "test.parquet").is_file():
        print(f"{DATA}/test.parquet is missing: run `.venv/bin/pie-mlops materialize --dataset rotten_tomatoes` first",
              file=sys.stderr)
        return 2
    if args.seeds < 1 or args.rounds < 1 or args.threads < 1 or args.texts < 0:
        print("--seeds, --rounds and --threads must be >= 1, --texts >= 0", file=sys.stderr)
        return 2
    from transformers.utils import logging as hf_logging

    from pie_mlops.data.contract import read_split

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    torch.set_num_threads(args.threads)
    splits = {s: read_split(DATA, s) for s in ("train", "test")}
    forms, builds = {}, {}
    for arch in args.arch or ["bert", "bilstm"]:
        forms[arch], builds[arch] = measure(arch, args.seeds, args.rounds, splits, args.texts)
    head = forms.get("bert", forms.get("bilstm", {})).get("int8-dyn", {})
    print(json.dumps({**head, "build_s": round(builds.get("bert", 0.0), 3), "forms": forms}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
