#!/bin/sh
# Regenerates the golden traces of corpus/golden/ (one per GoldenTrace, workloads/golden_traces.h)
# with `msrtrace record --golden=NAME`, or checks that the committed files equal fresh ones.
#
#   tools/regen_golden.sh [MSRTRACE [GOLDEN_DIR]]             rewrite corpus/golden/*.trace
#   tools/regen_golden.sh --check MSRTRACE GOLDEN_DIR TMPDIR  exit 1 if any file differs
#
# Recordings are deterministic (simulated host clock, creation time 0), so a difference means a
# handler's behaviour changed: review it, then rerun without --check and commit the new files.
set -u
check=0
if [ "${1:-}" = "--check" ]; then
  check=1
  shift
fi
here=$(cd "$(dirname "$0")" && pwd)
M="${1:-$here/../build/tools/msrtrace}"
GOLDEN="${2:-$here/../corpus/golden}"
OUT="$GOLDEN"
if [ "$check" -eq 1 ]; then
  OUT="${3:?--check needs a scratch directory}"
  rm -rf "$OUT" && mkdir -p "$OUT" || exit 2
fi
names=$("$M" record --list | awk '/^Golden traces/ { g = 1; next } g { print $1 }')
[ -n "$names" ] || { echo "regen_golden: $M lists no golden traces" >&2; exit 2; }
status=0
for name in $names; do
  if ! "$M" record --golden="$name" -o "$OUT/$name.trace" >/dev/null; then
    echo "regen_golden: recording $name failed" >&2
    exit 2
  fi
  if [ "$check" -eq 1 ] && ! cmp -s "$OUT/$name.trace" "$GOLDEN/$name.trace"; then
    echo "golden trace $name.trace differs from a fresh recording (or is missing);" \
         "run tools/regen_golden.sh after reviewing the change" >&2
    "$M" diff "$GOLDEN/$name.trace" "$OUT/$name.trace" >&2
    status=1
  fi
done
if [ "$check" -eq 1 ]; then
  for f in "$GOLDEN"/*.trace; do
    n=$(basename "$f" .trace)
    echo "$names" | grep -qx "$n" || { echo "stale golden file $f (no such GoldenTrace)" >&2; status=1; }
  done
  [ "$status" -eq 0 ] && echo "all golden traces are up to date"
fi
exit $status
