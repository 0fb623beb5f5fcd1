#!/bin/sh
# End-to-end checks of `msrtrace reduce` and `msrtrace coverage` through the binary: exit codes,
# one-line errors, written files. Usage: cli_e2e_test.sh MSRTRACE SOURCE_DIR
set -eu
m=$1
src=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

# coverage: summary, JSON and HTML of the golden corpus; the JSON is its own baseline.
"$m" coverage "$src/corpus/golden" --json="$work/c.json" --html="$work/c.html" >"$work/out" ||
  fail "coverage exit $?"
grep -q '^coverage ' "$work/out" || fail "no summary line"
grep -q '"format": "msrtrace-coverage-1"' "$work/c.json" || fail "no JSON report"
grep -q '<!DOCTYPE html>' "$work/c.html" || fail "no HTML page"
"$m" coverage "$src/corpus/golden" --baseline="$work/c.json" >/dev/null || fail "self-baseline"

# A baseline that covers more: exit 1, one line naming what dropped.
one=$(ls "$src"/corpus/golden/*.trace | head -1)
"$m" coverage "$one" --json="$work/one.json" >/dev/null
set +e
"$m" coverage "$one" --baseline="$work/c.json" >/dev/null 2>"$work/err"
rc=$?
set -e
[ $rc -eq 1 ] || fail "dropped coverage: exit $rc, want 1"
[ "$(wc -l <"$work/err")" -eq 1 ] || fail "dropped coverage: not one line: $(cat "$work/err")"
grep -q 'coverage dropped against' "$work/err" || fail "dropped coverage message"

# Bad input: one line, exit 2.
echo "not json" >"$work/bad.json"
set +e
"$m" coverage "$one" --baseline="$work/bad.json" >/dev/null 2>"$work/err"; rc=$?
[ $rc -eq 2 ] && [ "$(wc -l <"$work/err")" -eq 1 ] || fail "bad baseline: exit $rc $(cat "$work/err")"
"$m" coverage "$work/bad.json" >/dev/null 2>"$work/err"; rc=$?
[ $rc -eq 2 ] || fail "bad trace: exit $rc"
# reduce: a clean trace has no divergence to keep.
"$m" reduce "$one" -o "$work/r.trace" >/dev/null 2>"$work/err"; rc=$?
[ $rc -eq 2 ] && [ "$(wc -l <"$work/err")" -eq 1 ] || fail "reduce clean: exit $rc $(cat "$work/err")"
[ ! -e "$work/r.trace" ] || fail "reduce wrote a file on error"
"$m" reduce "$one" 2>/dev/null; rc=$?
[ $rc -eq 2 ] || fail "reduce without -o: exit $rc"
# --skip-bad: an unreadable trace is reported and skipped.
"$m" coverage --skip-bad "$work/bad.json" "$one" >/dev/null 2>"$work/err"; rc=$?
[ $rc -eq 0 ] && grep -q "1 unreadable" "$work/err" || fail "skip-bad: exit $rc"
set -e
echo "triage cli e2e: ok"
