"""Seed-parallel training against one model at a time: BiLSTM (and MiniLM through vmap).

BiLSTM: S seeds (default 10) on the same Rotten Tomatoes examples and epochs, each side
building its models from the seeds, training them and predicting the held-out examples:
one at a time with `pie_mlops.jobs.training.train` + `predict_logits` (PyTorch's fused LSTM), and
together with `pie_mlops.jobs.seed_training.train_seeds` + `predict_logits_stacked` (stacked bmm
BiLSTM), and 2 at a time in child processes as `train.seed_processes: 2` does
(pie_mlops/jobs/seed_pool.py). Dropout is off on every side, so they compute the same models up to
float rounding; `agreement` (stacked) and `processes_agreement` are the shares of (seed, example)
predictions identical to one at a time. The sides run in --rounds interleaved rounds, reversing
their order each round; models_per_hour_ratio (stacked) and processes_models_per_hour_ratio are
medians over rounds of (one-at-a-time time / that side's time) within a round. Tracking (the
same per seed either way) is not timed.

MiniLM: there is no seed-parallel MiniLM path in the stage. What `torch.func` gives is measured:
--bert-seeds copies of the packaged MiniLM, stacked with `stack_module_state` and run with
`vmap(functional_call)` over Hugging Face's own forward, training steps on the same batches as S
sequential training steps with our shipping forward (models/fastpath.py). bert_models_per_hour_ratio
is sequential time / vmap time (null with the reason in the table if vmap fails).
    .venv/bin/python bench/seed_parallel.py [--seeds 10] [--n 600] [--epochs 2] [--rounds 2]
        [--bert-seeds 3] [--bert-steps 4] [--threads N] [--device cpu|cuda|auto]
Last stdout line: one JSON object with the docs/design.md §6 keys.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

for key, value in {"HF_HUB_OFFLINE": "1", "HF_HUB_DISABLE_TELEMETRY": "1", "HF_DATASETS_OFFLINE": "1",
                   "MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true", "DVC_NO_ANALYTICS": "1"}.items():
    os.environ.setdefault(key, value)

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pie_mlops.data.sources import rotten_tomatoes
from pie_mlops.models import build_model
from pie_mlops.jobs.seed_training import predict_logits_stacked, train_seeds
from pie_mlops.jobs.training import TrainConfig, encode_split, predict_logits, resolve_device, train


def data(n: int, n_eval: int):
    frame = rotten_tomatoes().frame.sample(n=n + n_eval, random_state=0).reset_index(drop=True)
    frame.insert(0, "example_id", [f"rt-{i}" for i in range(len(frame))])
    frame["text_pair"] = None
    return frame.iloc[:n].reset_index(drop=True), frame.iloc[n:].reset_index(drop=True)


def one_at_a_time(seeds, train_df, eval_df, epochs: int) -> tuple[float, np.ndarray]:
    start, out = time.perf_counter(), []
    for seed in seeds:
        model = build_model("bilstm", 2, seed=seed, dropout=0.0)
        train(model, train_df, None, TrainConfig(epochs=epochs, seed=seed, progress=False))
        out.append(predict_logits(model, eval_df))
    return time.perf_counter() - start, np.stack(out)


def together(seeds, train_df, eval_df, epochs: int) -> tuple[float, np.ndarray]:
    start = time.perf_counter()
    models = [build_model("bilstm", 2, seed=seed, dropout=0.0) for seed in seeds]
    _, stack = train_seeds(models, seeds, train_df, None, TrainConfig(epochs=epochs, progress=False))
    logits = predict_logits_stacked(stack, eval_df, models[0])
    return time.perf_counter() - start, logits


def processes(seeds, train_df, eval_df, epochs: int, n_proc: int = 2) -> tuple[float, np.ndarray]:
    """The stage's train.seed_processes: the seeds `n_proc` at a time in spawned children, each on
    cores / n_proc intra-op threads; the start of the children is timed too."""
    from pie_mlops.jobs.seed_pool import SeedTask, compute_seeds

    start = time.perf_counter()
    tasks = [SeedTask({"arch": "bilstm", "num_labels": 2, "task": "single_label", "seed": seed, "dropout": 0.0},
                      {"train": train_df, "validation": None, "eval": eval_df}, ("eval",),
                      cfg=TrainConfig(epochs=epochs, seed=seed, progress=False)) for seed in seeds]
    logits = np.stack([out.logits["eval"] for out in compute_seeds(tasks, n_proc)])
    return time.perf_counter() - start, logits


def _sync(device: torch.device) -> None:
    if device.type == "cuda":  # kernels run asynchronously: time what finished
        torch.cuda.synchronize(device)


def bert_vmap(n_seeds: int, steps: int, train_df, eval_df, device: torch.device) -> tuple[float | None, str]:
    """(sequential time / vmap time, note) for `steps` MiniLM training steps of batch 16, and the
    same for predicting eval_df (batch 128) with all seeds at once."""
    import copy

    from torch.func import functional_call, grad, stack_module_state, vmap

    base = build_model("bert", 2, seed=0, max_length=128).to(device)
    models = [copy.deepcopy(base) for _ in range(n_seeds)]
    for seed, m in enumerate(models):  # each seed its own classifier head, as build_model(seed=) gives
        torch.manual_seed(seed)
        m.model.classifier.reset_parameters()
    enc, enc_eval = encode_split(base, train_df), encode_split(base, eval_df)
    eval_rows = [np.arange(i, min(i + 128, len(eval_df))) for i in range(0, len(eval_df), 128)]
    rows = [np.arange(i * 16, (i + 1) * 16) for i in range(steps)]
    y = torch.as_tensor(train_df["label"].to_numpy(), device=device)
    loss_fn = torch.nn.CrossEntropyLoss()
    # fused AdamW on CPU, as the stage; on CUDA foreach, as fused rejected vmap's gradients there
    opt_kw = {"fused": True} if device.type == "cpu" else {"foreach": True}

    def seq() -> float:
        start = time.perf_counter()
        for m in models:
            opt = torch.optim.AdamW(m.parameters(), lr=5e-5, **opt_kw)
            for r in rows:
                loss_fn(m(**m.batch_inputs(enc, r, device)), y[r]).backward()
                opt.step()
                opt.zero_grad(set_to_none=True)
        _sync(device)
        return time.perf_counter() - start

    def seq_predict() -> tuple[float, np.ndarray]:
        start = time.perf_counter()
        with torch.inference_mode():
            out = [torch.cat([m.eval()(**m.batch_inputs(enc_eval, r, device)).float() for r in eval_rows])
                   for m in models]
        logits = torch.stack(out).cpu().numpy()
        return time.perf_counter() - start, logits

    hf = [m.model for m in models]
    params, buffers = stack_module_state(hf)
    shell = copy.deepcopy(hf[0]).to("meta")

    def loss_of(p, b, inputs, target):
        return loss_fn(functional_call(shell, (p, b), kwargs=inputs).logits, target)

    step = vmap(grad(loss_of), in_dims=(0, 0, None, None), randomness="different")
    leaves = list(params.values())
    opt = torch.optim.AdamW(leaves, lr=5e-5, **opt_kw)

    def par() -> float:
        start = time.perf_counter()
        for r in rows:
            inputs = base.batch_inputs(enc, r, device)
            grads = step(params, buffers, inputs, y[r])
            for name, p in params.items():
                p.grad = grads[name]
            opt.step()
        _sync(device)
        return time.perf_counter() - start

    def par_predict() -> tuple[float, np.ndarray]:
        forward = vmap(lambda p, b, inputs: functional_call(shell, (p, b), kwargs=inputs).logits,
                       in_dims=(0, 0, None))
        start = time.perf_counter()
        with torch.inference_mode():
            logits = torch.cat([forward(params, buffers, base.batch_inputs(enc_eval, r, device)).float()
                                for r in eval_rows], dim=1).cpu().numpy()
        return time.perf_counter() - start, logits

    def vmapped() -> tuple[float, float]:
        shell.train()
        par()  # warm-up: vmap traces once
        t = par()
        shell.eval()
        par_predict()  # warm-up
        return t, par_predict()[0]

    for m in hf:
        m.train()
    backend = ""
    try:
        t_par, tp_par = vmapped()
    except RuntimeError as exc:
        # CUDA's fused SDPA kernels reject vmap's extra batch dimension ("attn_bias: wrong shape");
        # the math backend takes it, so vmap is measured there and the note says so
        from torch.nn.attention import SDPBackend, sdpa_kernel

        backend = f" (SDPA math backend: the fused kernel failed with {str(exc).splitlines()[0][:60]!r})"
        try:
            with sdpa_kernel([SDPBackend.MATH]):
                t_par, tp_par = vmapped()
        except Exception as exc2:  # noqa: BLE001 - reported, not hidden
            return None, f"vmap over MiniLM failed: {type(exc2).__name__}: {str(exc2).splitlines()[0][:120]}"
    except Exception as exc:  # noqa: BLE001 - reported, not hidden
        return None, f"vmap over MiniLM failed: {type(exc).__name__}: {str(exc).splitlines()[0][:120]}"
    t_seq = seq()
    seq_predict()  # warm-up
    tp_seq, _ = seq_predict()
    return t_seq / t_par, (f"{n_seeds} seeds x {steps} steps (batch 16) on {device.type}: sequential "
                           f"{t_seq:.2f} s, vmap {t_par:.2f} s; predicting {len(eval_df)} examples x {n_seeds} "
                           f"seeds: sequential {tp_seq:.2f} s, vmap {tp_par:.2f} s -> ratio {tp_seq / tp_par:.2f}{backend}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, default=10, help="BiLSTM seeds (0: measure MiniLM alone)")
    ap.add_argument("--n", type=int, default=600, help="training examples")
    ap.add_argument("--n-eval", type=int, default=400, help="predicted examples")
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--bert-seeds", type=int, default=3)
    ap.add_argument("--bert-steps", type=int, default=4)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--device", default="cpu", help="MiniLM's device: cpu, cuda or auto (the BiLSTM sides "
                    "take the stage's own `auto`: the GPU when there is one)")
    args = ap.parse_args()
    if args.device == "cuda" and not torch.cuda.is_available():
        ap.error("--device cuda: torch sees no CUDA device here; use --device cpu (or auto)")
    if args.threads:
        torch.set_num_threads(args.threads)
    seeds = list(range(args.seeds))
    train_df, eval_df = data(args.n, args.n_eval)
    rounds = []
    for r in range(args.rounds if args.seeds else 0):  # --seeds 0: MiniLM alone
        sides = [("one", one_at_a_time), ("together", together), ("processes", processes)]
        got = {name: fn(seeds, train_df, eval_df, args.epochs) for name, fn in (sides if r % 2 == 0 else sides[::-1])}
        (t1, l1), (t2, l2), (t3, l3) = got["one"], got["together"], got["processes"]
        rounds.append({"one_s": t1, "together_s": t2, "ratio": t1 / t2, "processes_s": t3, "processes_ratio": t1 / t3,
                       "agreement": float((l1.argmax(-1) == l2.argmax(-1)).mean()),
                       "processes_agreement": float((l1.argmax(-1) == l3.argmax(-1)).mean()),
                       "max_logit_diff": float(np.abs(l1 - l2).max())})
    def median(key):
        return round(statistics.median(r[key] for r in rounds), 3) if rounds else None

    def least(key):
        return round(min(r[key] for r in rounds), 4) if rounds else None

    bert_ratio, bert_note = bert_vmap(args.bert_seeds, args.bert_steps, train_df, eval_df,
                                              resolve_device(args.device)) if args.bert_seeds else \
        (None, "skipped (--bert-seeds 0)")

    print(f"BiLSTM, {args.seeds} seeds, {args.n} training examples x {args.epochs} epochs, {args.n_eval} predicted, "
          f"dropout off, {torch.get_num_threads()} threads")
    print(f"{'round':>5}  {'one at a time s':>15}  {'seed-parallel s':>15}  {'ratio':>6}  {'models/h one':>12}  "
          f"{'models/h par':>12}  {'agreement':>9}  {'max |dlogit|':>12}")
    for i, r in enumerate(rounds):
        print(f"{i:>5}  {r['one_s']:>15.1f}  {r['together_s']:>15.1f}  {r['ratio']:>6.2f}  "
              f"{3600 * args.seeds / r['one_s']:>12.0f}  {3600 * args.seeds / r['together_s']:>12.0f}  "
              f"{r['agreement']:>9.4f}  {r['max_logit_diff']:>12.2e}")
    print(f"{'round':>5}  {'2 processes s':>15}  {'ratio':>6}  {'models/h':>12}  {'agreement':>9}   "
          f"(train.seed_processes: 2 children, {max(1, (os.cpu_count() or 1) // 2)} thread(s) each)")
    for i, r in enumerate(rounds):
        print(f"{i:>5}  {r['processes_s']:>15.1f}  {r['processes_ratio']:>6.2f}  "
              f"{3600 * args.seeds / r['processes_s']:>12.0f}  {r['processes_agreement']:>9.4f}")
    print(f"MiniLM vmap: {bert_note}" + (f"; training ratio {bert_ratio:.2f}" if bert_ratio else ""))
    print(json.dumps({"models_per_hour_ratio": median("ratio"), "agreement": least("agreement"),
                      "processes_models_per_hour_ratio": median("processes_ratio"),
                      "processes_agreement": least("processes_agreement"),
                      "bert_models_per_hour_ratio": None if bert_ratio is None else round(bert_ratio, 3)}))


if __name__ == "__main__":
    main()
