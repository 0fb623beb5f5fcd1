#!/usr/bin/env bash
# Benchmark of `msrtrace reduce` on the golden buried divergence: a 100,000-event random-workload
# trace where the value recorded for one late RDMSR is wrong and the value the handlers return
# was written more than 20,000 events earlier (the case triage/reduce_test.cc checks). Prints
# the reduce summary, the wall time and peak RSS (GNU time), and fails unless the result has
# at most 5 events and still diverges the same way (msrtrace replay).
#
#   bench/reduce_bench.sh [BUILD_DIR] [EVENTS] [SEED]     (default build/default 100000 3)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build/default}
events=${2:-100000}
seed=${3:-3}
msrtrace=$build/tools/msrtrace
[[ -x $msrtrace ]] || { echo "reduce_bench: $msrtrace not built" >&2; exit 2; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

"$msrtrace" record --workload=random --seed="$seed" --events="$events" -o "$work/full.trace" >/dev/null
"$msrtrace" convert "$work/full.trace" "$work/full.json" >/dev/null
# Plant: the first RDMSR after 90% of the trace that returns what its vCPU last wrote to that MSR
# more than 20,000 events before (EFER excluded: it is an input of every event) gets a recorded
# value with bit 4 flipped.
msr=$(python3 - "$work/full.json" "$work/planted.json" <<'PY'
import json, sys
t = json.load(open(sys.argv[1]))
ev = t["events"]
last = {}
for i, e in enumerate(ev):
    o = e.get("outcome", {})
    if o.get("kind") != "RECORDED_KIND_RETIRED" or e.get("volatile_value") or e.get("rcx", "0") == str(0xc0000080):
        continue
    key = (e.get("vcpu_id", 0), int(e.get("rcx", 0)) & 0xffffffff)
    if e["exit"]["reason"] == 32:  # WRMSR
        last[key] = (i, ((int(e.get("rdx", 0)) & 0xffffffff) << 32) | (int(e.get("rax", 0)) & 0xffffffff))
        continue
    read = ((int(o.get("rdx_out", 0)) & 0xffffffff) << 32) | (int(o.get("rax_out", 0)) & 0xffffffff)
    if i > len(ev) * 9 // 10 and key in last and i - last[key][0] > 20000 and read == last[key][1] and read:
        o["rax_out"] = str(int(o.get("rax_out", 0)) ^ 0x10)
        json.dump(t, open(sys.argv[2], "w"))
        print(hex(key[1]))
        sys.stderr.write("planted at event %d (seq %s), cause at event %d\n" % (i, e["seq"], last[key][0]))
        sys.exit(0)
sys.exit("reduce_bench: no read far from its write")
PY
)
"$msrtrace" convert "$work/planted.json" "$work/planted.trace" >/dev/null

echo "command: msrtrace reduce planted.trace --divergence=value --msr=$msr --max-seconds=60 -o reduced.trace"
/usr/bin/time -f "wall %e s, user %U s, peak RSS %M KiB" \
  "$msrtrace" reduce "$work/planted.trace" --divergence=value --msr="$msr" --max-seconds=60 \
  -o "$work/reduced.trace"
n=$("$msrtrace" show --format=log "$work/reduced.trace" | grep -c '^#[0-9]')
echo "reduced trace: $n events"
"$msrtrace" show --format=log "$work/reduced.trace" || true
set +e
"$msrtrace" replay "$work/reduced.trace"
rc=$?
set -e
[[ $rc -eq 1 ]] || { echo "reduce_bench: FAIL: the reduced trace does not diverge (exit $rc)" >&2; exit 1; }
[[ $n -le 5 ]] || { echo "reduce_bench: FAIL: $n events > 5" >&2; exit 1; }
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
