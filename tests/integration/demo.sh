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
check "report: scored by the shipped model" grep -Eq 'model      fraud@[0-9]+ scored [0-9]+, the fallback 0' report.txt
check "report: accuracy against the labels" grep -q 'accuracy   against is_fraud' report.txt
auc() { awk -v who="$1" '$1 == who { print $2; exit }' report.txt; }
check "the model clearly beats the fallback rules (ROC AUC)" \
  awk -v m="$(auc model)" -v f="$(auc fallback)" 'BEGIN { exit !(m > 0.9 && m > f + 0.1) }'
check "every record names the model" bash -c "! grep -v '\"path\":\"model\"' out/demo/scores.jsonl"
scored=$(lines out/demo/scores.jsonl)
dlq=$(lines out/demo/dlq.jsonl)
eq "scored + dlq = events" "$((scored + dlq))" 500000
check "alerts are block decisions" bash -c "! grep -v '\"decision\":\"block\"' out/demo/alerts.jsonl"
check "some alerts" test "$(lines out/demo/alerts.jsonl)" -gt 0
finish
