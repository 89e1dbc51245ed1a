#!/usr/bin/env bash
# Every kind of bad input becomes its DLQ record with the right reason; the
# valid events around it are scored; the run exits 0; scored + dlq = input.
. "$(dirname "$0")/lib/common.sh"

cat > p.yaml <<'YAML'
pipeline: dlqtest
workers: 2
source: {type: file, path: in.jsonl}
event:
  id: txn_id
  key: card_id
  time: ts
  fields:
    card_id: {type: string, required: true, max_len: 16}
    amount: {type: float, required: true, min: 0}
    merchant_id: {type: string}
    mcc: {type: int}
features:
  - {name: n5m, agg: count, window: 5m}
rules:
  - {decision: allow}
fallback: {score: "amount / 1000"}
sink: {type: file, path: out/scores.jsonl}
dlq: {type: file, path: out/dlq.jsonl}
limits: {max_event_bytes: 256}
YAML

ok() { printf '{"txn_id":"ok%s","card_id":"c%s","ts":1700000000%03d,"amount":%s}\n' "$1" "$(($1 % 3))" "$1" "$1"; }
{
  ok 1
  printf '{"txn_id":"b1","card_id":"c1","ts":1700000000000,\n'                     # invalid_json
  ok 2
  printf '{"txn_id":"b2","card_id":"c1","ts":1700000000000}\n'                      # missing_field
  ok 3
  printf '{"txn_id":"b3","card_id":"c1","ts":1700000000000,"amount":"12"}\n'        # bad_type
  printf '{"txn_id":"b4","card_id":"c1","ts":1700000000000,"amount":-5}\n'          # out_of_range
  ok 4
  printf '{"txn_id":"b5","card_id":"c1","ts":1700000000000,"amount":1,"pad":"%0300d"}\n' 0  # too_large
  printf '{"txn_id":"b6","card_id":"c1","ts":"yesterday","amount":1}\n'             # bad_time
  printf '{"txn_id":"b7","card_id":"c1","ts":1700000000000,"amount":1,"merchant_id":"m\xff"}\n' # bad_encoding
  ok 5
  printf '[1,2]\n'                                                                  # invalid_json
  printf '{"txn_id":"b9","card_id":"c1","ts":1700000000000,"amount":1,"mcc":5.5}\n' # bad_type
  printf '{"txn_id":"b10","card_id":"c12345678901234567","ts":1700000000000,"amount":1}\n' # out_of_range
  printf '\n'
  ok 6
  printf '{"txn_id":"b11","card_id":"c1","ts":1700000000000,"amount":1e999}\n'      # out_of_range
  ok 7
} > in.jsonl

set +e
"$RTS" run -c p.yaml --no-progress 2> run.err
rc=$?
set -e
eq "exit code" "$rc" 0
eq "scored" "$(lines out/scores.jsonl)" 7
eq "dead-lettered" "$(lines out/dlq.jsonl)" 11
for i in 1 2 3 4 5 6 7; do
  check "ok$i scored" grep -q "\"id\":\"ok$i\"" out/scores.jsonl
done
reason() { grep -c "\"reason\":\"$1\"" out/dlq.jsonl || true; }
eq "invalid_json" "$(reason invalid_json)" 2
eq "missing_field" "$(reason missing_field)" 1
eq "bad_type" "$(reason bad_type)" 2
eq "out_of_range" "$(reason out_of_range)" 3
eq "too_large" "$(reason too_large)" 1
eq "bad_time" "$(reason bad_time)" 1
eq "bad_encoding" "$(reason bad_encoding)" 1
check "missing_field names the field" grep -q '"reason":"missing_field","field":"amount"' out/dlq.jsonl
check "source position is file@line" grep -q '"source":"in.jsonl@4"' out/dlq.jsonl
check "invalid UTF-8 payload kept as base64" grep -q '"payload_base64":' out/dlq.jsonl
check "too large payload marked truncated" grep -q '"payload_truncated":true' out/dlq.jsonl
check "every DLQ line is valid-looking JSON" bash -c "! grep -v '^{\"reason\":.*}$' out/dlq.jsonl"
check "report counts dlq" grep -q "dlq 11" run.err
finish
