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
round trip to the file), and the milliseconds per job (median after 2 warm-up jobs).

    .venv/bin/python bench/tracking_per_model.py [--jobs 12]   # a table, then one JSON object
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


def child(backend: str, jobs: int) -> dict:
    """Run `jobs` model jobs against the current MLFLOW_TRACKING_URI; one dict of figures."""
    import numpy as np
    import pandas as pd

    sys.path.insert(0, str(ROOT))
    from pie_mlops import tracking
    from pie_mlops.jobs.context import JobContext
    from pie_mlops.jobs.protocol import Made, ModelJob, finished, identity_tags, run_job
    from pie_mlops.models import build_model
    from pie_mlops.compare.predictions import predictions_frame

    counter: Counter = Counter()
    (_count_requests if backend == "server" else _count_sql)(counter)
    rng = np.random.default_rng(0)
    n = 1275
    df = pd.DataFrame({"example_id": [f"e{i}" for i in range(n)], "text": [f"text number {i}" for i in range(n)],
                       "label": rng.integers(0, 2, n)})
    frame = predictions_frame(df, rng.normal(size=(n, 2)).astype("float32"), split="validation",
                              group="magnitude-os@0.50", seed=0, task="single_label")
    model = build_model("bilstm", 2, "single_label", seed=0)
    ctx, times, counts = JobContext(), [], []
    for i in range(jobs):
        plan = {"dataset": "bench", "arch": "bilstm", "criterion": "magnitude", "schedule": "os", "sparsity": 0.5,
                "job": i}
        tags = identity_tags("prune", plan, "magnitude-os@0.50", i, data_md5="0" * 32, git_sha="bench",
                             fingerprint="bench")
        job = ModelJob(plan=plan, group="magnitude-os@0.50", seed=i, tags=tags, out_dir=Path("predictions") / f"s{i}",
                       model_name="pie-bench-bilstm", alias=f"magnitude-os-0_50-s{i}")

        def make(run, _model, staging) -> Made:
            saved = model.save(staging / "saved")
            run.set_tags({"achieved_sparsity": "0.500000"})
            return Made(model, {"validation": frame}, saved=saved, metrics={"latency_ms": 1.0, "size_mb": 2.0},
                        documents={"pruning.json": {"achieved_sparsity": 0.5}})

        before = sum(counter.values())
        start = time.perf_counter()
        with tracking.model_claim(job.model_name, job.group, job.seed):
            assert finished(job, ctx) is None
            run_job(job, make, ctx, task="single_label", label_names=["neg", "pos"], examples=df.head(2))
        times.append(time.perf_counter() - start)
        counts.append(sum(counter.values()) - before)
        if i == WARMUP - 1:
            counter.clear()
    timed = jobs - WARMUP
    return {"backend": backend, "ms_per_model": 1000 * statistics.median(times[WARMUP:]),
            "calls_per_model": statistics.median(counts[WARMUP:]),
            "by_kind": {k: round(v / timed, 2) for k, v in counter.most_common()}}


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
    ap.add_argument("--child", choices=["sqlite", "server"], help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.jobs <= WARMUP:
        ap.error(f"--jobs must be more than {WARMUP}")
    if args.child:
        print(json.dumps(child(args.child, args.jobs)))
        return
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env.update(MLFLOW_DISABLE_TELEMETRY="true", HF_HUB_OFFLINE="1", PYTHONPATH=str(ROOT))
    results = {}
    with tempfile.TemporaryDirectory(prefix="pie-tracking-") as tmp:
        for backend in ("sqlite", "server"):
            folder = Path(tmp) / backend
            folder.mkdir()
            proc = None
            if backend == "server":
                proc, uri = _server(folder)
            else:
                uri = f"sqlite:///{folder}/mlflow.db"
            try:
                out = subprocess.run([sys.executable, __file__, "--child", backend, "--jobs", str(args.jobs)],
                                     cwd=folder, env=dict(env, MLFLOW_TRACKING_URI=uri), capture_output=True,
                                     text=True, timeout=1800)
            finally:
                if proc is not None:
                    os.killpg(proc.pid, 9)
                    proc.wait()
            if out.returncode != 0:
                raise SystemExit(f"the {backend} run failed:\n{out.stderr[-3000:]}")
            results[backend] = json.loads(out.stdout.strip().splitlines()[-1])
    print(f"{'backend':<8} {'ms/model':>9} {'calls/model':>12}  top calls per model")
    for r in results.values():
        top = ", ".join(f"{k} {v:g}" for k, v in list(r["by_kind"].items())[:6])
        unit = "HTTP requests" if r["backend"] == "server" else "SQL statements"
        print(f"{r['backend']:<8} {r['ms_per_model']:>9.0f} {r['calls_per_model']:>12.0f}  ({unit}) {top}")
    print(json.dumps({"jobs": args.jobs - WARMUP,
                      "sqlite_ms_per_model": round(results["sqlite"]["ms_per_model"], 1),
                      "sqlite_sql_statements_per_model": results["sqlite"]["calls_per_model"],
                      "server_ms_per_model": round(results["server"]["ms_per_model"], 1),
                      "server_requests_per_model": results["server"]["calls_per_model"],
                      "server_requests_by_endpoint": results["server"]["by_kind"]}))


if __name__ == "__main__":
    main()
