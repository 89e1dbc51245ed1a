#!/usr/bin/env bash
# Online stores through the command line: `rtscore store load` writes CSV and
# JSON lines into a redis-server this test starts (free loopback port, no
# persistence, a password file), `rtscore store get` reads back what the
# lookups read; errors name the file and line; a file store answers the
# same; `rtscore store profiles` reproduces examples/fraud/profiles.csv.
. "$(dirname "$0")/lib/common.sh"

code() { set +e; "$@" > out.txt 2> err.txt; echo $?; set -e; }

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
echo "s3cret" > pw
mkdir -p rd
redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --dir "$WORK/rd" \
  --requirepass s3cret > rd/log 2>&1 &
rpid=$!
trap 'kill $rpid 2>/dev/null || true; wait $rpid 2>/dev/null || true; rm -rf "$WORK"' EXIT
for _ in $(seq 100); do
  redis-cli -p "$port" -a s3cret --no-auth-warning ping 2>/dev/null | grep -q PONG && break
  sleep 0.1
done

cat > p.yaml <<YAML
pipeline: t
source: {type: generator}
event:
  id: txn_id
  key: card_id
  time: ts
  fields:
    card_id: {type: string, max_len: 64}
    amount: {type: float}
features:
  - {name: avg_spend_90d, lookup: {store: profiles, key: "card:{card_id}", max_age: 24h, default: 0}}
  - {name: ratio, expr: "amount / (avg_spend_90d + 1)"}
  - {name: chargebacks_1y, lookup: {store: profiles, key: "card:{card_id}"}}
stores:
  profiles: {type: redis, addr: "127.0.0.1:$port", password_file: pw, timeout: 2s}
  local: {type: file, path: $SRC/examples/fraud/profiles.csv}
fallback: {score: "0"}
sink: {type: null}
YAML
eq "check a pipeline with stores" "$(code "$RTS" check -c p.yaml)" 0

eq "store load CSV" "$(code "$RTS" store load -c p.yaml --store profiles -i "$SRC/examples/fraud/profiles.csv")" 0
check "load prints rows/s" grep -qE '^store load: 49014 rows \(3 fields\) into profiles .* rows/s$' out.txt
eq "redis holds every row" "$(redis-cli -p "$port" -a s3cret --no-auth-warning dbsize)" 49014
eq "store get reads what load wrote" "$(code "$RTS" store get -c p.yaml --store profiles card:c-0 card:missing)" 0
eq "get card:c-0" "$(sed -n 1p out.txt)" \
  '{"key":"card:c-0","updated_ms":1699949434429,"fields":{"avg_spend_90d":39.31,"chargebacks_1y":0}}'
eq "get a missing key" "$(sed -n 2p out.txt)" \
  '{"key":"card:missing","updated_ms":null,"fields":{"avg_spend_90d":null,"chargebacks_1y":null}}'
eq "the file store answers alike" "$(code "$RTS" store get -c p.yaml --store local --field avg_spend_90d --field chargebacks_1y card:c-0)" 0
eq "file get card:c-0" "$(cat out.txt)" \
  '{"key":"card:c-0","updated_ms":1699949434429,"fields":{"avg_spend_90d":39.31,"chargebacks_1y":0}}'

# JSON lines; a row without the update column gets the time of the load
printf '{"key":"card:j1","avg_spend_90d":12.5,"_updated_at":1000}\n{"key":"card:j2","chargebacks_1y":3}\n' > rows.jsonl
before=$(date +%s%3N)
eq "store load JSON lines" "$(code "$RTS" store load -c p.yaml --store profiles -i rows.jsonl --batch 1)" 0
after=$(date +%s%3N)
"$RTS" store get -c p.yaml --store profiles card:j1 card:j2 > got.txt
check "explicit update time kept" grep -q '"key":"card:j1","updated_ms":1000,"fields":{"avg_spend_90d":12.5,' got.txt
upd=$(sed -n 2p got.txt | sed -E 's/.*"updated_ms":([0-9]+).*/\1/')
check "missing update time = load time" test "$upd" -ge "$before" -a "$upd" -le "$after"

# errors: bad input names file and line; unknown store; read-only file store; server down
printf 'key,a\ncard:x,1,2\n' > bad.csv
eq "bad CSV" "$(code "$RTS" store load -c p.yaml --store profiles -i bad.csv)" 1
check "bad CSV names file:line" grep -q 'bad.csv:2: 3 cells, the header has 2' err.txt
eq "unknown store" "$(code "$RTS" store load -c p.yaml --store nope -i bad.csv)" 1
check "unknown store lists the stores" grep -q "has no store 'nope'; its stores: profiles local" err.txt
eq "file store is read-only" "$(code "$RTS" store load -c p.yaml --store local -i rows.jsonl)" 1
check "read-only message" grep -q 'read-only' err.txt
check "the password is never printed" bash -c "! grep -rq s3cret out.txt err.txt"
kill $rpid; wait $rpid 2>/dev/null || true
eq "server down: runtime failure" "$(code "$RTS" store load -c p.yaml --store profiles -i rows.jsonl)" 2
check "server down message" grep -q 'Connection refused' err.txt

# the demo's profiles are what `store profiles` makes for the demo's cards
"$RTS" store profiles --cards 50000 --seed 42 -o profiles.csv
check "examples/fraud/profiles.csv = rtscore store profiles --cards 50000 --seed 42" \
  cmp -s profiles.csv "$SRC/examples/fraud/profiles.csv"
finish
