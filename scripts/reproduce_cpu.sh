#!/usr/bin/env bash
# Issue 27's reproduction (docs/results/NAME/) on a 2-core CPU, in two lanes of one thread each
# (one thread per model: two are at most 1.3x faster idle and several times slower beside other work, docs/budget.md):
#   lane A: rotten_tomatoes' BiLSTM on the full split (profiles/repro.yaml): tune E and lr,
#           20 dense + 20 dense-long, then magnitude-ft/wr/ai at 0.5 and 0.9 (120 pruned)
#   lane B: bbc_news (profiles/repro-bbc.yaml) end to end, then claim (e)'s matched MiniLM and
#           BiLSTM on 3,000 examples (profiles/repro-e.yaml, in its own MLflow store mlflow-e.db)
# Then the comparisons, the report, and scripts/reproduce.py collects the results.
# Its size and projected wall time: docs/budget.md ("Issue 27's reproduction"), written before it ran.
#   nohup bash scripts/reproduce_cpu.sh NAME > reproduce.log 2>&1 &   (logs in reports/reproduce/)
# Every finished model's logits are committed as the run goes (a loop beside the lanes, every
# PIE_SYNC_SECONDS, default 120: scripts/reproduce.py NAME --sync --commit, only
# docs/results/NAME/predictions/ in each commit), so a crash loses at most the models in flight
# and those since the last sync. Rerun the same command to resume: models finished in this
# checkout's MLflow stores are skipped, committed logits are never rewritten. Set
# PIE_REPRO_START (epoch seconds of the first start) so a resumed run's wall time counts from it.
# On another machine (no MLflow store): `python scripts/reproduce.py NAME --resume-plan repro
# repro-e repro-bbc` prints the stage commands that make only the models not yet committed,
# after the lines that restore the tuned values those models used (docs/results/NAME/tuned/).
set -euo pipefail
NAME=${1:-}
[[ "$NAME" =~ ^[A-Za-z0-9._-]+$ ]] || { echo "usage: bash scripts/reproduce_cpu.sh NAME (letters, digits, . _ -)" >&2; exit 2; }
cd "$(dirname "$0")/.."
PIE=${PIE:-.venv/bin/pie-mlops}
PY=${PY:-.venv/bin/python}
[ -x "$PIE" ] || { echo "error: $PIE not found; run \`make install\` first" >&2; exit 2; }
LOGS=reports/reproduce
mkdir -p "$LOGS"
exec 9>"$LOGS/.lock"  # one reproduction per checkout: the lanes' logs and markers live here
flock -n 9 || { echo "error: another scripts/reproduce_cpu.sh runs in this checkout ($LOGS/.lock)" >&2; exit 2; }
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
PROFILES=(repro repro-e repro-bbc)

TIME=()  # GNU time records each stage's peak memory, where installed
[ -x /usr/bin/time ] && TIME=(/usr/bin/time -a -o "$LOGS/peak-rss-kib.txt" -f %M)
rm -f "$LOGS/peak-rss-kib.txt"

step() {  # one stage; a second try redoes only what the first left unfinished
  echo "== $(date -u +%T) $*"
  "${TIME[@]}" "$PIE" "$@" || { echo "== retrying: $*"; "${TIME[@]}" "$PIE" "$@"; }
}

# repro-e's BiLSTM has repro's registered names (pie-rotten_tomatoes-bilstm): a store of its own
E_STORE=$("$PY" scripts/reproduce.py "$NAME" --store-of repro-e)  # scripts/reproduce.py STORES
estep() { echo "== ($E_STORE)"; MLFLOW_TRACKING_URI=$E_STORE step "$@"; }

lane_a() {
  step --profile repro tune
  step --profile repro train
  step --profile repro prune
}

lane_b() {
  step --profile repro-bbc tune
  step --profile repro-bbc train
  step --profile repro-bbc prune
  step --profile repro-bbc compare
  estep --profile repro-e tune
  estep --profile repro-e train
  estep --profile repro-e prune
  estep --profile repro-e compare
}

start=${PIE_REPRO_START:-$(date +%s)}  # a resumed run counts from its first start
step --profile repro materialize
step --profile repro check rotten_tomatoes bbc_news
sync_loop() {  # each pass exports and commits only what finished since the last
  while sleep "${PIE_SYNC_SECONDS:-120}"; do
    "$PY" scripts/reproduce.py "$NAME" --sync --commit "${PROFILES[@]}" >> "$LOGS/sync.log" 2>&1 || echo "sync failed (retried next pass)" >> "$LOGS/sync.log"
  done
}
sync_loop &
sync_pid=$!
trap 'kill "$sync_pid" 2>/dev/null || true' EXIT
lane_a > "$LOGS/lane-a.log" 2>&1 &
a=$!
lane_b > "$LOGS/lane-b.log" 2>&1 &
b=$!
wait "$a" || { echo "lane A failed: $LOGS/lane-a.log"; wait "$b" || true; exit 1; }
wait "$b" || { echo "lane B failed: $LOGS/lane-b.log"; exit 1; }
unset OMP_NUM_THREADS MKL_NUM_THREADS
step --profile repro compare
step --profile repro report
wall=$(( $(date +%s) - start ))
peak=()  # the largest one process reached (the two lanes ran side by side)
[ -s "$LOGS/peak-rss-kib.txt" ] && peak=(--peak-rss-gib "$(sort -n "$LOGS/peak-rss-kib.txt" | tail -1 | awk '{print $1 / 1048576}')")
kill "$sync_pid" 2>/dev/null || true
"$PY" scripts/reproduce.py "$NAME" --sync --commit "${PROFILES[@]}"  # the last models
"$PY" scripts/reproduce.py "$NAME" --collect-only "${PROFILES[@]}" \
  --command "bash scripts/reproduce_cpu.sh $NAME" --wall-s "$wall" "${peak[@]}"
