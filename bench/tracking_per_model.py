"""What tracking costs per model: requests and milliseconds of one model job, SQLite against a server.

Each backend runs in its own process, in a scratch directory: an embedded SQLite store
(`sqlite:///mlflow.db`, artifacts under ./mlartifacts) and an `mlflow server` on 127.0.0.1
(SQLite behind it, artifacts proxied). There, N model jobs go through what a stage does for
each model (pie_mlops/jobs/protocol.py): the per-model claim, the skip-on-rerun lookup, then `run_job`
(run, params, dataset inputs, prediction files, pruning.json, the pyfunc model, final metrics,
version and alias), with the model and its predictions made up front, so that only tracking is
timed. The model is a GloVe BiLSTM (its save is ~2 MB, like a pruned one); the predictions are
1,275 rows, the size of the default study's validation split.

Counted: HTTP requests by endpoint (the server), SQL statements (SQLite, where each is a
round trip to the file), and the milliseconds per job, wall and this process's CPU (median after
2 warm-up jobs; on SQLite most of the wall is the store's commits waiting on the disk, and only
the CPU competes with compute). `--profile FILE`: cProfile of the timed jobs, FILE.<backend>.prof.

Then the pace (issue 27: tracking must not set it): the same process computes `--pace-jobs`
models (a BiLSTM trained one epoch and its split predicted, on one intra-op thread, as the repro
profiles run it) three ways, in interleaved rounds: compute alone; compute with each model
tracked by the stage's writer beside the next one's compute (jobs/writer.py, what train and
prune do); and compute with tracking in line, one after the other (the stages before the
writer). `<backend>_pace_ratio` is the wall time per model tracked by the writer over compute
alone (the goal: <= 1.1), `_before_drain` the same until the last model is computed (the last
one's tracking comes once per stage, not per model); `<backend>_inline_ratio` the same in line. `--pace-sleep-ms N`: the
compute is an N ms wait instead, as on an accelerator, where the CPU idles while a model computes.

    .venv/bin/python bench/tracking_per_model.py [--jobs 12] [--pace-jobs 8] [--pace-sleep-ms 1000]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from contextlib import ExitStack
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WARMUP = 2


def _count_requests(counter: Counter) -> None:
    import requests

    send = requests.Session.request

    def counted(self, method, url, *args, **kwargs):
        path = url.split("://", 1)[-1].split("/", 1)[-1].split("?")[0]
        if "/artifacts/" in path:  # one endpoint, whatever the file
            path = path.split("/artifacts/")[0] + "/artifacts/<file>"
        path = re.sub(r"/m-[0-9a-f]+", "/<model_id>", path)
        counter[f"{method} /{path}"] += 1
        return send(self, method, url, *args, **kwargs)

    requests.Session.request = counted


def _count_sql(counter: Counter) -> None:
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    @event.listens_for(Engine, "before_cursor_execute")
    def counted(conn, cursor, statement, *args):  # noqa: ANN001
        counter[statement.split(None, 1)[0].upper()] += 1


def child(backend: str, jobs: int, profile: str | None = None) -> dict:
    """Run `jobs` model jobs against the current MLFLOW_TRACKING_URI; one dict of figures.
    `profile`: a file for cProfile's stats of the timed jobs (after the warm-up)."""
    import cProfile

    import numpy as np
    import pandas as pd
    import torch

    sys.path.insert(0, str(ROOT))
    from pie_mlops import tracking
    from pie_mlops.jobs.context import JobContext
    from pie_mlops.jobs.protocol import Made, ModelJob, finished, identity_tags, run_job
    from pie_mlops.models import build_model
    from pie_mlops.compare.predictions import predictions_frame

    torch.set_num_threads(1)  # as the pace below: on 2 busy cores a second thread makes the save's tiny ops 100x slower
    counter: Counter = Counter()
    (_count_requests if backend == "server" else _count_sql)(counter)
    rng = np.random.default_rng(0)
    n = 1275
    df = pd.DataFrame({"example_id": [f"e{i}" for i in range(n)], "text": [f"text number {i}" for i in range(n)],
                       "label": rng.integers(0, 2, n)})
    frame = predictions_frame(df, rng.normal(size=(n, 2)).astype("float32"), split="validation",
                              group="magnitude-os@0.50", seed=0, task="single_label")
    model = build_model("bilstm", 2, "single_label", seed=0)
    ctx, times, cpu, counts = JobContext(), [], [], []
    profiler = cProfile.Profile(time.process_time if os.environ.get("PIE_PROFILE_CPU") else time.perf_counter)
    for i in range(jobs):
        plan = {"dataset": "bench", "arch": "bilstm", "criterion": "magnitude", "schedule": "os", "sparsity": 0.5,
                "job": i}
        tags = identity_tags("prune", plan, "magnitude-os@0.50", i, data_md5="0" * 32, git_sha="bench",
                             fingerprint="bench")
        job = ModelJob(plan=plan, group="magnitude-os@0.50", seed=i, tags=tags, out_dir=Path("predictions") / f"s{i}",
                       model_name="pie-bench-bilstm", alias=f"magnitude-os-0_50-s{i}", data_dir="data")

        def make(run, _model, staging) -> Made:
            saved = model.save(staging / "saved")
            run.set_tags({"achieved_sparsity": "0.500000"})
            return Made(model, {"validation": frame}, saved=saved, metrics={"latency_ms": 1.0, "size_mb": 2.0},
                        documents={"pruning.json": {"achieved_sparsity": 0.5}})

        before = sum(counter.values())
        if profile and i >= WARMUP:
            profiler.enable()
        start, start_cpu = time.perf_counter(), time.process_time()
        with tracking.model_claim(job.model_name, job.group, job.seed):
            assert finished(job, ctx) is None
            run_job(job, make, ctx, task="single_label", label_names=["neg", "pos"], examples=df.head(2))
        times.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
        profiler.disable()
        counts.append(sum(counter.values()) - before)
        if i == WARMUP - 1:
            counter.clear()
    timed = jobs - WARMUP
    if profile:
        profiler.dump_stats(profile)
    return {"backend": backend, "ms_per_model": 1000 * statistics.median(times[WARMUP:]),
            "cpu_ms_per_model": 1000 * statistics.median(cpu[WARMUP:]),
            "calls_per_model": statistics.median(counts[WARMUP:]),
            "by_kind": {k: round(v / timed, 2) for k, v in counter.most_common()}}


