#!/usr/bin/env bash
# Runs a libFuzzer binary the way its build meant it to run. libFuzzer does not read .options
# files or find dictionaries by itself; this script does:
#
#   fuzz/run_fuzzer.sh <fuzzer> [libFuzzer flags...] [-corpus=DIR] [-- SEED_DIR...]
#
#   <fuzzer>.options  ([libfuzzer] key = value lines, next to the binary) become -key=value
#                     flags; flags given here come later and win;
#   <fuzzer>.dict     is passed as -dict= unless a -dict= flag is given;
#   -corpus=DIR       where new inputs go (created; default ./<fuzzer name>-corpus); it is the
#                     first corpus directory, so the seed directories are never written to;
#   SEED_DIR...       read-only seeds (default: <fuzzer>_seeds next to the binary, the seeds
#                     msrtrace_add_fuzzer generates, when it exists).
# Crash artifacts go to the current directory unless -artifact_prefix= is given. Exit status is
# the fuzzer's (non-zero on a finding).
set -euo pipefail
if (($# < 1)); then
  echo "usage: run_fuzzer.sh <fuzzer> [libFuzzer flags...] [-corpus=DIR] [-- SEED_DIR...]" >&2
  exit 2
fi
fuzzer=$1
shift
[[ -x $fuzzer ]] || { echo "run_fuzzer.sh: $fuzzer: not an executable" >&2; exit 2; }
name=$(basename "$fuzzer")
corpus=./$name-corpus
flags=()
have_dict=0
while (($#)) && [[ $1 != -- ]]; do
  case $1 in
    -corpus=*) corpus=${1#-corpus=} ;;
    -dict=*) have_dict=1 flags+=("$1") ;;
    *) flags+=("$1") ;;
  esac
  shift
done
(($#)) && shift
seeds=("$@")
if ((${#seeds[@]} == 0)) && [[ -d ${fuzzer}_seeds ]]; then
  seeds=("${fuzzer}_seeds")
fi
opts=()
if [[ -f ${fuzzer}.options ]]; then
  section=
  while IFS= read -r line || [[ -n $line ]]; do
    line=${line%%#*}
    line=${line// /}
    [[ -z $line ]] && continue
    if [[ $line == \[*\] ]]; then
      section=$line
      continue
    fi
    [[ $section == "[libfuzzer]" && $line == *=* ]] && opts+=("-$line")
  done <"${fuzzer}.options"
fi
if ((!have_dict)) && [[ -f ${fuzzer}.dict ]]; then
  opts+=("-dict=${fuzzer}.dict")
fi
mkdir -p "$corpus"
echo "run_fuzzer.sh: $fuzzer ${opts[*]} ${flags[*]} $corpus ${seeds[*]}" >&2
exec "$fuzzer" "${opts[@]}" "${flags[@]}" "$corpus" "${seeds[@]}"
