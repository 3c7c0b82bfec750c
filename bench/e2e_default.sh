#!/usr/bin/env bash
# Benchmark: the README's main command (`make study` = `pie-mlops study`) on the embedded
# default profile, end to end, from a state with data but no runs (docs/design.md §6).
#
# It runs in a scratch clone of this repo's HEAD, so your own MLflow store, DVC cache and
# outputs are untouched: the clone gets its data (`pie-mlops materialize`, not timed), then
# the main command is timed while the RSS of its whole process tree (DVC, every stage
# process) is sampled twice a second. Prints a table of stage times (with seconds per model
# for train@ and prune@ stages) and the size of mlartifacts/, then one JSON object:
#   {"wall_s", "peak_rss_gib", "artifacts_gib", "stages_s": {stage: s}, "s_per_model": {stage: s}}
# Usage: bash bench/e2e_default.sh [--keep]   (--keep leaves the scratch clone for a look)
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BIN="$ROOT/.venv/bin"
[ -x "$BIN/pie-mlops" ] || { echo "error: $BIN/pie-mlops not found; run \`make install\` first" >&2; exit 2; }
export PATH="$BIN:$PATH" MLFLOW_DISABLE_TELEMETRY=true DO_NOT_TRACK=true DVC_NO_ANALYTICS=1 \
  HF_HUB_OFFLINE=1 HF_HUB_DISABLE_TELEMETRY=1 HF_DATASETS_OFFLINE=1 GX_ANALYTICS_ENABLED=false
unset MLFLOW_TRACKING_URI MLFLOW_REGISTRY_URI MLFLOW_RUN_ID MLFLOW_EXPERIMENT_NAME

WORK="$(mktemp -d "${TMPDIR:-/tmp}/pie-e2e.XXXXXX")"
[ "${1:-}" = "--keep" ] || trap 'rm -rf "$WORK"' EXIT
git clone -q "$ROOT" "$WORK/repo"
cd "$WORK/repo"
pie-mlops materialize > "$WORK/materialize.log" 2>&1   # the starting state: data, no runs

"$BIN/python" - "$WORK" <<'EOF'
import json, re, subprocess, sys, threading, time
from pathlib import Path

import psutil

work = Path(sys.argv[1])
log = (work / "study.log").open("w")
start = time.perf_counter()
proc = subprocess.Popen(["pie-mlops", "study"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                        errors="replace")
marks = []  # (seconds since start, stage) when DVC starts a stage


def read() -> None:
    for line in proc.stdout:
        log.write(line)
        m = re.match(r"Running stage '([^']+)'", line)
        if m:
            marks.append((time.perf_counter() - start, m.group(1)))


def tree_rss(pid: int) -> int:
    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0
    total = 0
    for p in procs:
        try:
            total += p.memory_info().rss
        except psutil.NoSuchProcess:
            pass
    return total


reader = threading.Thread(target=read, daemon=True)
reader.start()
peak = 0
while proc.poll() is None:
    peak = max(peak, tree_rss(proc.pid))
    time.sleep(0.5)
reader.join()
wall = time.perf_counter() - start
log.close()
text = (work / "study.log").read_text(errors="replace").replace("\r", "\n")
if proc.returncode != 0:
    print("\n".join(text.splitlines()[-40:]), file=sys.stderr)
    sys.exit(f"error: pie-mlops study exited {proc.returncode}; its log is above")
repo = work / "repo"


def models(stage: str) -> int:
    """Models a train@/prune@ stage made: their prediction directories (one per version)."""
    kind, _, arch = stage.partition("@")
    pattern = {"train": f"*/{arch}/dense/s*", "prune": f"*/{arch}/pruned/*/s*"}.get(kind)
    return len(list((repo / "predictions").glob(pattern))) if pattern else 0


ends = [t for t, _ in marks[1:]] + [wall]  # a stage runs until the next starts; the last, to the end
stages = {name: round(end - t, 1) for (t, name), end in zip(marks, ends)}
artifacts = sum(f.stat().st_size for f in (repo / "mlartifacts").rglob("*") if f.is_file()) / 2**30
print("the README's main command: pie-mlops study (default profile, through dvc repro)")
print(f"  {'stage':<24} {'seconds':>8} {'models':>7} {'s/model':>8}")
per_model = {}
for name, secs in stages.items():
    n = models(name)
    if n:
        per_model[name] = round(secs / n, 2)
    print(f"  {name:<24} {secs:8.1f} {n or '':>7} {per_model.get(name, ''):>8}")
print(f"{'wall clock':<22} {wall:8.1f} s   (budget 900 s)")
print(f"{'peak RSS, whole tree':<22} {peak / 2**30:8.2f} GiB (budget 6 GiB)")
print(f"{'mlartifacts/':<22} {artifacts:8.2f} GiB")
print(json.dumps({"wall_s": round(wall, 1), "peak_rss_gib": round(peak / 2**30, 3),
                  "artifacts_gib": round(artifacts, 3), "stages_s": stages, "s_per_model": per_model}))
EOF
