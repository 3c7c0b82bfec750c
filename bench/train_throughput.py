"""Training and prediction throughput: our loop vs a reference-style loop padded to 128 tokens.

Both sides use the packaged MiniLM (SDPA attention), the same Rotten Tomatoes examples,
batch size and weights (reset before every timed training pass), and run interleaved in
one process, alternating which goes first. Ours is `pie_mlops.training` as shipped:
tokenised once (cached), length-bucketed dynamic padding, no mask when a batch has no
padding, fused AdamW. The reference tokenises every batch and pads it to 128 tokens.
    .venv/bin/python bench/train_throughput.py [--n 256] [--rounds 3] [--threads N]
Last stdout line: one JSON object with the DESIGN.md §6 keys.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import resource
import sys
import time
from pathlib import Path

for key, value in {"HF_HUB_OFFLINE": "1", "HF_HUB_DISABLE_TELEMETRY": "1", "HF_DATASETS_OFFLINE": "1",
                   "MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true", "DVC_NO_ANALYTICS": "1"}.items():
    os.environ.setdefault(key, value)

import numpy as np
import torch
import transformers

transformers.logging.set_verbosity_error()  # the "classifier weights newly initialised" notice

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pie_mlops.data.contract import read_split  # noqa: E402
from pie_mlops.models import build_model  # noqa: E402
from pie_mlops.training import TrainConfig, encode_split, predict_logits, train  # noqa: E402


def reference_train(model, df, batch_size: int, seed: int, max_length: int = 128) -> None:
    """The reference code's way: tokenise each batch, pad to a fixed length, plain AdamW."""
    tok = model.tokenizer
    model.train()
    order = np.random.default_rng(seed).permutation(len(df))
    steps = -(-len(df) // batch_size)
    opt = torch.optim.AdamW(model.parameters(), lr=5e-5, weight_decay=0.01)
    warm = max(1, int(0.1 * steps))
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min((s + 1) / warm, (steps - s) / max(steps - warm, 1)))
    texts, labels = df["text"].tolist(), torch.tensor(df["label"].to_numpy())
    for start in range(0, len(df), batch_size):
        rows = order[start:start + batch_size]
        batch = tok([texts[i] for i in rows], padding="max_length", max_length=max_length, truncation=True,
                    return_tensors="pt")
        loss = torch.nn.functional.cross_entropy(model(**batch), labels[rows])
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        opt.zero_grad()


@torch.no_grad()
def reference_predict(model, df, batch_size: int, max_length: int = 128) -> None:
    model.eval()
    texts = df["text"].tolist()
    for start in range(0, len(df), batch_size):
        batch = model.tokenizer(texts[start:start + batch_size], padding="max_length", max_length=max_length,
                                truncation=True, return_tensors="pt")
        model(**batch)


def peak_flops() -> tuple[float, float]:
    """fp32 peak of this CPU: cores x 32 FLOP/cycle (2 AVX2 FMA units x 8 lanes x 2) x clock."""
    mhz = [float(line.split(":")[1]) for line in Path("/proc/cpuinfo").read_text().splitlines()
           if line.startswith("cpu MHz")]
    clock = (max(mhz) if mhz else 2000.0) * 1e6
    return torch.get_num_threads() * 32 * clock, clock


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=256, help="Rotten Tomatoes training examples per pass")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (each side once per round)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--predict-batch-size", type=int, default=None,
                        help="batch size of OUR prediction pass (default: --batch-size, the reference's; "
                             "the pipeline itself predicts in batches of 128)")
    parser.add_argument("--threads", type=int, default=os.cpu_count(), help="torch intra-op threads")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    df = read_split(ROOT / "data" / "rotten_tomatoes", "train").sample(n=args.n, random_state=0).reset_index(drop=True)
    model = build_model("bert", 2, seed=0)
    init = copy.deepcopy(model.state_dict())
    enc = encode_split(model, df)  # tokenise once, as training does; timed passes hit the cache
    real_tokens = int(enc.lengths.sum())
    cfg = lambda seed: TrainConfig(epochs=1, batch_size=args.batch_size, seed=seed, progress=False)

    # untimed warm-up of both paths (first calls allocate and pick kernels)
    warm = df.head(2 * args.batch_size)
    train(model, warm, None, cfg(0))
    reference_train(model, warm, args.batch_size, 0)
    t = {"ours_train": [], "ref_train": [], "ours_predict": [], "ref_predict": []}
    for r in range(args.rounds):
        sides = [("ours", lambda: train(model, df, None, cfg(r)),
                  lambda: predict_logits(model, df, args.predict_batch_size or args.batch_size)),
                 ("ref", lambda: reference_train(model, df, args.batch_size, r),
                  lambda: reference_predict(model, df, args.batch_size))]
        for name, fit, predict in sides if r % 2 == 0 else sides[::-1]:
            model.load_state_dict(init)
            t[f"{name}_train"].append(timed(fit))
            t[f"{name}_predict"].append(timed(predict))

    # Best of the rounds, as timeit does: on a shared machine other load only ever adds time,
    # and both sides get the same treatment. The medians are printed too.
    ex_s = {k: args.n / min(v) for k, v in t.items()}
    med = {k: args.n / float(np.median(v)) for k, v in t.items()}
    n_all = sum(p.numel() for p in model.parameters())
    n_dense = n_all - sum(p.numel() for n, p in model.named_parameters() if "embeddings" in n)
    peak, clock = peak_flops()
    tok_s = ex_s["ours_train"] * real_tokens / args.n
    share = 6 * n_dense * tok_s / peak  # embedding lookups do no multiply-adds, so they are not counted
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB -> GiB

    print(f"MiniLM on rotten_tomatoes: {args.n} examples, batch {args.batch_size}, {args.rounds} rounds, "
          f"{torch.get_num_threads()} threads, mean {real_tokens / args.n:.1f} real tokens/example")
    print(f"{'':10}{'ours ex/s':>12}{'padded-128 ex/s':>18}{'ratio':>8}{'median ratio':>15}")
    for phase in ("train", "predict"):
        ours, ref = ex_s[f"ours_{phase}"], ex_s[f"ref_{phase}"]
        print(f"{phase:10}{ours:12.1f}{ref:18.1f}{ours / ref:8.2f}{med[f'ours_{phase}'] / med[f'ref_{phase}']:15.2f}")
    print(f"training FLOP/s: 6 x {n_dense / 1e6:.1f}M non-embedding params x {tok_s:.0f} real tokens/s = "
          f"{6 * n_dense * tok_s / 1e9:.1f} GFLOP/s; fp32 peak {peak / 1e9:.0f} GFLOP/s "
          f"({torch.get_num_threads()} cores x 32 x {clock / 1e9:.2f} GHz) -> {share:.1%} "
          f"(6 x all {n_all / 1e6:.1f}M params would claim {6 * n_all * tok_s / peak:.0%}, an overcount: lookups do no FLOPs)")
    print(f"peak RSS: {rss:.2f} GiB")
    print(json.dumps({"train_ratio": round(ex_s["ours_train"] / ex_s["ref_train"], 3),
                      "predict_ratio": round(ex_s["ours_predict"] / ex_s["ref_predict"], 3),
                      "train_ex_s": round(ex_s["ours_train"], 2), "predict_ex_s": round(ex_s["ours_predict"], 2),
                      "peak_share": round(share, 4), "peak_rss_gib": round(rss, 3)}))


if __name__ == "__main__":
    main()
