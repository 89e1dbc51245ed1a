#!/usr/bin/env bash
# Two `rtscore run` processes in one consumer group: they split the four
# partitions (two each); kill -9 of one mid-stream moves its partitions to
# the other (after the session timeout, 6 s here); together they output
# every event (the dead one's uncommitted work again: duplicates allowed).
. "$(dirname "$0")/lib/common.sh"
. "$SRC/tests/integration/lib/kafka.sh"

N=24000 CHUNK=1000 PAUSE=0.25
COMMIT_INTERVAL=1s # the dead member leaves work output and not committed
devkafka_start 4
gen_input in.txt "$N" 13
pipeline p.yaml pair

run_start p.yaml a.log
pa=$RUN_PID
check "the first member joins" wait_log a.log "kafka partitions assigned"
run_start p.yaml b.log
pb=$RUN_PID
check "the second member gets two partitions" wait_log b.log 'kafka partitions assigned" count=2'
wait_log a.log 'assigned" count=2' 30 || true
eq "the first member keeps two" "$(grep 'kafka partitions assigned' a.log | tail -n 1 | sed 's/.*count=\([0-9]*\).*/\1/')" 2
feed in.txt 1 "$CHUNK" "$PAUSE"
check "both output" wait_outputs 8000
kill -9 "$pb"
wait "$pb" 2> /dev/null || true
n4=$(grep -c 'kafka partitions assigned" count=4' a.log)
check "the survivor takes over all four partitions" \
  wait_log a.log 'kafka partitions assigned" count=4' 60 $((n4 + 1))
check "kcat produced every input" wait "$FEEDER"
check "the group commits every input" wait_committed pair "$N" 240
run_stop "$pa"
eq "the survivor stops with exit 0" "$RC" 0

dump scores scores.txt
dump dlq dlq.txt
pycheck "together they output every event" verify in.txt scores.txt dlq.txt
finish
