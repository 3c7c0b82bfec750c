#!/usr/bin/env bash
# The committed reproduction (docs/results/NAME/) on a 2-core CPU, in two lanes of one thread
# each: two single-threaded processes get ~1.5x the models per hour of one two-threaded one
# (the BiLSTM's small matrices keep a second thread mostly idle). Both lanes share this
# checkout's MLflow store and Optuna storage; every model is still one tracked, registered
# version, and a rerun redoes only what is unfinished.
#   lane A: rotten_tomatoes tune and BiLSTM dense, MiniLM dense and pruned, then the BiLSTM's
#           random and ai groups
#   lane B: bbc_news (BiLSTM) end to end, then rotten_tomatoes' BiLSTM ft and wr groups of the
#           magnitude and impact criteria (each lane about half of the 2-core work)
# Then rotten_tomatoes' comparison, the report, and scripts/reproduce.py collects the results.
#   bash scripts/reproduce_cpu.sh NAME      (hours: run it with nohup; logs in reports/reproduce/)
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
# lane A helps lane B from the BiLSTM's last seed backwards
SEEDS_DESC=$("$PY" -c 'from pie_mlops.params import load_all, profile_path, seeds_for
print(",".join(map(str, reversed(seeds_for(load_all(profile_path("repro"))["prune"], "bilstm", "prune")))))')
rm -f "$LOGS/bilstm-dense-done"
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1

TIME=()  # GNU time records each stage's peak memory, where installed
[ -x /usr/bin/time ] && TIME=(/usr/bin/time -a -o "$LOGS/peak-rss-kib.txt" -f %M)
rm -f "$LOGS/peak-rss-kib.txt"

step() {  # one stage; a second try redoes only what the first left unfinished
  echo "== $(date -u +%T) $*"
  "${TIME[@]}" "$PIE" "$@" || { echo "== retrying: $*"; "${TIME[@]}" "$PIE" "$@"; }
}

lane_a() {
  step --profile repro tune
  step --profile repro train -a bilstm
  touch "$LOGS/bilstm-dense-done"
  step --profile repro train -a bert
  step --profile repro prune -a bert
  step --profile repro prune -a bilstm -m random-ft,random-ai,magnitude-ai,impact-ai
  # then help lane B from its last seed backwards (a (model, group, seed) is claimed once)
  step --profile repro prune -a bilstm -m magnitude-ft,magnitude-wr,impact-ft,impact-wr -s "$SEEDS_DESC"
}

lane_b() {
  step --profile repro-bbc tune
  step --profile repro-bbc train
  step --profile repro-bbc prune
  step --profile repro-bbc compare
  while [ ! -f "$LOGS/bilstm-dense-done" ]; do  # rotten_tomatoes' BiLSTM dense models come from lane A
    kill -0 "$1" 2>/dev/null || { echo "lane A stopped before the BiLSTM's dense models"; return 1; }
    sleep 10
  done
  step --profile repro prune -a bilstm -m magnitude-ft,magnitude-wr,impact-ft,impact-wr
}

start=${PIE_REPRO_START:-$(date +%s)}  # a resumed run counts from its first start
step --profile repro materialize
step --profile repro check rotten_tomatoes bbc_news
lane_a > "$LOGS/lane-a.log" 2>&1 &
a=$!
lane_b "$a" > "$LOGS/lane-b.log" 2>&1 &
b=$!
wait "$a" || { echo "lane A failed: $LOGS/lane-a.log"; wait "$b" || true; exit 1; }
wait "$b" || { echo "lane B failed: $LOGS/lane-b.log"; exit 1; }
unset OMP_NUM_THREADS MKL_NUM_THREADS
step --profile repro prune     # the whole grid: every model is found finished, or made now
step --profile repro compare
step --profile repro report
wall=$(( $(date +%s) - start ))
peak=()  # the largest one process reached (the two lanes ran side by side)
[ -s "$LOGS/peak-rss-kib.txt" ] && peak=(--peak-rss-gib "$(sort -n "$LOGS/peak-rss-kib.txt" | tail -1 | awk '{print $1 / 1048576}')")
"$PY" scripts/reproduce.py "$NAME" --collect-only repro repro-bbc \
  --command "bash scripts/reproduce_cpu.sh $NAME" --wall-s "$wall" "${peak[@]}"
