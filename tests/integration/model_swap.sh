#!/usr/bin/env bash
# Zero-downtime model deployment under load, through the admin API: while
# events stream, load -> promote -> rollback -> load -> canary -> shadow, and
# a corrupt bundle refused; then SIGTERM. Every event is scored exactly once, by a model;
# each key changes models only at the operations; the canary's share of
# events is within 2 points of P; shadow records go to the shadow sink.
. "$(dirname "$0")/lib/common.sh"

free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
PORT=$(free_port)
mkdir -p reg/fraud/2 reg/fraud/3 reg/fraud/4
cp "$SRC"/examples/fraud/model/* reg/fraud/2/
cp "$SRC"/examples/fraud/model-logistic/* reg/fraud/3/                  # another model
sed -i 's/^version: .*/version: 3/' reg/fraud/3/manifest.yaml
cp "$SRC"/examples/fraud/model/manifest.yaml reg/fraud/4/
sed -i 's/^version: .*/version: 4/' reg/fraud/4/manifest.yaml
head -c 5000 "$SRC"/examples/fraud/model/model.json > reg/fraud/4/model.json  # corrupt
printf 'swap-test-token-0123456789\n' > token && chmod 600 token

sed -e 's/^  events: .*/  events: 3000000/' -e 's/^  rate: .*/  rate: 25000/' \
    -e 's/^  cards: .*/  cards: 200000/' -e 's/^  bad_rate: .*/  bad_rate: 0/' \
    -e "s|^  path: examples/fraud/model .*|  path: reg/fraud/2\n  registry: reg|" \
    "$SRC/examples/fraud/pipeline.yaml" > p.yaml
cat >> p.yaml <<YAML
http: {listen: 127.0.0.1:$PORT, admin_token_file: token}
shadow: {type: file, path: out/demo/shadow.jsonl}
YAML
"$RTS" run -c p.yaml --no-progress 2> run.err &
pid=$!
trap 'kill -9 $pid 2>/dev/null || true; rm -rf "$WORK"' EXIT
url=http://127.0.0.1:$PORT
for _ in $(seq 150); do curl -sf "$url/readyz" > /dev/null && break; sleep 0.1; done
admin() { # admin PATH [BODY] -> prints the HTTP status, body in admin.out
  if [ $# -gt 1 ]; then set -- "$1" -X POST -d "$2"; fi
  curl -s -o admin.out -w '%{http_code}' -H "Authorization: Bearer $(cat token)" \
    "${@:2}" "$url/admin/models$1"
}
post() { admin "$1" "${2:-{\}}"; }
eq "401 without the token" "$(curl -s -o /dev/null -w '%{http_code}' "$url/admin/models")" 401
eq "401 with a wrong token" "$(curl -s -o /dev/null -w '%{http_code}' -H 'Authorization: Bearer nope-nope-nope-nope' "$url/admin/models")" 401
eq "GET /admin/models" "$(admin "")" 200
check "live is fraud@2" grep -q '"live":{"name":"fraud","version":2' admin.out
eq "promote with no candidate: 409" "$(post /promote)" 409
sleep 1
eq "load version 3" "$(post /load '{"version":3}')" 200
check "candidate is fraud@3" grep -q '"candidate":{"name":"fraud","version":3' admin.out
eq "promote" "$(post /promote)" 200
sleep 1
eq "rollback" "$(post /rollback)" 200
check "live is fraud@2 again" grep -q '"live":{"name":"fraud","version":2' admin.out
eq "second rollback: 409" "$(post /rollback)" 409
eq "load version 3 again" "$(post /load '{"version":3}')" 200
eq "canary 30%" "$(post /canary '{"percent":30}')" 200
curl -sf "$url/metrics" > m1.txt
sleep 4
curl -sf "$url/metrics" > m2.txt
eq "canary back to 0" "$(post /canary '{"percent":0}')" 200
eq "bad canary: 400" "$(post /canary '{"percent":120}')" 400
eq "shadow on" "$(post /shadow '{"enabled":true}')" 200
sleep 1
eq "a corrupt bundle: 422" "$(post /load '{"version":4}')" 422
check "  with the reason" grep -q '"error":' admin.out
eq "a missing folder: 422" "$(post /load '{"path":"nowhere"}')" 422
eq "bad body: 400" "$(post /load '{"x":1}')" 400
sleep 1
curl -sf "$url/metrics" > m3.txt
check "metrics after the swaps pass promtool" promtool check metrics < m3.txt
check "metrics: shadow agreement" grep -q '^rtscore_shadow_decisions_total{agree="true"}' m3.txt
check "metrics: drift PSI of the live model" grep -q '^rtscore_drift_psi{feature="amount_log"}' m3.txt
check "metrics: model_info live and candidate" grep -q 'rtscore_model_info{model="fraud",version="3",slot="candidate"} 1' m3.txt
kill -TERM $pid
wait $pid
eq "SIGTERM: drained, exit 0" "$?" 0

# every event read was scored exactly once, by a model, never the fallback
read_n=$(awk '/^  events / { print $2 }' run.err)
check "events were read ($read_n)" test "${read_n:-0}" -gt 0
eq "every event scored" "$(lines out/demo/scores.jsonl)" "$read_n"
eq "ids unique" "$(grep -o '"id":"[^"]*"' out/demo/scores.jsonl | sort | uniq -d | wc -l)" 0
eq "no fallback" "$(grep -c '"path":"fallback"' out/demo/scores.jsonl || true)" 0
check "both models scored" bash -c "grep -q '\"model\":\"fraud@3\"' out/demo/scores.jsonl && grep -q '\"model\":\"fraud@2\"' out/demo/scores.jsonl"
# a key changes models only at an operation: promote, rollback, canary on, canary off
check "each key switches models at most 4 times" /usr/bin/python3 -c '
import json, sys
last, changes = {}, {}
for line in open("out/demo/scores.jsonl"):
    r = json.loads(line)
    k, m = r["key"], r["model"]
    if k in last and last[k] != m:
        changes[k] = changes.get(k, 0) + 1
    last[k] = m
worst = max(changes.values() or [0])
sys.exit(0 if worst <= 4 else "a key switched %d times" % worst)'
# the canary's share of events between the two scrapes
share() { /usr/bin/python3 - "$@" <<'PY'
import re, sys
def counts(f):
    c = {}
    for line in open(f):
        m = re.match(r'rtscore_predictions_total\{model="fraud",version="(\d+)",path="model"\} (\S+)', line)
        if m:
            c[m.group(1)] = float(m.group(2))
    return c
a, b = counts(sys.argv[1]), counts(sys.argv[2])
d2 = b.get("2", 0) - a.get("2", 0)
d3 = b.get("3", 0) - a.get("3", 0)
print("%.2f" % (100 * d3 / (d2 + d3)))
PY
}
s=$(share m1.txt m2.txt)
check "canary share $s% within 30 +- 2" awk -v s="$s" 'BEGIN { exit !(s >= 28 && s <= 32) }'
check "shadow records" grep -q '"model":"fraud@3","path":"shadow"' out/demo/shadow.jsonl
check "refused load logged, live kept" grep -q 'admin refused' run.err
finish
