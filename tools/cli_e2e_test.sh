#!/bin/sh
# End-to-end test of the msrtrace binary: every subcommand, --help, and every exit status.
# Usage: cli_e2e_test.sh MSRTRACE WORKDIR
set -u
M="$1"
W="$2"
rm -rf "$W" && mkdir -p "$W" || exit 1
fails=0

# expect CODE CMD...: runs CMD, checks its exit status; stdout/stderr go to $W/out, $W/err.
expect() {
  want="$1"
  shift
  "$@" >"$W/out" 2>"$W/err"
  got=$?
  if [ "$got" -ne "$want" ]; then
    echo "FAIL: expected exit $want, got $got: $*"
    sed 's/^/  stderr: /' "$W/err" | head -5
    fails=$((fails + 1))
  fi
}
# contains FILE TEXT
contains() {
  if ! grep -q -- "$2" "$1"; then
    echo "FAIL: $1 does not contain '$2'"
    fails=$((fails + 1))
  fi
}
# one_line FILE: a diagnostic is exactly one line and no crash marker.
one_line() {
  n=$(wc -l <"$1")
  if [ "$n" -ne 1 ]; then
    echo "FAIL: expected one diagnostic line, got $n:"
    cat "$1"
    fails=$((fails + 1))
  fi
}

expect 0 "$M" --help
contains "$W/out" "replay"
expect 2 "$M"
expect 2 "$M" frobnicate
one_line "$W/err"
for c in record replay show convert diff stats msrs; do
  expect 0 "$M" $c --help
  contains "$W/out" "Usage: msrtrace $c"
done
expect 2 "$M" replay --no-such-flag x
one_line "$W/err"
expect 2 "$M" replay --max-divergences=lots x
one_line "$W/err"

# record / replay.
expect 0 "$M" record --workload=linux-boot --profile=amd-zen3 -o "$W/boot.trace"
contains "$W/out" "recorded"
expect 0 "$M" record --workload=random --seed=3 --events=20000 -o "$W/random.trace.gz"
expect 0 "$M" replay "$W/boot.trace" "$W/random.trace.gz"
contains "$W/out" "summary: 2 traces"
expect 0 "$M" replay --format=json --repeat=2 --resume-after=50 --junit="$W/junit.xml" "$W"
contains "$W/out" '"exit_code":0'
contains "$W/junit.xml" "<testsuites"
expect 0 "$M" replay --shard=1/2 "$W"
contains "$W/out" "summary: 1 traces"
expect 2 "$M" replay --shard=2/2 "$W"

# Incomplete traces: 3. A wrong recorded value: 1. Garbage: 2.
expect 0 "$M" record --golden=incomplete-torn-tail -o "$W/torn.trace"
expect 3 "$M" replay "$W/torn.trace"
expect 0 "$M" show --no-memory "$W/boot.trace"
contains "$W/out" "events {"
sed '0,/rip_out: [0-9a-fx]*/s//rip_out: 12345/' "$W/out" >"$W/bad.textproto"
expect 0 "$M" convert "$W/bad.textproto" "$W/bad.trace"
expect 1 "$M" replay "$W/bad.trace"
contains "$W/out" "divergence 1: seq"
printf 'not a trace' >"$W/junk.trace"
expect 2 "$M" replay "$W/junk.trace"
one_line "$W/err"
expect 2 "$M" replay "$W/missing.trace"
one_line "$W/err"
size=$(wc -c <"$W/boot.trace")
head -c $((size - 20)) "$W/boot.trace" >"$W/cut.trace"
expect 3 "$M" replay "$W/cut.trace"
head -c 100 "$W/boot.trace" >"$W/cut2.trace"
expect 2 "$M" replay "$W/cut2.trace"
one_line "$W/err"

# show / convert / diff / stats / msrs.
expect 0 "$M" show --format=json --head=2 "$W/boot.trace"
contains "$W/out" '"header"'
expect 0 "$M" convert "$W/boot.trace" "$W/boot.json"
expect 0 "$M" convert "$W/boot.json" "$W/boot2.trace"
expect 0 "$M" diff "$W/boot.trace" "$W/boot2.trace"
contains "$W/out" "identical"
expect 1 "$M" diff "$W/boot.trace" "$W/bad.trace"
contains "$W/out" "first difference"
expect 2 "$M" convert "$W/junk.trace" "$W/x.trace"
one_line "$W/err"
expect 0 "$M" stats --format=json "$W/boot.trace"
contains "$W/out" '"per_msr"'
expect 0 "$M" msrs --profile=all --format=csv
contains "$W/out" "profile,index"
expect 0 "$M" msrs --format=json
expect 2 "$M" msrs --profile=pentium
one_line "$W/err"

# Reliability (issue 9). A failed write to stdout is exit 2 with the OS reason, for every
# command that prints results (item 6).
# full CMD...: runs CMD with stdout on /dev/full; expects exit 2 and the reason on stderr.
full() {
  "$@" >/dev/full 2>"$W/err"
  got=$?
  if [ "$got" -ne 2 ] || ! grep -q "No space left on device" "$W/err"; then
    echo "FAIL: stdout on /dev/full: exit $got: $*"
    sed 's/^/  stderr: /' "$W/err" | head -3
    fails=$((fails + 1))
  fi
}
if [ -w /dev/full ]; then
  full "$M" replay "$W/boot.trace"
  full "$M" replay --format=json "$W/boot.trace"
  full "$M" show "$W/boot.trace"
  full "$M" show --format=log "$W/boot.trace"
  full "$M" stats "$W/boot.trace"
  full "$M" diff "$W/boot.trace" "$W/boot2.trace"
  full "$M" msrs
  full "$M" convert --to=json "$W/boot.trace" -
  # A trace written to a full device: exit 2 naming the reason.
  expect 2 "$M" record --workload=random --events=100 -o /dev/full
  contains "$W/err" "No space left on device"
fi
# stdin is spooled for --repeat and --resume-after (item 8), and reported as <stdin>.
expect 0 "$M" replay --repeat=2 --resume-after=10 - <"$W/boot.trace"
contains "$W/out" "<stdin>: clean"
# -o replaces atomically: a failed convert leaves the old file (item 7).
cp "$W/boot.trace" "$W/keep.trace"
printf 'header { bogus' >"$W/junk.textproto"
expect 2 "$M" convert "$W/junk.textproto" "$W/keep.trace"
cmp -s "$W/boot.trace" "$W/keep.trace" || { echo "FAIL: failed convert changed -o"; fails=$((fails + 1)); }
ls "$W" | grep -q 'keep.trace.tmp-' && { echo "FAIL: temporary file left"; fails=$((fails + 1)); }

if [ "$fails" -ne 0 ]; then
  echo "$fails failures"
  exit 1
fi
echo "all end-to-end checks passed"
