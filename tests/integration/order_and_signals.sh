#!/usr/bin/env bash
# Events of one key are scored in arrival order with several workers, and
# SIGTERM drains everything queued and exits 0 (file source with follow).
. "$(dirname "$0")/lib/common.sh"

"$RTS" gen --events 20000 --seed 11 --cards 50 > events.jsonl
cat > p.yaml <<'YAML'
pipeline: order
workers: 2
source: {type: file, path: live.jsonl, follow: true, poll: 10ms}
event: {id: txn_id, key: card_id, time: ts}
features:
  - {name: n, agg: count, window: 1h}
rules:
  - {decision: allow}
fallback: {score: "0"}
sink: {type: file, path: scores.jsonl}
YAML
: > live.jsonl
"$RTS" run -c p.yaml --no-progress 2> run.err &
pid=$!
head -n 10000 events.jsonl >> live.jsonl
sleep 0.3
tail -n +10001 events.jsonl >> live.jsonl
for _ in $(seq 1 100); do
  [ "$(lines scores.jsonl)" -ge 20000 ] && break
  sleep 0.1
done
kill -TERM "$pid"
set +e
wait "$pid"
rc=$?
set -e
eq "exit code after SIGTERM" "$rc" 0
eq "every event scored" "$(lines scores.jsonl)" 20000
# t-N ids grow with arrival; per key they must come out in the same order
check "per-key order kept" awk -F'"' '{ id = substr($4, 3) + 0; k = $8; if (k in last && id < last[k]) bad++; last[k] = id } END { exit bad > 0 }' scores.jsonl
check "both workers used" grep -q "2 workers" run.err
finish
