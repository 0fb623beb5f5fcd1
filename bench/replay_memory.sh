#!/usr/bin/env bash
# Peak resident memory and throughput of `msrtrace replay` by trace size (docs/benchmarks.md
# "Replay memory"). Records `msrtrace record --workload=random --seed=1 --events=N` for each N,
# then replays each trace REPS times under /usr/bin/time -v and prints a Markdown table of the
# medians: peak RSS of replay (and of record), trace size, and events/s from the replay summary.
#
#   bench/replay_memory.sh [MSRTRACE_BINARY] [N...]
#   bench/replay_memory.sh build/default/tools/msrtrace 10000 100000 1000000 5000000
#
# Environment: REPS (default 5), GZIP=1 (record and replay gzip traces, random_N.trace.gz),
# WORKDIR (default: a new directory under ${TMPDIR:-/tmp}, removed at the end).
# Needs GNU time (/usr/bin/time, Debian package `time`).
set -euo pipefail

MSRTRACE=${1:-build/default/tools/msrtrace}
shift || true
SIZES=("$@")
((${#SIZES[@]} > 0)) || SIZES=(10000 100000 1000000)
REPS=${REPS:-5}
EXT=.trace
[[ "${GZIP:-0}" == 1 ]] && EXT=.trace.gz

if [[ ! -x /usr/bin/time ]]; then
  echo "replay_memory.sh: /usr/bin/time not found (apt-get install time)" >&2
  exit 2
fi
if [[ ! -x "$MSRTRACE" ]]; then
  echo "replay_memory.sh: $MSRTRACE is not an executable (build the msrtrace target)" >&2
  exit 2
fi

OWN_WORKDIR=0
if [[ -z "${WORKDIR:-}" ]]; then
  WORKDIR=$(mktemp -d "${TMPDIR:-/tmp}/msrtrace_replay_memory.XXXXXX")
  OWN_WORKDIR=1
fi
cleanup() { if ((OWN_WORKDIR)); then rm -rf "$WORKDIR"; fi; }
trap cleanup EXIT

# Median of numbers on stdin (one per line).
median() { sort -g | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }
# Peak RSS in KiB from a GNU time -v report.
peak_kib() { sed -n 's/^[[:space:]]*Maximum resident set size (kbytes): //p' "$1"; }

echo "| events | trace size (MiB, $EXT) | record peak RSS (MiB) | replay peak RSS (MiB), median of $REPS | replay events/s, median of $REPS |"
echo "|---:|---:|---:|---:|---:|"
for n in "${SIZES[@]}"; do
  trace="$WORKDIR/random_$n$EXT"
  /usr/bin/time -v -o "$WORKDIR/record.time" \
    "$MSRTRACE" record --workload=random --seed=1 --events="$n" -o "$trace" >/dev/null
  rec_kib=$(peak_kib "$WORKDIR/record.time")
  size=$(stat -c %s "$trace")
  : >"$WORKDIR/rss"
  : >"$WORKDIR/eps"
  for ((i = 0; i < REPS; i++)); do
    rc=0
    /usr/bin/time -v -o "$WORKDIR/replay.time" "$MSRTRACE" replay "$trace" >"$WORKDIR/replay.out" ||
      rc=$?
    if ((rc != 0)); then
      echo "replay_memory.sh: msrtrace replay $trace exited $rc:" >&2
      cat "$WORKDIR/replay.out" >&2
      exit 1
    fi
    peak_kib "$WORKDIR/replay.time" >>"$WORKDIR/rss"
    # "  N events in X s (Y events/s)"
    sed -n 's/.* events in .* s (\([0-9.]*\) events\/s).*/\1/p' "$WORKDIR/replay.out" >>"$WORKDIR/eps"
  done
  rss=$(median <"$WORKDIR/rss")
  eps=$(median <"$WORKDIR/eps")
  awk -v n="$n" -v size="$size" -v rec="$rec_kib" -v rss="$rss" -v eps="$eps" 'BEGIN {
    printf "| %d | %.1f | %.1f | %.1f | %.0f |\n", n, size / 1048576, rec / 1024, rss / 1024, eps }'
  rm -f "$trace"
done
