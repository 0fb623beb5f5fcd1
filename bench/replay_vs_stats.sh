#!/usr/bin/env bash
# Replay against a parse-only pass: CPU time (user+sys, GNU time) of `msrtrace replay` and of
# `msrtrace stats` (reads and decodes every event, nothing else) on the same `random` trace,
# run alternately REPS times; prints each run, the medians and their ratio (the target in
# docs/benchmarks.md: replay within 1.3x of stats).
#
#   bench/replay_vs_stats.sh build/default/tools/msrtrace            # 1 000 000 events, 7 runs
#   EVENTS=200000 REPS=5 bench/replay_vs_stats.sh build/default/tools/msrtrace
#
# Needs GNU time (/usr/bin/time, Debian package `time`). The trace goes to a temporary directory
# that is removed at exit.
set -euo pipefail

msrtrace=${1:?usage: $0 path/to/msrtrace}
EVENTS=${EVENTS:-1000000}
REPS=${REPS:-7}
[[ -x /usr/bin/time ]] || { echo "needs /usr/bin/time (apt-get install time)" >&2; exit 2; }

dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
"$msrtrace" record --workload=random --seed=1 --events="$EVENTS" -o "$dir/r.trace" >/dev/null

cpu() {  # CPU seconds (user+sys) of one run of "$@"; stdout discarded, exit status ignored.
  /usr/bin/time -f '%U %S' -o "$dir/time" "$@" >/dev/null 2>"$dir/stderr" || true
  awk '{printf "%.2f\n", $1 + $2}' "$dir/time"
}

median() { sort -n | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }

echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
: >"$dir/stats"
: >"$dir/replay"
for ((i = 0; i < REPS; i++)); do
  cpu "$msrtrace" stats "$dir/r.trace" >>"$dir/stats"
  cpu "$msrtrace" replay "$dir/r.trace" >>"$dir/replay"
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
s=$(median <"$dir/stats")
r=$(median <"$dir/replay")
echo "events: $EVENTS, runs: $REPS (alternating)"
echo "stats  CPU s: $(paste -sd' ' "$dir/stats")  median $s"
echo "replay CPU s: $(paste -sd' ' "$dir/replay")  median $r"
awk -v r="$r" -v s="$s" 'BEGIN {printf "replay / stats: %.2fx\n", r / s}'