def pace(backend: str, jobs: int, n: int, rounds: int, sleep_ms: float = 0.0) -> dict:
    """Wall seconds per model: compute alone, compute + the writer, compute + tracking in line.
    `sleep_ms`: the compute is that long a wait instead (an accelerator's model: the CPU idles)."""
    import numpy as np
    import pandas as pd
    import torch

    sys.path.insert(0, str(ROOT))
    from pie_mlops import tracking
    from pie_mlops.jobs.context import JobContext
    from pie_mlops.jobs.protocol import Made, ModelJob, finished, identity_tags, run_job
    from pie_mlops.jobs.frames import predict_frames
    from pie_mlops.jobs.training import TrainConfig, train
    from pie_mlops.jobs.writer import TrackWriter
    from pie_mlops.models import build_model

    torch.set_num_threads(1)  # one core computes, as the repro profiles' BiLSTM; the writer has the other
    rng = np.random.default_rng(0)
    words = ["good", "bad", "film", "plot", "great", "dull", "actor", "story", "funny", "boring"]
    df = pd.DataFrame({"example_id": [f"e{i}" for i in range(n)], "label": rng.integers(0, 2, n),
                       "text": [" ".join(rng.choice(words, 12)) for _ in range(n)]})
    base = build_model("bilstm", 2, "single_label", seed=0)
    ctx, serial = JobContext(), iter(range(10**6))

    made = {}

    def compute(seed: int):
        if sleep_ms and made:  # the CPU waits on the device; tracking gets the same model's outputs
            time.sleep(sleep_ms / 1000)
            return made["out"]
        model = build_model("bilstm", 2, "single_label", seed=seed)
        model.embedding = base.embedding  # one frozen GloVe matrix, not one load per model
        result = train(model, df, df, TrainConfig(epochs=1, batch_size=32, seed=seed, progress=False))
        frames = predict_frames(model, {"validation": df}, ["validation"], group="magnitude-ft@0.50", seed=seed,
                                threshold=result.threshold, val_logits=result.val_logits)
        made["out"] = (model, result, frames)
        return model, result, frames

    def job_for(i: int) -> ModelJob:
        plan = {"dataset": "pace", "arch": "bilstm", "criterion": "magnitude", "schedule": "ft", "sparsity": 0.5,
                "job": i}
        tags = identity_tags("prune", plan, "magnitude-ft@0.50", i, data_md5="0" * 32, git_sha="bench",
                             fingerprint="bench")
        return ModelJob(plan=plan, group="magnitude-ft@0.50", seed=i, tags=tags, out_dir=Path("pace") / f"s{i}",
                        model_name="pie-pace-bilstm", alias=f"magnitude-ft-0_50-s{i}", data_dir="data")

    def track(job, model, result, frames) -> dict:
        def make(run, _model, _staging) -> Made:
            run.log_history(result.history)
            return Made(model, frames, threshold=result.threshold, metrics={"latency_ms": 1.0})

        return run_job(job, make, ctx, task="single_label", label_names=["neg", "pos"], examples=df.head(2))[0]

    steady: list[float] = []  # the writer's seconds per model until its last compute, before the drain

    def side(way: str) -> float:
        """As the stages' loops: claim and skip lookup, compute with no run, then track."""
        start = time.perf_counter()
        with TrackWriter() as writer:
            for seed in range(jobs):
                job = job_for(next(serial))
                with ExitStack() as claim:
                    if way != "alone":
                        claim.enter_context(tracking.model_claim(job.model_name, job.group, job.seed))
                        assert finished(job, ctx) is None
                    out = compute(seed)
                    if way == "writer":
                        writer.submit(track, job, *out, hold=claim.pop_all())
                    elif way == "inline":
                        track(job, *out)
            if way == "writer":  # the last model's tracking is still to come: once per stage, not per model
                steady.append((time.perf_counter() - start) / jobs)
        return (time.perf_counter() - start) / jobs

    compute(0)  # warm-up: tokeniser cache, allocator
    track(job_for(next(serial)), *compute(0))
    times: dict[str, list[float]] = {"alone": [], "writer": [], "inline": []}
    for _ in range(rounds):  # interleaved: each round runs every way once
        for way in times:
            times[way].append(side(way))
    med = {way: statistics.median(v) for way, v in times.items()}
    return {"backend": backend, "compute_ms": 1000 * med["alone"], "writer_ms": 1000 * med["writer"],
            "inline_ms": 1000 * med["inline"], "pace_ratio": med["writer"] / med["alone"],
            "steady_ratio": statistics.median(steady) / med["alone"],
            "inline_ratio": med["inline"] / med["alone"], "rounds": {k: [round(x, 4) for x in v] for k, v in times.items()}}


