#!/usr/bin/env bash
# Runs ctest in build dir $1 for label regex $2 and closes with the plain
# line "N passed, N failed" that CI reads.
set -uo pipefail
dir=$1 label=${2:-quick}
log=$(mktemp)
trap 'rm -f "$log"' EXIT
ctest --test-dir "$dir" -L "$label" --output-on-failure -j "$(nproc)" 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
sum=$(grep -E '^[0-9]+% tests passed, [0-9]+ tests? failed out of [0-9]+' "$log" | tail -n 1)
if [ -n "$sum" ]; then
  failed=$(echo "$sum" | sed -E 's/.* ([0-9]+) tests? failed out of ([0-9]+).*/\1/')
  total=$(echo "$sum" | sed -E 's/.* failed out of ([0-9]+).*/\1/')
  echo "$((total - failed)) passed, $failed failed"
else
  echo "0 passed, 1 failed"
  rc=1
fi
exit "$rc"
