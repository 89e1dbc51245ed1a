#!/usr/bin/env bash
# dedup: a repeated event id within the horizon is counted as a duplicate and
# not scored again; without dedup it is scored twice.
. "$(dirname "$0")/lib/common.sh"

"$RTS" gen --events 5000 --seed 3 --cards 500 --bad-rate 0 > events.jsonl
# every 10th event sent again a little later (a producer retry)
awk '{ print } NR % 10 == 0 { held[++n] = $0 } NR % 50 == 0 { for (i = 1; i <= n; i++) print held[i]; n = 0 }' \
  events.jsonl > with_repeats.jsonl
eq "500 repeats in the input" "$(( $(lines with_repeats.jsonl) - 5000 ))" 500
sed -e 's|^  type: generator|  type: file\n  path: with_repeats.jsonl|' "$SRC/examples/fraud/pipeline.yaml" |
  grep -vE '^  (events|rate|seed|fraud_rate|bad_rate|cards|density):' > p.yaml
"$RTS" run -c p.yaml --no-progress 2> nodedup.err
eq "without dedup: scored twice" "$(lines out/demo/scores.jsonl)" 5500
echo "dedup: {horizon: 10m, max_ids: 100000}" >> p.yaml
"$RTS" run -c p.yaml --no-progress 2> dedup.err
eq "with dedup: every id once" "$(lines out/demo/scores.jsonl)" 5000
eq "ids unique" "$(grep -o '"id":"[^"]*"' out/demo/scores.jsonl | sort | uniq -d | wc -l | tr -d ' ')" 0
check "report: 500 duplicates" grep -q "duplicate 500" dedup.err
finish
