#!/usr/bin/env bash
# The example pipeline with the shipped fraud model bundle: rtscore check
# accepts it, and every event is scored by the model ("path":"model").
. "$(dirname "$0")/lib/common.sh"

"$RTS" gen --events 20000 --seed 5 --cards 2000 --density 200 > events.jsonl
sed 's|^  type: generator|  type: file\n  path: events.jsonl|' "$SRC/examples/fraud/pipeline.yaml" |
  grep -vE '^  (events|rate|seed|fraud_rate|bad_rate|cards|density):' |
  awk '/^model:/ { skip = 1; next } skip && /^  / { next } { skip = 0; print }' |
  sed "s|^fallback:|model: {path: $SRC/examples/fraud/model, timeout: 50ms}\nfallback:|" > p.yaml
check "check accepts the bundle" "$RTS" check -c p.yaml
"$RTS" run -c p.yaml --no-progress 2> run.err
eq "every event scored" "$(lines out/demo/scores.jsonl)" 20000
eq "all by the model" "$(grep -c '"model":"fraud@2","path":"model"' out/demo/scores.jsonl)" 20000
check "scores are probabilities" awk -F'"score":' '{ split($2, a, ","); if (a[1] < 0 || a[1] > 1) bad++ } END { exit bad > 0 }' out/demo/scores.jsonl
check "model stage measured" grep -q "model " run.err
check "report: all by the model, circuit closed" grep -q "fraud@2 scored 20000, the fallback 0; circuit closed" run.err
check "report: batch sizes" grep -q "batches of .* events on average" run.err
check "warmed up before the first event" grep -q "model warmed up" run.err
# micro-batching changes no score: one event per call, and batches that wait
# for each other, give the same records but for latency_us
strip() { sed 's/,"latency_us":[0-9]*//' out/demo/scores.jsonl | sort; }
strip > batched.txt
for b in "{max: 1}" "{max: 256, max_wait: 2ms}"; do
  sed "s|timeout: 50ms}|timeout: 50ms, batch: $b}|" p.yaml > pb.yaml
  "$RTS" run -c pb.yaml --no-progress 2> runb.err
  strip > other.txt
  check "batch $b: the same scores" cmp -s batched.txt other.txt
  [ "$b" != "{max: 1}" ] || check "batches of one" grep -q "batches of 1.0 events" runb.err
done
# drift: amount_log depends on the event alone, so on traffic from the
# training generator it stays close to the reference (the windowed features
# of a short run from cold state do drift: every card is new); with amounts
# 50 times larger the warning names it
"$RTS" gen --events 20000 --seed 9 --cards 50000 --density 200 > like.jsonl
/usr/bin/python3 -c '
import json, sys
for line in open("like.jsonl"):
    r = json.loads(line); r["amount"] = round(r["amount"] * 50, 2); print(json.dumps(r))' > shifted.jsonl
sed 's|path: events.jsonl|path: like.jsonl|' p.yaml > pl.yaml
sed 's|path: events.jsonl|path: shifted.jsonl|' p.yaml > pd.yaml
"$RTS" run -c pl.yaml --no-progress 2> like.err
"$RTS" run -c pd.yaml --no-progress 2> drift.err
check "amount_log not drifted on training-like traffic" bash -c "! grep -q 'model drift.*amount_log' like.err"
check "drift warning on shifted traffic, naming amount_log" grep -q 'model drift.*amount_log' drift.err
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