def _server(folder: Path) -> tuple[subprocess.Popen, str]:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([str(Path(sys.executable).parent / "mlflow"), "server", "--backend-store-uri",
                             f"sqlite:///{folder}/server.db", "--artifacts-destination", str(folder / "artifacts"),
                             "--host", "127.0.0.1", "--port", str(port), "-w", "1"],
                            stdout=open(folder / "server.log", "w"), stderr=subprocess.STDOUT,
                            start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    for _ in range(240):
        try:
            if urllib.request.urlopen(f"{url}/health", timeout=2).read() == b"OK":
                return proc, url
        except OSError:
            time.sleep(0.5)
    proc.kill()
    raise SystemExit(f"mlflow server did not start in 2 minutes; see {folder / 'server.log'}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--jobs", type=int, default=12, help=f"model jobs per backend, the first {WARMUP} untimed")
    ap.add_argument("--pace-jobs", type=int, default=8, help="models per side of the pace measurement (0: skip it)")
    ap.add_argument("--pace-n", type=int, default=1275, help="examples each pace model trains one epoch on")
    ap.add_argument("--pace-rounds", type=int, default=2, help="interleaved rounds of the three ways")
    ap.add_argument("--pace-sleep-ms", type=float, default=0.0,
                    help="pace with a compute that waits this long instead of training (an accelerator's model)")
    ap.add_argument("--backends", default="sqlite,server", help="comma-separated: sqlite, server")
    ap.add_argument("--profile", help="cProfile the timed jobs of each backend into <this>.<backend>.prof")
    ap.add_argument("--child", choices=["sqlite", "server"], help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.jobs <= WARMUP:
        ap.error(f"--jobs must be more than {WARMUP}")
    if args.child:
        out = child(args.child, args.jobs, args.profile and f"{args.profile}.{args.child}.prof")
        if args.pace_jobs:
            out["pace"] = pace(args.child, args.pace_jobs, args.pace_n, args.pace_rounds, args.pace_sleep_ms)
        print(json.dumps(out))
        return
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env.update(MLFLOW_DISABLE_TELEMETRY="true", HF_HUB_OFFLINE="1", PYTHONPATH=str(ROOT))
    results = {}
    with tempfile.TemporaryDirectory(prefix="pie-tracking-") as tmp:
        for backend in args.backends.split(","):
            folder = Path(tmp) / backend
            folder.mkdir()
            proc = None
            if backend == "server":
                proc, uri = _server(folder)
            else:
                uri = f"sqlite:///{folder}/mlflow.db"
            try:
                out = subprocess.run([sys.executable, __file__, "--child", backend, "--jobs", str(args.jobs),
                                      "--pace-jobs", str(args.pace_jobs), "--pace-n", str(args.pace_n),
                                      "--pace-rounds", str(args.pace_rounds),
                                      "--pace-sleep-ms", str(args.pace_sleep_ms),
                                      *(["--profile", str(Path(args.profile).resolve())] if args.profile else [])],
                                     cwd=folder, env=dict(env, MLFLOW_TRACKING_URI=uri), capture_output=True,
                                     text=True, timeout=1800)
            finally:
                if proc is not None:
                    os.killpg(proc.pid, 9)
                    proc.wait()
            if out.returncode != 0:
                raise SystemExit(f"the {backend} run failed:\n{out.stderr[-3000:]}")
            results[backend] = json.loads(out.stdout.strip().splitlines()[-1])
    print(f"{'backend':<8} {'ms/model':>9} {'CPU ms':>7} {'calls/model':>12}  top calls per model")
    for r in results.values():
        top = ", ".join(f"{k} {v:g}" for k, v in list(r["by_kind"].items())[:6])
        unit = "HTTP requests" if r["backend"] == "server" else "SQL statements"
        print(f"{r['backend']:<8} {r['ms_per_model']:>9.0f} {r['cpu_ms_per_model']:>7.0f} "
              f"{r['calls_per_model']:>12.0f}  ({unit}) {top}")
    figures: dict = {"jobs": args.jobs - WARMUP, "load_average": round(os.getloadavg()[0], 2),
                     "pace_sleep_ms": args.pace_sleep_ms}
    for backend, r in results.items():
        unit = "sql_statements" if backend == "sqlite" else "requests"
        figures.update({f"{backend}_ms_per_model": round(r["ms_per_model"], 1),
                        f"{backend}_cpu_ms_per_model": round(r["cpu_ms_per_model"], 1),
                        f"{backend}_{unit}_per_model": r["calls_per_model"]})
        if backend == "server":
            figures["server_requests_by_endpoint"] = r["by_kind"]
    if args.pace_jobs:
        what = (f"a {args.pace_sleep_ms:g} ms wait (an accelerator's model)" if args.pace_sleep_ms else
                f"one epoch on {args.pace_n} examples")
        print(f"\npace: {args.pace_jobs} models per side, compute = {what}, "
              f"{args.pace_rounds} interleaved rounds (ms per model, median)")
        print(f"{'backend':<8} {'alone':>8} {'writer':>8} {'in line':>8} {'writer/alone':>13} {'in line/alone':>14}"
              f" {'writer before drain/alone':>26}")
        for backend, r in results.items():
            p = r["pace"]
            print(f"{backend:<8} {p['compute_ms']:>8.0f} {p['writer_ms']:>8.0f} {p['inline_ms']:>8.0f} "
                  f"{p['pace_ratio']:>12.3f}x {p['inline_ratio']:>13.3f}x {p['steady_ratio']:>25.3f}x")
            figures.update({f"{backend}_pace_ratio": round(p["pace_ratio"], 3),
                            f"{backend}_pace_ratio_before_drain": round(p["steady_ratio"], 3),
                            f"{backend}_inline_ratio": round(p["inline_ratio"], 3),
                            f"{backend}_compute_ms_per_model": round(p["compute_ms"], 1),
                            f"{backend}_pace_rounds": p["rounds"]})
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
