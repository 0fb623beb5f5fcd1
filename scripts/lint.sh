#!/usr/bin/env bash
# Lint gates: clang-format (Google style, .clang-format) and clang-tidy (.clang-tidy) over the
# project's own C++ sources. Needs the default build's compile_commands.json for clang-tidy.
set -euo pipefail
cd "$(dirname "$0")/.."
mapfile -t files < <(git ls-files '*.cc' '*.h' | grep -v '^build/')
echo "lint: clang-format on ${#files[@]} files"
status=0
clang-format-14 --dry-run --Werror "${files[@]}" || status=1

db=build/default
if [[ ! -f $db/compile_commands.json ]]; then
  cmake --preset default >/dev/null
fi
# Generated protobuf headers must exist for clang-tidy to parse the sources that include them.
cmake --build "$db" --target msrtrace_trace_proto msrtrace_report_proto >/dev/null 2>&1 || true
mapfile -t srcs < <(git ls-files '*.cc' | grep -v -e '^build/' -e '^fuzz/oss-fuzz/')
echo "lint: clang-tidy on ${#srcs[@]} translation units"
log=$(mktemp)
run-clang-tidy-14 -p "$db" -j "${MSRTRACE_JOBS:-$(nproc)}" -quiet "${srcs[@]}" >"$log" 2>&1 || {
  grep -E "warning:|error:" "$log" | sort -u | head -100
  echo "lint: clang-tidy found problems (full log: $log)" >&2
  status=1
}
if ((status)); then
  echo "lint: FAILED" >&2
  exit 1
fi
echo "lint: clean"
