#!/usr/bin/env bash
# rtscore backfill and rtscore run (2 workers, emit_features) give
# byte-identical feature values for the same events.
. "$(dirname "$0")/lib/common.sh"

"$RTS" gen --events 30000 --seed 7 --cards 300 --fraud-rate 0.05 > events.jsonl
cat > p.yaml <<'YAML'
pipeline: parity
workers: 2
source: {type: file, path: events.jsonl}
event:
  id: txn_id
  key: card_id
  time: ts
  fields:
    amount: {type: float, required: true, min: 0}
    merchant_id: {type: string}
    country: {type: string, default: "US"}
    is_fraud: {type: int, default: 0}
features:
  - {name: amount_log,      expr: "log1p(amount)"}
  - {name: hour,            expr: "hour_of_day(ts)"}
  - {name: txn_count_5m,    agg: count, window: 5m}
  - {name: amount_sum_24h,  agg: sum,  of: amount, window: 24h}
  - {name: amount_mean_30d, agg: mean, of: amount, window: 30d}
  - {name: amount_max_24h,  agg: max,  of: amount, window: 24h}
  - {name: amount_min_1h,   agg: min,  of: amount, window: 1h}
  - {name: merchants_24h,   agg: distinct, of: merchant_id, window: 24h}
  - {name: amount_last5,    agg: mean, of: amount, last: 5}
  - {name: secs_since_last, agg: since_last}
  - {name: velocity_1h,     agg: velocity, of: amount, window: 1h}
  - {name: amount_sum_1h_x, agg: sum,  of: amount, window: 1h, exact: 32}
  - {name: txn_count_5m_x,  agg: count, window: 5m, exact: 4}
  - {name: amount_ratio,    expr: "amount / (amount_mean_30d + 1)"}
  - {name: foreign,         expr: "country != 'US'"}
rules:
  - {when: "score > 0.5", decision: review}
  - {decision: allow}
fallback: {score: "min(1, amount / 2000)"}
sink: {type: file, path: scores.jsonl, emit_features: true}
YAML

"$RTS" backfill -c p.yaml -i events.jsonl -o features.csv --label is_fraud 2> backfill.err
"$RTS" run -c p.yaml --no-progress 2> run.err

eq "backfill rows" "$(($(lines features.csv) - 1))" 30000
eq "run records" "$(lines scores.jsonl)" 30000
check "header" grep -q '^id,key,ts,amount_log,hour,txn_count_5m,amount_sum_24h,amount_mean_30d,amount_max_24h,amount_min_1h,merchants_24h,amount_last5,secs_since_last,velocity_1h,amount_sum_1h_x,txn_count_5m_x,amount_ratio,foreign,is_fraud$' features.csv

# run's JSON -> the CSV form: id,key,ts,values (null = empty cell)
sed -E 's/^\{"id":"([^"]*)","key":"([^"]*)","ts":(-?[0-9]+),.*"features":\{(.*)\}\}$/\1,\2,\3,\4/; s/"[a-z_0-9]+"://g; s/null//g' \
  scores.jsonl | sort > run.csv
tail -n +2 features.csv | sed -E 's/,[^,]*$//' | sort > backfill.csv
check "features identical byte for byte" cmp -s run.csv backfill.csv
if ! cmp -s run.csv backfill.csv; then diff run.csv backfill.csv | head -5 >&2; fi
check "some windows are non-trivial" awk -F, '$6 > 3 {n++} END {exit !(n > 100)}' backfill.csv
check "missing values are empty cells" grep -q ',,' backfill.csv
finish
