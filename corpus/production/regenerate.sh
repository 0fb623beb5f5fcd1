#!/bin/sh
# Re-imports every capture of MANIFEST into its committed .trace.
# Usage: corpus/production/regenerate.sh path/to/msrtrace
set -eu
msrtrace=$1
dir=$(dirname "$0")
grep -v '^#' "$dir/MANIFEST" | grep -v '^$' | while IFS= read -r line; do
  capture=$(echo "$line" | awk -F' [|] ' '{print $1}')
  flags=$(echo "$line" | awk -F' [|] ' '{print $2}')
  base=$(echo "$capture" | sed -e 's/\.gz$//' -e 's/\.txt$//')
  # shellcheck disable=SC2086
  "$msrtrace" import "$dir/$capture" $flags -o "$dir/$base.trace" > /dev/null
  echo "wrote $dir/$base.trace"
done
