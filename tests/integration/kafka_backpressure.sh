#!/usr/bin/env bash
# Backpressure from a stalled sink through small queues to the Kafka source:
# the scores go to a file sink writing into a FIFO whose reader is stopped
# (SIGSTOP), limits.queue is 256 events per worker and max_inflight 1000 per
# partition. While the sink is stalled, 100,000 more events (~20 MB, far more
# than the queues and the in-flight limit hold) arrive on the topic: the
# workers block, the source pauses its partitions, and the process's memory
# (RSS) stays where it was instead of growing with the backlog (librdkafka
# alone would prefetch up to 64 MiB for unpaused partitions). When the
# reader continues, every event comes out.
. "$(dirname "$0")/lib/common.sh"
. "$SRC/tests/integration/lib/kafka.sh"

WARM=5000 N=105000 GROWTH_MAX_KB=$((24 * 1024))
# ASan keeps freed memory in quarantine (256 MiB by default): keep it small so
# that RSS shows what the program holds
export ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}quarantine_size_mb=8
devkafka_start 16 # the mock keeps ~5 MiB per partition: room for the backlog
gen_input in.txt "$N" 15
pipeline p.yaml bp "  max_inflight: 1000" \
  "limits: {queue: 256, max_event_bytes: 65536, max_keys: 1000000, key_ttl: 30d}"
sed -i 's#^sink: .*#sink:   {type: file, path: scores.fifo}#' p.yaml
PORT=$($PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
echo "http: {listen: 127.0.0.1:$PORT}" >> p.yaml
metric() { curl -sf "http://127.0.0.1:$PORT/metrics" | awk -v m="$1" '$1 == m { print $2 }'; }
mkfifo scores.fifo
cat scores.fifo > scores.jsonl &
reader=$!
PIDS+=("$reader")
rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }

produce in.txt 1 "$WARM"
run_start p.yaml run.log
pid=$RUN_PID
check "scores the first $WARM events" wait_committed bp "$WARM" 120
kill -STOP "$reader"
sleep 1
rss0=$(rss_kb "$pid")
produce in.txt $((WARM + 1)) $((N - WARM)) # while the sink is stalled
peak=$rss0
for _ in $(seq 1 12); do # 6 s of the stall
  r=$(rss_kb "$pid")
  [ "$r" -gt "$peak" ] && peak=$r
  sleep 0.5
done
read_in=$(metric rtscore_source_events_total)
pauses=$(metric rtscore_source_pauses_total)
check "stalled: the source read $((read_in - WARM)) of $((N - WARM)) (at most the partitions' in-flight limits)" \
  test $((read_in - WARM)) -le $((16 * 1000))
check "the source was paused ($pauses times)" test "$pauses" -ge 1
check "RSS stays bounded while the topic holds $((N - WARM)) more events: $((rss0 / 1024)) MiB, peak $((peak / 1024)) MiB (at most +$((GROWTH_MAX_KB / 1024)))" \
  test $((peak - rss0)) -le "$GROWTH_MAX_KB"
kill -CONT "$reader"
check "every event scored once the sink drains" wait_committed bp "$N" 240
run_stop "$pid"
eq "stops with exit 0" "$RC" 0
check "the report counts the pauses" grep -q "^  paused     the source [0-9]* times" run.log
wait "$reader" || true
eq "the topic holds the $N input events once each" "$(end_offsets in)" "$N"
dump dlq dlq.txt
pycheck "nothing lost" verify in.txt scores.jsonl dlq.txt --exact
finish
