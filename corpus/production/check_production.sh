#!/bin/sh
# Imports every capture listed in MANIFEST, checks its coverage line, and replays the fresh
# import and the committed .trace with the volatile policy for imports (kind-only).
# Usage: check_production.sh MSRTRACE CORPUS_DIR OUT_DIR
set -u
msrtrace=$1 dir=$2 out=$3
mkdir -p "$out"
fail=0
n=0
while IFS= read -r line; do
  case "$line" in '#'*|'') continue ;; esac
  capture=$(echo "$line" | awk -F' [|] ' '{print $1}')
  flags=$(echo "$line" | awk -F' [|] ' '{print $2}')
  expect=$(echo "$line" | awk -F' [|] ' '{print $3}')
  base=$(echo "$capture" | sed -e 's/\.gz$//' -e 's/\.txt$//')
  n=$((n + 1))
  # shellcheck disable=SC2086 # flags are a word list.
  if ! "$msrtrace" import "$dir/$capture" $flags -o "$out/$base.trace" > "$out/$base.summary"; then
    echo "FAIL: import $capture"; fail=1; continue
  fi
  if ! grep -qF "$expect" "$out/$base.summary"; then
    echo "FAIL: $capture: expected '$expect' in the summary:"; cat "$out/$base.summary"; fail=1
  fi
  if grep -q "bad)" "$out/$base.summary" && ! grep -q " 0 bad)" "$out/$base.summary"; then
    echo "FAIL: $capture has bad lines"; fail=1
  fi
  if ! "$msrtrace" replay --volatile=kind-only "$out/$base.trace" > "$out/$base.replay"; then
    echo "FAIL: replay of the fresh import of $capture:"; cat "$out/$base.replay"; fail=1
  fi
  if [ -f "$dir/$base.trace" ]; then
    if ! "$msrtrace" replay --volatile=kind-only "$dir/$base.trace" > "$out/$base.committed.replay"; then
      echo "FAIL: replay of committed $base.trace:"; cat "$out/$base.committed.replay"; fail=1
    fi
  else
    echo "FAIL: $dir/$base.trace is missing (run regenerate.sh)"; fail=1
  fi
done < "$dir/MANIFEST"
# The same capture without the ignore policy: KVM's default would #GP the unknown MSR, the
# capture shows it read as 0, and the report says so.
"$msrtrace" import "$dir/perf_vmx.txt" --format=json > "$out/perf_default.json" || fail=1
grep -qF '"gp_here_only":"1"' "$out/perf_default.json" || { echo "FAIL: perf_vmx default policy"; fail=1; }
# Strict mode rejects a capture with a bad line, naming it.
printf 'qemu-1 [000] d.... 1.0: kvm_msr: msr_read 1b = 0x1\nnot a trace line\n' > "$out/bad.txt"
if "$msrtrace" import --strict "$out/bad.txt" > /dev/null 2> "$out/bad.err"; then
  echo "FAIL: --strict accepted a bad line"; fail=1
fi
grep -qF "bad.txt:2:1:" "$out/bad.err" || { echo "FAIL: --strict message"; cat "$out/bad.err"; fail=1; }
# A tolerated shape is an error under --strict, naming the line.
if "$msrtrace" import --strict "$dir/pasted_bare_vmx.txt" > /dev/null 2> "$out/strict_bare.err"; then
  echo "FAIL: --strict accepted bare lines"; fail=1
fi
grep -qF "pasted_bare_vmx.txt:1: --strict" "$out/strict_bare.err" || { echo "FAIL: --strict bare message"; cat "$out/strict_bare.err"; fail=1; }
# A truncated gzip capture is an error unless --accept-truncated; then the summary says so.
size=$(wc -c < "$dir/ftrace_svm_kernel.txt.gz")
head -c $((size - 6)) "$dir/ftrace_svm_kernel.txt.gz" > "$out/cut.txt.gz"
if "$msrtrace" import "$out/cut.txt.gz" > /dev/null 2> "$out/cut.err"; then
  echo "FAIL: a truncated .gz imported without --accept-truncated"; fail=1
fi
grep -qF "truncated capture" "$out/cut.err" || { echo "FAIL: truncated .gz message"; cat "$out/cut.err"; fail=1; }
"$msrtrace" import --accept-truncated "$out/cut.txt.gz" > "$out/cut.summary" || { echo "FAIL: --accept-truncated"; fail=1; }
grep -qF "truncated: " "$out/cut.summary" || { echo "FAIL: truncated summary"; cat "$out/cut.summary"; fail=1; }
echo "checked $n captures"
exit $fail
