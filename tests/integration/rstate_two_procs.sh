#!/usr/bin/env bash
# Two `rtscore run` processes with `state: {type: redis}` on one redis-server
# (started here: free loopback port, no persistence, a password file) share
# their windows. The events of one generated stream are split in two files
# (alternate lines: the same cards, different events).
#  1. One after the other: the second process's features are exactly those
#     of one local-state run over both files in that order (so it saw every
#     count of the first), and not those of the second file alone.
#  2. At the same time: a third process's probe event per card then counts
#     every event of both (counts commute, whatever the interleaving).
. "$(dirname "$0")/lib/common.sh"

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
echo "s3cret-2" > pw
mkdir -p rd
redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --dir "$WORK/rd" \
  --requirepass s3cret-2 > rd/log 2>&1 &
rpid=$!
trap 'kill $rpid 2>/dev/null || true; wait $rpid 2>/dev/null || true; rm -rf "$WORK"' EXIT
for _ in $(seq 100); do
  redis-cli -p "$port" -a s3cret-2 --no-auth-warning ping 2>/dev/null | grep -q PONG && break
  sleep 0.1
done

"$RTS" gen --events 8000 --seed 11 --cards 40 --density 2 > all.jsonl
awk 'NR % 2 == 1' all.jsonl > a.jsonl
awk 'NR % 2 == 0' all.jsonl > b.jsonl
cat a.jsonl b.jsonl > ab.jsonl

# pipeline NAME INPUT OUTPUT STATE
pipeline() {
  cat > "$1.yaml" <<YAML
pipeline: shared
workers: 2
source: {type: file, path: $2}
event:
  id: txn_id
  key: card_id
  time: ts
  fields:
    card_id: {type: string, max_len: 64}
    amount: {type: float, required: true, min: 0}
features:
  - {name: c5m,    agg: count, window: 5m}
  - {name: s1h,    agg: sum,  of: amount, window: 1h}
  - {name: mean1h, agg: mean, of: amount, window: 1h}
  - {name: max1h,  agg: max,  of: amount, window: 1h}
  - {name: min1h,  agg: min,  of: amount, window: 1h}
  - {name: last3,  agg: mean, of: amount, last: 3}
  - {name: since,  agg: since_last}
  - {name: vel10m, agg: velocity, of: amount, window: 10m}
  - {name: c_all,  agg: count, window: 30d}
  - {name: ratio,  expr: "amount / (mean1h + 1)"}
state: $4
fallback: {score: "0"}
sink: {type: file, path: $3, emit_features: true}
YAML
}
redis="{type: redis, addr: \"127.0.0.1:$port\", password_file: pw, timeout: 5s}"
redis2="{type: redis, addr: \"127.0.0.1:$port\", password_file: pw, timeout: 5s, prefix: \"rts:conc:\"}"

# id -> feature object, sorted
features() { sed -E 's/^\{"id":"([^"]*)".*"features":(\{.*\})\}$/\1 \2/' "$1" | sort; }

# 1. one after the other
pipeline pa a.jsonl a.out "$redis"
pipeline pb b.jsonl b.out "$redis"
pipeline pl ab.jsonl l.out "{type: local}"
pipeline pbl b.jsonl bl.out "{type: local}"
eq "check a redis-state pipeline" "$("$RTS" check -c pa.yaml > /dev/null 2>&1; echo $?)" 0
eq "first process" "$("$RTS" run -c pa.yaml --no-progress 2> a.err; echo $?)" 0
eq "second process" "$("$RTS" run -c pb.yaml --no-progress 2> b.err; echo $?)" 0
"$RTS" run -c pl.yaml --no-progress 2> l.err
"$RTS" run -c pbl.yaml --no-progress 2> bl.err
eq "second process records" "$(lines b.out)" 4000
check "no degraded record" bash -c "! grep -q degraded a.out b.out"
features b.out > b.feat
features l.out > l.all
awk 'NR == FNR {want[$1]; next} ($1 in want)' b.feat l.all > l.feat
eq "local run records of the second file" "$(lines l.feat)" 4000
check "second process = local state over both files, bit for bit" cmp -s b.feat l.feat
if ! cmp -s b.feat l.feat; then diff b.feat l.feat | head -4 >&2; fi
check "redis keys under the pipeline's prefix" \
  bash -c "redis-cli -p $port -a s3cret-2 --no-auth-warning --scan --pattern 'rts:shared:{c-*}:m' | grep -q ."
# what the second file alone gives is less: the first process's counts are in
sum_c_all() { sed -E 's/.*"c_all":([0-9]+).*/\1/' "$1" | awk '{s += $1} END {print s}'; }
alone=$(sum_c_all bl.out)
shared=$(sum_c_all b.out)
check "second process counts the first's events ($shared > 1.8 x $alone)" \
  awk -v a="$alone" -v s="$shared" 'BEGIN {exit !(s > 1.8 * a)}'

# 2. at the same time, then a probe per card
pipeline qa a.jsonl qa.out "$redis2"
pipeline qb b.jsonl qb.out "$redis2"
"$RTS" run -c qa.yaml --no-progress 2> qa.err & qa=$!
"$RTS" run -c qb.yaml --no-progress 2> qb.err & qb=$!
wait $qa; ra=$?
wait $qb; rb=$?
eq "concurrent processes exit 0" "$ra $rb" "0 0"
last=$(sed -E 's/.*"ts":([0-9]+).*/\1/' all.jsonl | sort -n | tail -1)
sed -E 's/.*"card_id":"([^"]*)".*/\1/' all.jsonl | sort | uniq -c | awk '{print $2, $1}' | sort > want.txt
awk -v t=$((last + 1000)) '{printf "{\"txn_id\":\"probe-%s\",\"card_id\":\"%s\",\"ts\":%s,\"amount\":1}\n", $1, $1, t}' \
  want.txt > probe.jsonl
pipeline qc probe.jsonl qc.out "$redis2"
"$RTS" run -c qc.yaml --no-progress 2> qc.err
sed -E 's/.*"key":"([^"]*)".*"c_all":([0-9]+).*/\1 \2/' qc.out | sort > got.txt
eq "probes" "$(lines got.txt)" "$(lines want.txt)"
check "each card's probe counts every event of both processes" cmp -s got.txt want.txt
if ! cmp -s got.txt want.txt; then diff got.txt want.txt | head -4 >&2; fi
finish
