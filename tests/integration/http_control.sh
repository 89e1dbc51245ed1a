#!/usr/bin/env bash
# The HTTP control plane of a running pipeline: /metrics passes promtool and
# carries every family of DESIGN.md section 5 that this pipeline has,
# /healthz and /readyz answer, /status is JSON; a bad token file stops the
# start with exit 1.
. "$(dirname "$0")/lib/common.sh"

command -v promtool > /dev/null || { fail "promtool not found (install-deps.sh --test installs prometheus)"; finish; }
free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
PORT=$(free_port)
sed -e 's/^  events: .*/  events: 2000000/' -e 's/^  rate: .*/  rate: 20000/' \
  "$SRC/examples/fraud/pipeline.yaml" > p.yaml
echo "http: {listen: 127.0.0.1:$PORT}" >> p.yaml
"$RTS" run -c p.yaml --no-progress 2> run.err &
pid=$!
trap 'kill -9 $pid 2>/dev/null || true; rm -rf "$WORK"' EXIT
url=http://127.0.0.1:$PORT
for _ in $(seq 100); do curl -sf "$url/readyz" > /dev/null && break; sleep 0.1; done
check "readyz: 200 once running" curl -sf "$url/readyz" -o ready.txt
check "healthz: 200" curl -sf "$url/healthz" -o health.txt
sleep 1
curl -sf "$url/metrics" -o m1.txt
check "metrics: promtool check metrics" promtool check metrics < m1.txt
for fam in events_total dlq_total stage_latency_seconds e2e_latency_seconds predictions_total \
           score batch_size circuit_state queue_depth keys budget_exceeded_total model_info \
           source_events_total source_pauses_total; do
  check "metrics: rtscore_$fam" grep -q "^# TYPE rtscore_$fam " m1.txt
done
check "metrics: content type" bash -c "curl -sI '$url/metrics' | grep -qi 'content-type: text/plain; version=0.0.4'"
check "metrics: per-stage quantiles computable (total buckets)" grep -q 'rtscore_stage_latency_seconds_bucket{stage="total",le="0.001"}' m1.txt
sleep 1
curl -sf "$url/metrics" -o m2.txt
scored() { awk '/^rtscore_events_total\{outcome="scored"\}/ { print $2 }' "$1"; }
check "metrics: counters move" test "$(scored m2.txt)" -gt "$(scored m1.txt)"
curl -sf "$url/status" -o status.json
check "status: JSON with workers and the model" /usr/bin/python3 -c '
import json, sys
s = json.load(open("status.json"))
assert s["pipeline"] == "fraud" and s["ready"] and s["healthy"], s
assert len(s["workers"]) >= 1 and s["model"]["live"]["label"].startswith("fraud@"), s
assert s["circuits"]["model"] == "closed", s'
eq "unknown path: 404" "$(curl -s -o /dev/null -w '%{http_code}' "$url/nope")" 404
eq "wrong method: 405" "$(curl -s -o /dev/null -w '%{http_code}' -X POST "$url/metrics")" 405
kill -TERM $pid
wait $pid
eq "SIGTERM: exit 0" "$?" 0
check "listening was logged" grep -q "http listening" run.err

# the admin API on an address other than loopback needs a token
sed "s|^http: .*|http: {listen: 0.0.0.0:$PORT}|" p.yaml > pn.yaml
set +e
"$RTS" run -c pn.yaml --no-progress 2> open.err
rc=$?
set -e
eq "non-loopback listen without a token: exit 1" "$rc" 1
check "  and the error says to set the token" grep -q "admin_token_file" open.err

# a token file others can read is refused before anything runs
printf 'a-token-of-at-least-16-chars\n' > token && chmod 644 token
sed "s|^http: .*|http: {listen: 127.0.0.1:$PORT, admin_token_file: token}|" p.yaml > pt.yaml
set +e
"$RTS" run -c pt.yaml --no-progress 2> tok.err
rc=$?
set -e
eq "a group/world-readable token file: exit 1" "$rc" 1
check "and the error names the key" grep -q "http.admin_token_file" tok.err
finish
