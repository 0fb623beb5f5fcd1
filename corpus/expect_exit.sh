#!/bin/sh
# expect_exit.sh CODE CMD...: runs CMD and succeeds iff it exits with CODE (ctest can only
# check for zero). Used for deliberately incomplete traces, which replay clean with exit 3.
want="$1"
shift
"$@"
got=$?
if [ "$got" -ne "$want" ]; then
  echo "expected exit status $want, got $got" >&2
  exit 1
fi
exit 0
