#!/usr/bin/env bash
# The example pipeline with the shipped fraud model bundle: rtscore check
# accepts it, and every event is scored by the model ("path":"model").
. "$(dirname "$0")/lib/common.sh"

"$RTS" gen --events 20000 --seed 5 --cards 2000 --density 200 > events.jsonl
sed 's|^  type: generator|  type: file\n  path: events.jsonl|' "$SRC/examples/fraud/pipeline.yaml" |
  grep -vE '^  (events|rate|seed|fraud_rate|bad_rate|cards|density):' |
  sed "s|^fallback:|model: {path: $SRC/examples/fraud/model, timeout: 50ms}\nfallback:|" > p.yaml
check "check accepts the bundle" "$RTS" check -c p.yaml
"$RTS" run -c p.yaml --no-progress 2> run.err
eq "every event scored" "$(lines out/demo/scores.jsonl)" 20000
eq "all by the model" "$(grep -c '"model":"fraud@1","path":"model"' out/demo/scores.jsonl)" 20000
check "scores are probabilities" awk -F'"score":' '{ split($2, a, ","); if (a[1] < 0 || a[1] > 1) bad++ } END { exit bad > 0 }' out/demo/scores.jsonl
check "model stage measured" grep -q "model " run.err
check "report: all by the model, circuit closed" grep -q "fraud@1 scored 20000, the fallback 0; circuit closed" run.err
# a bundle whose manifest disagrees with the pipeline is refused by check
mkdir -p bad && cp "$SRC/examples/fraud/model/model.json" bad/ &&
  sed 's/amount_log/amount_logg/' "$SRC/examples/fraud/model/manifest.yaml" > bad/manifest.yaml
sed "s|$SRC/examples/fraud/model,|bad,|" p.yaml > pbad.yaml
set +e
"$RTS" check -c pbad.yaml 2> bad.err
rc=$?
set -e
eq "check refuses a mismatched bundle" "$rc" 1
check "and says which feature" grep -q "amount_logg" bad.err
finish
