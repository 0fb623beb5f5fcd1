#!/bin/sh
# Records a trace with kvm_recorder under /dev/kvm and replays it with msrtrace.
# Exit 77 (ctest SKIP_RETURN_CODE) when /dev/kvm is not usable; the reason is printed.
# Usage: kvm_recorder_test.sh KVM_RECORDER MSRTRACE OUT.trace
set -u
recorder=$1 msrtrace=$2 out=$3
if [ ! -e /dev/kvm ]; then
  echo "SKIP: /dev/kvm does not exist on this machine"
  exit 77
fi
"$recorder" "$out"
rc=$?
if [ "$rc" -ne 0 ]; then
  exit "$rc"  # 77 = skipped (reason printed by kvm_recorder), else a failure.
fi
"$msrtrace" replay "$out" || exit 1
