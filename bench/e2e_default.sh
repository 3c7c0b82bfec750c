#!/usr/bin/env bash
# Benchmark: the README's main command (`make study` = `pie-mlops study`) on the embedded
# default profile, end to end, from a state with data but no runs (docs/design.md §6).
#
# It runs in a scratch clone of this repo's HEAD, so your own MLflow store, DVC cache and
# outputs are untouched: the clone gets its data (`pie-mlops materialize`, not timed), then
# the main command is timed while the RSS of its whole process tree (DVC, every stage
# process) is sampled twice a second. Prints a table of stage times, then one JSON object:
#   {"wall_s": ..., "peak_rss_gib": ...}
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
import json, subprocess, sys, threading, time
from pathlib import Path

import psutil

work = Path(sys.argv[1])
log = (work / "study.log").open("w")
start = time.perf_counter()
proc = subprocess.Popen(["pie-mlops", "study"], stdout=log, stderr=subprocess.STDOUT)
peak = 0


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


while proc.poll() is None:
    peak = max(peak, tree_rss(proc.pid))
    time.sleep(0.5)
wall = time.perf_counter() - start
log.close()
text = (work / "study.log").read_text(errors="replace").replace("\r", "\n")
if proc.returncode != 0:
    print("\n".join(text.splitlines()[-40:]), file=sys.stderr)
    sys.exit(f"error: pie-mlops study exited {proc.returncode}; its log is above")
stages = [line for line in text.splitlines() if line.startswith(("Running stage", "study finished"))]
print("the README's main command: pie-mlops study (default profile, through dvc repro)")
for line in stages:
    print("  " + line)
print(f"{'wall clock':<22} {wall:8.1f} s   (budget 900 s)")
print(f"{'peak RSS, whole tree':<22} {peak / 2**30:8.2f} GiB (budget 6 GiB)")
print(json.dumps({"wall_s": round(wall, 1), "peak_rss_gib": round(peak / 2**30, 3)}))
EOF
