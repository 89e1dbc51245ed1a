# kafka.sh - helpers of the Kafka end-to-end tests (sourced after common.sh).
#
# A test starts `rtscore dev-kafka` (the mock cluster as a process) with a
# FIFO on its stdin for the control channel, produces input with kcat keyed by
# card, runs `rtscore run` on examples/fraud/pipeline.yaml with a kafka source
# and kafka sinks, reads the topics back with kcat and hands the dumps to
# kafka_check.py. Every wait is polled with a generous limit; nothing asserts
# on timing.

if ! command -v kcat > /dev/null; then
  echo "FAIL: kcat is not installed; run scripts/install-deps.sh --test" >&2
  exit 1
fi
PY=/usr/bin/python3
CHECK_PY="$SRC/tests/integration/lib/kafka_check.py"
PIDS=() # processes this test started, killed by id at exit
# KEEP=1 keeps the work folder (logs, dumps) for a look after a failure
# after a failed check, the end of every log goes to stderr (CI shows it)
trap 'for p in "${PIDS[@]}"; do { kill -9 "$p" && wait "$p"; } 2> /dev/null || true; done
      if [ "$FAILS" -ne 0 ]; then
        for f in "$WORK"/*.log; do [ -f "$f" ] && { echo "--- $f" >&2; tail -n 15 "$f" >&2; }; done
      fi
      if [ -n "${KEEP:-}" ]; then echo "kept $WORK" >&2; else rm -rf "$WORK"; fi' EXIT

# devkafka_start PARTITIONS [BROKERS]: sets BS (bootstrap servers), NPART and DK_PID;
# topics in, scores, alerts and dlq exist; fd 7 writes the control channel.
devkafka_start() {
  NPART=$1
  mkfifo dk.ctl
  "$RTS" dev-kafka --partitions "$1" --brokers "${2:-1}" --topics in,scores,alerts,dlq \
    < dk.ctl > dk.out 2> dk.log &
  DK_PID=$!
  PIDS+=("$DK_PID")
  exec 7> dk.ctl
  for _ in $(seq 1 300); do
    [ -s dk.out ] && break
    sleep 0.1
  done
  BS=$(head -n 1 dk.out)
  [ -n "$BS" ] || { echo "FAIL: dev-kafka did not start" >&2; cat dk.log >&2; exit 1; }
}

# ctl COMMAND...: send a control command, print its one-line answer.
ctl() {
  local before
  before=$(wc -l < dk.out)
  echo "$*" >&7
  for _ in $(seq 1 600); do
    [ "$(wc -l < dk.out)" -gt "$before" ] && break
    sleep 0.05
  done
  tail -n 1 dk.out
}

# committed GROUP: "P=OFFSET ..." of the group on topic in (-1: none).
committed() {
  ctl offsets "$1" in | sed -n "s/^offsets $1 in //p"
}

# gen_input FILE EVENTS SEED: generator events (1% malformed) as KEY|JSON lines,
# the key the card (empty for a line without one).
gen_input() {
  "$RTS" gen --events "$2" --seed "$3" --bad-rate 0.01 | awk '{
    k = ""
    if (match($0, /"card_id":"[^"]*"/)) k = substr($0, RSTART + 11, RLENGTH - 12)
    print k "|" $0 }' > "$1"
}

# produce FILE [FROM [COUNT]]: lines FROM.. (1-based) of FILE into topic in.
produce() {
  local from=${2:-1} count=${3:-100000000}
  local chunk="chunk.$BASHPID" try # the feeders of a test run in subshells
  sed -n "${from},$((from + count - 1))p" "$1" > "$chunk"
  # kcat gives up when every broker is down: produce the chunk again (some of
  # it twice, then: outputs may repeat, none may be missing)
  for try in 1 2 3 4 5; do
    timeout 120 kcat -P -b "$BS" -t in -K '|' -z lz4 -l "$chunk" 2>> kcat.log && break
    [ "$try" -lt 5 ] || return 1
    sleep 1
  done
  rm -f "$chunk"
}

# feed FILE FIRST CHUNK PAUSE: in the background, lines FIRST..$N of FILE
# into topic in, CHUNK lines every PAUSE seconds (input still arriving while
# the pipeline runs). Its pid is in FEEDER (and PIDS): `wait "$FEEDER"` says
# whether kcat produced every line.
feed() {
  local file=$1 first=$2 chunk=$3 pause=$4
  (
    for from in $(seq "$first" "$chunk" "$N"); do
      produce "$file" "$from" "$chunk"
      sleep "$pause"
    done
  ) &
  FEEDER=$!
  PIDS+=("$FEEDER")
}

# pipeline OUT GROUP [SOURCE_EXTRA] [LIMITS]: the fraud pipeline with a kafka
# source (group GROUP, short session timeout, commits every $COMMIT_INTERVAL,
# 200ms by default) and kafka sinks. SOURCE_EXTRA is more `source:` keys
# (indented lines); LIMITS replaces the limits: line.
pipeline() {
  local out=$1 group=$2 extra=${3:-} limits=${4:-}
  awk -v bs="$BS" -v group="$group" -v extra="$extra" -v limits="$limits" \
    -v ci="${COMMIT_INTERVAL:-200ms}" '
    /^source:/ {
      print "source:\n  type: kafka\n  brokers: \"" bs "\"\n  topic: in\n  group: " group
      print "  start: earliest\n  commit_interval: " ci
      print "  kafka: {session.timeout.ms: 6000, heartbeat.interval.ms: 500}"
      if (extra != "") print extra
      skip = 1; next
    }
    skip && /^[a-z]/ { skip = 0 }
    skip { next }
    /^sink:/ { print "sink:   {type: kafka, topic: scores}"; next }
    /^alerts:/ { print "alerts: {when: \"decision == '"'"'block'"'"'\", sink: {type: kafka, topic: alerts}}"; next }
    /^dlq:/ { print "dlq:    {type: kafka, topic: dlq}"; next }
    /^limits:/ && limits != "" { print limits; next }
    { print }' "$SRC/examples/fraud/pipeline.yaml" |
    sed "s#examples/fraud/#$SRC/examples/fraud/#" > "$out"
}

# run_start CONFIG LOG: `rtscore run` in the background; sets RUN_PID.
run_start() {
  "$RTS" run -c "$1" --no-progress --log-level info > /dev/null 2> "$2" &
  RUN_PID=$!
  PIDS+=("$RUN_PID")
}

# run_stop PID: SIGTERM, wait (120 s at most, then kill -9); sets RC to its
# exit code (124 when it had to be killed).
run_stop() {
  RC=0
  kill -TERM "$1" 2> /dev/null || true
  for _ in $(seq 1 1200); do
    kill -0 "$1" 2> /dev/null || break
    sleep 0.1
  done
  if kill -0 "$1" 2> /dev/null; then
    kill -9 "$1" 2> /dev/null || true
    wait "$1" 2> /dev/null || true
    RC=124
    return
  fi
  wait "$1" || RC=$?
}

# dump TOPIC FILE [FORMAT]: the whole topic, one message per line.
dump() {
  timeout 120 kcat -C -b "$BS" -t "$1" -o beginning -e -q -f "${3:-%s\\n}" > "$2" || true
}

# end_offsets TOPIC: messages in TOPIC (high watermarks summed over partitions).
end_offsets() {
  local args=() p
  for p in $(seq 0 $((NPART - 1))); do args+=(-t "$1:$p:-1"); done
  timeout 60 kcat -Q -b "$BS" "${args[@]}" 2> /dev/null | awk '{ s += $NF } END { print s + 0 }'
}

# outputs: messages in scores + dlq.
outputs() {
  echo $(($(end_offsets scores) + $(end_offsets dlq)))
}

# wait_outputs N [SECONDS]: until scores + dlq hold at least N messages.
wait_outputs() {
  local end=$((SECONDS + ${2:-120}))
  while [ "$SECONDS" -lt "$end" ]; do
    [ "$(outputs)" -ge "$1" ] && return 0
    sleep 0.5
  done
  return 1
}

# wait_log FILE PATTERN [SECONDS [COUNT]]: until FILE has COUNT (1) lines
# matching PATTERN.
wait_log() {
  local end=$((SECONDS + ${3:-60}))
  while [ "$SECONDS" -lt "$end" ]; do
    [ "$(grep -c "$2" "$1" 2> /dev/null)" -ge "${4:-1}" ] && return 0
    sleep 0.2
  done
  return 1
}

# pycheck WHAT COMMAND ARGS...: a kafka_check.py check, its summary in the line.
pycheck() {
  local what=$1 out rc=0
  shift
  out=$($PY "$CHECK_PY" "$@" 2>&1) || rc=$?
  if [ "$rc" -eq 0 ]; then pass "$what ($out)"; else fail "$what: $(echo "$out" | tr '\n' ' ')"; fi
}

# committed_sum GROUP: the group's committed offsets on topic in, summed.
committed_sum() {
  committed "$1" | tr ' ' '\n' | awk -F= '$2 > 0 { s += $2 } END { print s + 0 }'
}

# wait_committed GROUP N [SECONDS]: until the group has committed N messages.
wait_committed() {
  local end=$((SECONDS + ${3:-180}))
  while [ "$SECONDS" -lt "$end" ]; do
    [ "$(committed_sum "$1")" -ge "$2" ] && return 0
    sleep 1
  done
  return 1
}
