"""The repro profile's BiLSTM on the full rotten_tomatoes training split: one dense seed, one epoch,
through `pie-mlops train` as the reproduction runs it. before: torch's default intra-op threads,
one per core (what a lone seed trained in the stage's own process got before `train.num_threads`,
as in docs/budget.md's 11.1 examples/s); after: `train.num_threads: {bilstm: 1}` (profiles/repro.yaml).

Each side is the stage in a fresh process with its own scratch MLflow store and predictions
folder, on the effective repro params with only `train.num_threads` changed (and no dense-long
group). Its examples/s is the run's `train_ex_s`: the training loop alone, no prediction or
tracking. The sides alternate within each of --runs rounds (order reversed every round), so a
burst of other work hits both; ratio = after / before in the same round. Each side notes the load
average before it and `others`: the cores other processes kept busy while it ran (/proc/stat less
its own CPU time), which decides `before`: its second thread waits for a free core. `--small N`
adds a side `after_small`: num_threads 1 on N examples (the default study's 2,000), to show that
the rate per example does not depend on the split's size. `--pooled` adds `after_2proc`: seeds 0
and 1 side by side in two one-thread children (`train.seed_processes: 2`, as the reproduction
trains its dense and pruned groups), their examples/s summed: what the machine does per second.
    .venv/bin/python bench/bilstm_threads.py --data-dir data [--runs 2] [--small 2000] [--pooled]
Last stdout line: one JSON object with the docs/design.md §6 keys.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
PIE = str(Path(sys.executable).parent / "pie-mlops")


def _params(tmp: Path, threads, max_train) -> Path:
    out = subprocess.run([PIE, "--profile", "repro", "params"], cwd=ROOT, check=True, capture_output=True,
                         text=True).stdout
    params = yaml.safe_load(out)
    params["train"].update(num_threads={"bert": None, "bilstm": threads}, dense_long_epochs=None,
                           max_train_examples=max_train, predictions_dir=str(tmp / "predictions"))
    path = tmp / "params.yaml"
    path.write_text(yaml.safe_dump(params, sort_keys=False))
    return path


def _busy_s() -> float | None:
    """CPU seconds the whole machine has been busy (Linux /proc/stat; None elsewhere)."""
    try:
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError):
        return None
    return (sum(fields) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")  # all but idle and iowait


def _children_cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def one(threads, data_dir: Path, seeds: str, max_train=None) -> dict:
    """Dense seeds `seeds` (0 or 0,1: two side by side, train.seed_processes), one epoch, in a fresh
    `pie-mlops train`; the examples/s of all of them together, the longest epoch, and the load."""
    from mlflow import MlflowClient

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        uri = f"sqlite:///{tmp}/mlflow.db"
        env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "OMP_", "MKL_"))}
        env.update(MLFLOW_TRACKING_URI=uri, PYTHONPATH=str(ROOT), PYTHONWARNINGS="ignore")
        load, busy, ours = os.getloadavg()[0], _busy_s(), _children_cpu_s()
        start = time.perf_counter()
        subprocess.run([PIE, "-q", "--params", str(_params(tmp, threads, max_train)), "train", "-s", seeds,
                        "--epochs", "1", "--data-dir", str(data_dir.resolve())], cwd=tmp, env=env, check=True,
                       stdout=subprocess.DEVNULL)
        wall = time.perf_counter() - start
        busy_after = _busy_s()
        # the cores other processes kept busy meanwhile: what a second intra-op thread waits on
        others = None if busy is None else max(0.0, (busy_after - busy) - (_children_cpu_s() - ours)) / wall
        client = MlflowClient(tracking_uri=uri)
        runs = client.search_runs([e.experiment_id for e in client.search_experiments()], "tags.stage = 'train'")
        metrics = [run.data.metrics for run in runs]
    return {"train_ex_s": sum(m["train_ex_s"] for m in metrics), "epoch_s": max(m["epoch_s"] for m in metrics),
            "wall_s": wall, "load": load,
            "others_cores": others}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", type=Path, default=ROOT / "data", help="holds rotten_tomatoes/ (materialize)")
    ap.add_argument("--runs", type=int, default=2)
    ap.add_argument("--small", type=int, default=0, help="also num_threads 1 on this many examples (0: not)")
    ap.add_argument("--pooled", action="store_true", help="also seeds 0 and 1 side by side (seed_processes: 2)")
    args = ap.parse_args()
    if not (args.data_dir / "rotten_tomatoes").is_dir():
        sys.exit(f"error: {args.data_dir}/rotten_tomatoes not found; run `pie-mlops materialize` (or --data-dir)")
    import torch

    sides = {"before": (None, None, "0"), "after": (1, None, "0")}
    if args.small:
        sides["after_small"] = (1, args.small, "0")
    if args.pooled:
        sides["after_2proc"] = (1, None, "0,1")
    got = {name: [] for name in sides}
    for r in range(args.runs):
        for name in (list(sides) if r % 2 == 0 else list(sides)[::-1]):
            threads, n, seeds = sides[name]
            got[name].append(one(threads, args.data_dir, seeds, n))
    print(f"torch default intra-op threads here: {torch.get_num_threads()} (cores: {os.cpu_count()})")
    print(f"{'round':>5} {'side':>12} {'ex/s':>8} {'epoch s':>8} {'wall s':>7} {'load1':>6} {'others':>6}")
    for r in range(args.runs):
        for name in sides:
            x = got[name][r]
            others = "n/a" if x["others_cores"] is None else f"{x['others_cores']:.2f}"
            print(f"{r + 1:>5} {name:>12} {x['train_ex_s']:8.1f} {x['epoch_s']:8.1f} {x['wall_s']:7.1f} "
                  f"{x['load']:6.2f} {others:>6}")
        print(f"{r + 1:>5} {'after/before':>12} {got['after'][r]['train_ex_s'] / got['before'][r]['train_ex_s']:8.2f}")
    ratios = [a["train_ex_s"] / b["train_ex_s"] for a, b in zip(got["after"], got["before"])]
    out = {"ex_s_ratio": statistics.median(ratios), "ex_s_ratios": ratios,
           **{f"{name}_ex_s": [x["train_ex_s"] for x in xs] for name, xs in got.items()},
           "load_average": {name: [x["load"] for x in xs] for name, xs in got.items()},
           "others_cores": {name: [x["others_cores"] for x in xs] for name, xs in got.items()},
           "default_threads": torch.get_num_threads()}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
