#!/usr/bin/env bash
# kill -9 of `rtscore run` mid-stream, then a restart in the same group:
# no input id is missing from the outputs, and the duplicates are only
# messages that were output but not committed at the kill:
#  - the committed offsets are read right after the kill (dev-kafka's
#    `offsets` command); every duplicated id was output before the kill and
#    sits at or after its partition's committed offset, so
#    duplicates <= outputs written but not committed at the kill;
#  - and duplicates <= partitions x max_inflight (what the source lets be in
#    flight per partition) + rate x 2 x commit_interval + one feeder chunk
#    (committable but not yet committed), with the rate the feeder's.
# commit_interval is 1 s (the default), so the kill finds work output and not
# yet committed.
. "$(dirname "$0")/lib/common.sh"
. "$SRC/tests/integration/lib/kafka.sh"

N=20000 CHUNK=1000 PAUSE=0.25 MAX_INFLIGHT=500 # feeder: 1000 events every 0.25 s
COMMIT_INTERVAL=1s
devkafka_start 4
gen_input in.txt "$N" 12
pipeline p.yaml crash "  max_inflight: $MAX_INFLIGHT"

run_start p.yaml run1.log
pid1=$RUN_PID
check "first run joins the group" wait_log run1.log "kafka partitions assigned"
feed in.txt 1 "$CHUNK" "$PAUSE"
check "first run outputs" wait_outputs 6000
sleep 0.6 # between two commits
kill -9 "$pid1"
wait "$pid1" 2> /dev/null || true
offsets=$(committed crash)
check "committed offsets read after the kill ('$offsets')" test -n "$offsets"
sleep 1 # a produce request the dead process sent may still be appended
dump scores run1_scores.txt
dump dlq run1_dlq.txt
check "killed mid-stream ($(($(lines run1_scores.txt) + $(lines run1_dlq.txt))) outputs)" \
  test "$(($(lines run1_scores.txt) + $(lines run1_dlq.txt)))" -lt "$N"
check "kcat produced every input" wait "$FEEDER"

run_start p.yaml run2.log
pid2=$RUN_PID
check "the restart commits every input" wait_committed crash "$N" 240
run_stop "$pid2"
eq "the restart stops with exit 0" "$RC" 0

dump scores scores.txt
dump dlq dlq.txt
dump in inmap.txt '%p %o %s\n'
# 4 partitions x max_inflight + 4000/s x 2 x 1 s + one chunk
bound=$((4 * MAX_INFLIGHT + 4000 * 2 + CHUNK))
pycheck "nothing missing; duplicates only from what was not committed at the kill" \
  crash in.txt inmap.txt scores.txt dlq.txt run1_scores.txt run1_dlq.txt "$offsets" "$bound"
finish
