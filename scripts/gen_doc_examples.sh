#!/usr/bin/env bash
# The JSON examples of docs/cli.md (docs/examples/*.json), produced by running the tool on
# checked-in traces, so that the documented reports are what the tool prints.
#
#   scripts/gen_doc_examples.sh MSRTRACE           rewrites docs/examples/
#   scripts/gen_doc_examples.sh --check MSRTRACE   exit 1 naming every example that differs
#
# To keep the examples short and stable, lists are cut to their first two entries, wall-clock
# figures (seconds, events_per_second) are set to 0 and the keys of map fields (which protobuf
# prints in no fixed order) are sorted. ctest runs --check (doc_examples_up_to_date).
set -euo pipefail
check=0
if [[ ${1:-} == --check ]]; then
  check=1
  shift
fi
if [[ $# -ne 1 ]]; then
  echo "usage: $0 [--check] MSRTRACE" >&2
  exit 2
fi
m=$(realpath "$1")
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/msrtrace-doc-examples-XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/out"

# Relative paths in the commands: the reports name their inputs as given.
cd "$root"
run() {  # run NAME EXPECTED_EXIT CMD...
  local name=$1 want=$2
  shift 2
  local got=0
  "$m" "$@" >"$work/$name.raw" 2>"$work/$name.err" || got=$?
  if [[ $got -ne $want ]]; then
    echo "gen_doc_examples: msrtrace $* exited $got, expected $want:" >&2
    cat "$work/$name.err" >&2
    exit 1
  fi
  python3 - "$work/$name.raw" "$work/out/$name.json" <<'PY'
import json, sys
# Proto map fields print in no fixed order: their keys are sorted.
MAPS = ("per_vcpu", "lines_by_rendering", "lines_by_shape", "cases")
def trim(v, key=""):
    if isinstance(v, list):
        return [trim(x) for x in v[:2]]
    if isinstance(v, dict):
        items = sorted(v.items()) if key in MAPS else v.items()
        return {k: (0 if k in ("seconds", "events_per_second") else trim(x, k)) for k, x in items}
    return v
with open(sys.argv[1]) as f:
    doc = json.load(f)
with open(sys.argv[2], "w") as f:
    json.dump(trim(doc), f, indent=2, sort_keys=False)
    f.write("\n")
PY
}

run replay 0 replay --format=json corpus/golden/faults.trace
run stats 0 stats --format=json corpus/golden/faults.trace
run diff 1 diff --format=json corpus/golden/linux-boot-intel-icx.trace \
  corpus/golden/linux-boot-amd-zen3.trace
run msrs 0 msrs --profile=intel-icx --format=json
run profiles 0 profiles --profile=intel-icx --format=json
run import 0 import --format=json corpus/production/perf_vmx.txt

if ((check)); then
  status=0
  for f in "$work"/out/*.json; do
    name=$(basename "$f")
    if ! cmp -s "$f" "$root/docs/examples/$name"; then
      echo "docs/examples/$name is out of date (scripts/gen_doc_examples.sh build/default/tools/msrtrace):" >&2
      diff -u "$root/docs/examples/$name" "$f" | head -20 >&2 || true
      status=1
    fi
  done
  exit $status
fi
mkdir -p "$root/docs/examples"
cp "$work"/out/*.json "$root/docs/examples/"
echo "wrote $(ls "$work"/out | wc -l) examples to docs/examples/"
