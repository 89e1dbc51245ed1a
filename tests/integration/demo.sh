#!/usr/bin/env bash
# `rtscore demo` runs the embedded default end to end and reports.
. "$(dirname "$0")/lib/common.sh"

"$RTS" demo > report.txt 2> err.txt
cat report.txt
check "report: events" grep -q 'events     500000 in' report.txt
check "report: latency table" grep -q 'total' report.txt
check "report: decisions" grep -Eq 'decisions .*allow [0-9]+' report.txt
check "report: dlq reasons" grep -Eq 'dlq        [a-z_]+ [0-9]+' report.txt
check "report: state per key" grep -Eq 'state      [0-9]+ keys, [0-9]+ bytes per key' report.txt
scored=$(lines out/demo/scores.jsonl)
dlq=$(lines out/demo/dlq.jsonl)
eq "scored + dlq = events" "$((scored + dlq))" 500000
check "alerts are block decisions" bash -c "! grep -v '\"decision\":\"block\"' out/demo/alerts.jsonl"
check "some alerts" test "$(lines out/demo/alerts.jsonl)" -gt 0
finish
