#!/usr/bin/env bash
# Replay against a parse-only pass: `msrtrace stats` (reads and decodes every event, counts them,
# nothing else), `msrtrace replay --read-ahead=false` (one thread: read, decode, run each exit)
# and `msrtrace replay` (the default: reading and decoding on a second thread, overlapping the
# exits) on the same `random` trace, run in turn REPS times. Prints each run's wall-clock and CPU
# seconds (user+sys, GNU time), the medians and the ratios to stats (the target in
# docs/benchmarks.md: replay within 1.3x of stats).
#
#   bench/replay_vs_stats.sh build/default/tools/msrtrace            # 1 000 000 events, 7 runs
#   EVENTS=3000000 REPS=7 bench/replay_vs_stats.sh build/default/tools/msrtrace
#   GZIP=1 bench/replay_vs_stats.sh build/default/tools/msrtrace     # the same, gzip-compressed
#
# Needs GNU time (/usr/bin/time, Debian package `time`). The trace goes to a temporary directory
# that is removed at exit.
set -euo pipefail

msrtrace=${1:?usage: $0 path/to/msrtrace}
EVENTS=${EVENTS:-1000000}
REPS=${REPS:-7}
GZIP=${GZIP:-0}
[[ -x /usr/bin/time ]] || { echo "needs /usr/bin/time (apt-get install time)" >&2; exit 2; }

dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
trace=$dir/r.trace
((GZIP)) && trace=$dir/r.trace.gz  # The .gz name makes the writer compress.
"$msrtrace" record --workload=random --seed=1 --events="$EVENTS" -o "$trace" >/dev/null

# One run of "$@": appends "wall cpu" (seconds) to the file $1; stdout discarded, exit status
# ignored (replay exits 0, stats 0).
run() {
  local out=$1
  shift
  /usr/bin/time -f '%e %U %S' -o "$dir/time" "$@" >/dev/null 2>"$dir/stderr" || true
  awk '{printf "%.2f %.2f\n", $1, $2 + $3}' "$dir/time" >>"$out"
}

median() { sort -n | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }
column() { awk -v c="$2" '{print $c}' "$1"; }

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
: >"$dir/stats"
: >"$dir/serial"
: >"$dir/ahead"
for ((i = 0; i < REPS; i++)); do
  run "$dir/stats" "$msrtrace" stats "$trace"
  run "$dir/serial" "$msrtrace" replay --read-ahead=false "$trace"
  run "$dir/ahead" "$msrtrace" replay "$trace"
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "events: $EVENTS$( ((GZIP)) && echo ' (gzip)'), runs: $REPS (in turn)"
echo
echo "| command | wall s (runs) | wall median | CPU s (runs) | CPU median | wall / stats | CPU / stats |"
echo "|---|---|---:|---|---:|---:|---:|"
sw=$(column "$dir/stats" 1 | median)
sc=$(column "$dir/stats" 2 | median)
for f in stats serial ahead; do
  case $f in
    stats) name='`msrtrace stats`' ;;
    serial) name='`msrtrace replay --read-ahead=false`' ;;
    ahead) name='`msrtrace replay`' ;;
  esac
  w=$(column "$dir/$f" 1 | median)
  c=$(column "$dir/$f" 2 | median)
  printf '| %s | %s | %s | %s | %s | %s | %s |\n' "$name" "$(column "$dir/$f" 1 | paste -sd' ')" "$w" \
    "$(column "$dir/$f" 2 | paste -sd' ')" "$c" \
    "$(awk -v a="$w" -v b="$sw" 'BEGIN {printf "%.2fx", a / b}')" \
    "$(awk -v a="$c" -v b="$sc" 'BEGIN {printf "%.2fx", a / b}')"
done
