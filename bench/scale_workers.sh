#!/usr/bin/env bash
# Benchmark: the tiny profile's grid (14 train, 28 prune, 2 compare jobs) run three times, each
# against a fresh PostgreSQL-backed `mlflow server` (artifacts proxied) and a fresh PostgreSQL
# Optuna storage, on this machine (docs/design.md §6):
#   A. 1 worker, --lanes 1: every job's compute alone, its tracking and claim time;
#   B. 1 worker with the default 2 lanes (tracking overlapped with the next job's compute): wall_1;
#   C. 2 workers with the default 2 lanes: wall_2.
# Per-job overhead = what a worker adds to each model job beyond computing it: the span of
# B's train and prune jobs (first claim to last completion) minus the compute those jobs took
# in A (where nothing ran beside them), per job. Claims, tracking, registration and their
# contention with compute all land in it. It is set against a tiny training job (A's mean
# train job: compute plus tracking). Tune is left out (--no-tune): the grid is what the
# workers share.
# Prints a table, then one JSON object:
#   {"wall_1", "wall_2", "speedup_2_workers", "overhead_ms_per_job", "overhead_share"}
# Usage: bash bench/scale_workers.sh [--keep]    (needs Debian's postgresql package)
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BIN="$ROOT/.venv/bin"
[ -x "$BIN/pie-mlops" ] || { echo "error: $BIN/pie-mlops not found; run \`make install\` first" >&2; exit 2; }
export PATH="$BIN:$PATH" MLFLOW_DISABLE_TELEMETRY=true DO_NOT_TRACK=true DVC_NO_ANALYTICS=1 \
  HF_HUB_OFFLINE=1 HF_HUB_DISABLE_TELEMETRY=1 HF_DATASETS_OFFLINE=1 GX_ANALYTICS_ENABLED=false \
  MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
unset MLFLOW_TRACKING_URI MLFLOW_REGISTRY_URI MLFLOW_RUN_ID MLFLOW_EXPERIMENT_NAME

WORK="$(mktemp -d "${TMPDIR:-/tmp}/pie-scale.XXXXXX")"
chmod 711 "$WORK"  # as root, the server runs as `postgres`, which must reach $WORK/pg
PG="$WORK/pg"
PGPORT=$("$BIN/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cleanup() {
  [ -f "$WORK/server.pid" ] && kill -TERM -- "-$(cat "$WORK/server.pid")" 2>/dev/null || true
  "$ROOT/scripts/postgres.sh" stop "$PG" || true
  [ "$KEEP" = 1 ] || rm -rf "$WORK"
}
KEEP=0; [ "${1:-}" = "--keep" ] && KEEP=1
trap cleanup EXIT
BASE=$("$ROOT/scripts/postgres.sh" start "$PG" "$PGPORT")

"$BIN/python" - "$WORK" "$BASE" "$ROOT" <<'EOF'
import json, os, shutil, signal, subprocess, sys, time, urllib.request
from pathlib import Path
from statistics import mean

import optuna
import psycopg

work, base, root = Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3])
optuna.logging.set_verbosity(optuna.logging.ERROR)


def database(name: str) -> str:
    with psycopg.connect(base.replace("postgresql+psycopg", "postgresql") + "/postgres", autocommit=True) as c:
        c.execute(f'CREATE DATABASE "{name}"')
    return f"{base}/{name}"


def machine(name: str) -> Path:
    """A worker's own directory, as on its own machine: the profile and the data version file.
    Untuned (--no-tune), tiny's dense models need not clear the baseline gate, and the grid's
    compare jobs would then fail the worker: the gate is off in the workers' copy of the
    profile (the benchmark times train and prune jobs, not verdicts)."""
    import yaml

    home = work / name
    home.mkdir()
    shutil.copytree(root / "profiles", home / "profiles")
    tiny = yaml.safe_load((home / "profiles" / "tiny.yaml").read_text())
    tiny.setdefault("compare", {})["min_gain_over_baseline"] = -1.0
    (home / "profiles" / "tiny.yaml").write_text(yaml.safe_dump(tiny))
    shutil.copy2(root / "data.dvc", home / "data.dvc")
    return home


def server(backend: str, artifacts: Path) -> tuple[subprocess.Popen, str]:
    with __import__("socket").socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(["mlflow", "server", "--backend-store-uri", backend, "--artifacts-destination",
                             str(artifacts), "--host", "127.0.0.1", "--port", str(port), "-w", "1"],
                            stdout=open(work / f"server-{port}.log", "w"), stderr=subprocess.STDOUT,
                            start_new_session=True)
    (work / "server.pid").write_text(str(proc.pid))
    url = f"http://127.0.0.1:{port}"
    for _ in range(240):
        try:
            if urllib.request.urlopen(f"{url}/health", timeout=2).read() == b"OK":
                return proc, url
        except OSError:
            time.sleep(0.5)
    raise SystemExit("mlflow server did not start in 2 minutes")


