#!/usr/bin/env bash
# check_metrics.sh - lints a representative /metrics exposition with promtool.
# $1 is the test_prom binary: `test_prom --write-exposition FILE` writes every
# metric family of DESIGN.md section 5 with realistic labels and histograms,
# then `promtool check metrics` must parse it and report no problem. Run by
# the CTest integration.promtool_metrics (not by the glob of tests/integration,
# whose scripts receive the rtscore binary instead).
set -euo pipefail
TEST_PROM=${1:?usage: $0 path/to/test_prom}
if ! command -v promtool >/dev/null 2>&1; then
  echo "FAIL: promtool not found on PATH; install Debian's prometheus package (make deps-test)" >&2
  exit 1
fi
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
"$TEST_PROM" --write-exposition "$WORK/metrics.txt"
families=$(grep -c '^# TYPE ' "$WORK/metrics.txt")
if ! out=$(promtool check metrics <"$WORK/metrics.txt" 2>&1); then
  echo "FAIL: promtool check metrics rejected the exposition:" >&2
  echo "$out" >&2
  exit 1
fi
if [ -n "$out" ]; then
  echo "FAIL: promtool check metrics reported problems:" >&2
  echo "$out" >&2
  exit 1
fi
echo "ok   promtool check metrics: $families families, no problems"
