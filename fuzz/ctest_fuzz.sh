#!/usr/bin/env bash
# Runs a libFuzzer binary briefly for ctest: ctest_fuzz.sh <fuzzer> <workdir> <flags...> -- <corpus dirs...>
# New inputs go to a fresh scratch directory (never into the seed corpus), crash artifacts to
# <workdir>/. Exit status is the fuzzer's.
set -euo pipefail
fuzzer=$1 workdir=$2
shift 2
flags=()
while (($#)) && [[ $1 != -- ]]; do flags+=("$1"); shift; done
(($#)) && shift
rm -rf "$workdir/scratch"
mkdir -p "$workdir/scratch"
opts=()
[[ -f ${fuzzer}.options ]] && while IFS='=' read -r k v; do
  k=${k// /} v=${v// /}
  [[ -n $k && $k != \[* && $k != \#* ]] && opts+=("-$k=$v")
done <"${fuzzer}.options"
exec "$fuzzer" "${opts[@]}" "${flags[@]}" -artifact_prefix="$workdir/" -print_final_stats=1 \
  "$workdir/scratch" "$@"