def run_grid(tag: str, n_workers: int, lanes: int | None) -> dict:
    storage = database(f"optuna_{tag}")
    proc, url = server(database(f"mlflow_{tag}"), work / f"artifacts_{tag}")
    homes = [machine(f"{tag}_w{i}") for i in range(n_workers)]
    for home in homes:  # data first, untimed: every machine has it before the study starts
        subprocess.run(["pie-mlops", "--profile", "tiny", "materialize"], cwd=home, check=True,
                       capture_output=True)
    env = dict(os.environ, MLFLOW_TRACKING_URI=url)
    extra = ["--lanes", str(lanes)] if lanes else []
    start = time.perf_counter()
    workers = [subprocess.Popen(["pie-mlops", "--profile", "tiny", "worker", "--storage", storage, "--no-tune",
                                 *extra], cwd=home, env=env, stdout=open(home / "worker.log", "w"),
                                stderr=subprocess.STDOUT)
               for home in homes]
    codes = [w.wait() for w in workers]
    wall = time.perf_counter() - start
    os.killpg(proc.pid, signal.SIGTERM)
    proc.wait()
    if any(codes):
        raise SystemExit(f"{tag}: a worker failed ({codes}); see {homes[0] / 'worker.log'} (--keep keeps it)")
    jobs = []
    for name in optuna.get_all_study_names(storage):
        for t in optuna.load_study(study_name=name, storage=storage).get_trials():
            if t.state.name == "COMPLETE" and "facts" in t.user_attrs:
                f = t.user_attrs["facts"]
                trial_s = (t.datetime_complete - t.datetime_start).total_seconds()
                jobs.append({"phase": name.rsplit("-", 1)[1], "job": t.params["job"], "job_s": f["job_s"],
                             "tracking_s": f["tracking_s"], "compute_s": f["compute_s"],
                             "claim_s": f["poll_s"] + max(0.0, trial_s - f["job_s"]),
                             "start": t.datetime_start, "end": t.datetime_complete})
    model = [j for j in jobs if j["phase"] in ("train", "prune")]
    span = (max(j["end"] for j in model) - min(j["start"] for j in model)).total_seconds()
    return {"wall": wall, "jobs": jobs, "model": model, "span": span}


alone = run_grid("alone", 1, 1)  # A
one = run_grid("one", 1, None)  # B
two = run_grid("two", 2, None)  # C
model = alone["model"]
n = len(model)
compute = {j["job"]: j["compute_s"] for j in model}
claim = mean(j["claim_s"] for j in model)
tracking = mean(j["tracking_s"] for j in model)
train_job = mean(j["compute_s"] + j["tracking_s"] for j in model if j["phase"] == "train")
pure = sum(compute.values())
overhead_1 = (alone["span"] - pure) / n
overhead = (one["span"] - sum(compute[j["job"]] for j in one["model"])) / len(one["model"])
rows = [("grid", f"{len(alone['jobs'])} jobs (tiny profile, --no-tune), {n} of them train or prune"),
        ("wall, 1 worker, 1 lane", f"{alone['wall']:.1f} s"),
        ("wall, 1 worker (2 lanes)", f"{one['wall']:.1f} s  (wall_1)"),
        ("wall, 2 workers (2 lanes)", f"{two['wall']:.1f} s  (wall_2)"),
        ("speedup, 2 workers", f"{one['wall'] / two['wall']:.2f}x  (2 cores; the mlflow server and PostgreSQL share them)"),
        ("per model job: compute", f"{pure / n * 1000:.0f} ms  (1 lane: nothing beside it)"),
        ("per model job: claim", f"{claim * 1000:.0f} ms  (1 lane)"),
        ("per model job: tracking", f"{tracking * 1000:.0f} ms  (1 lane: runs, artifacts, logged model, registry)"),
        ("tiny training job", f"{train_job * 1000:.0f} ms  (compute + tracking, 1 lane)"),
        ("overhead, 1 lane", f"{overhead_1 * 1000:.0f} ms per job = {overhead_1 / train_job:.1%} of a tiny training job"),
        ("overhead, 2 lanes", f"{overhead * 1000:.0f} ms per job = {overhead / train_job:.1%} of a tiny training job"
                              "  (overhead_ms_per_job)")]
for k, v in rows:
    print(f"{k:<27} {v}")
print(json.dumps({"wall_1": round(one["wall"], 2), "wall_2": round(two["wall"], 2),
                  "speedup_2_workers": round(one["wall"] / two["wall"], 3),
                  "overhead_ms_per_job": round(overhead * 1000, 1),
                  "overhead_share": round(overhead / train_job, 4)}))
EOF
