#!/usr/bin/env bash
# Kafka end to end, through processes: `rtscore dev-kafka` is the cluster,
# kcat produces the input (generator events with 1% malformed, keyed by card,
# lz4) and reads the outputs, `rtscore run` scores the fraud pipeline with a
# kafka source and kafka sinks (scores, alerts, dlq).
#  - every valid id is scored, every invalid one dead-lettered (checked
#    against kafka_check.py's own reading of the schema), alerts are the block
#    decisions;
#  - SIGTERM mid-stream (input still arriving): exit 0, the committed offsets
#    equal what was output, and a restart of the same group reads exactly the
#    rest: across the two runs every id is output exactly once;
#  - interop: kcat reads the records with the event key as message key and
#    the id header.
. "$(dirname "$0")/lib/common.sh"
. "$SRC/tests/integration/lib/kafka.sh"

N=20000
devkafka_start 4
gen_input in.txt "$N" 11
pipeline p.yaml e2e
check "rtscore check accepts the kafka pipeline" "$RTS" check -c p.yaml > /dev/null 2>&1

produce in.txt 1 8000
run_start p.yaml run1.log
pid1=$RUN_PID
check "first run joins the group" wait_log run1.log "kafka partitions assigned"
# the rest arrives while the first run scores
feed in.txt 8001 1000 0.2
check "first run outputs (mid-stream)" wait_outputs 10000
run_stop "$pid1"
eq "SIGTERM mid-stream: exit 0" "$RC" 0
check "kcat produced every input" wait "$FEEDER"
dump scores run1_scores.txt
dump dlq run1_dlq.txt
out1=$(($(lines run1_scores.txt) + $(lines run1_dlq.txt)))
sum1=$(committed_sum e2e)
check "first run stopped mid-stream ($out1 of $N output)" test "$out1" -lt "$N"
eq "committed at shutdown = what was output" "$sum1" "$out1"

run_start p.yaml run2.log
pid2=$RUN_PID
check "second run outputs the rest" wait_outputs "$N" 180
run_stop "$pid2"
eq "second run: exit 0" "$RC" 0
in2=$(sed -n 's/^  events *\([0-9]*\) in .*/\1/p' run2.log)
eq "second run read exactly what was not committed" "$in2" "$((N - sum1))"

dump scores scores.txt
dump dlq dlq.txt
dump alerts alerts.txt
pycheck "every valid id scored, every invalid one dead-lettered, each once" \
  verify in.txt scores.txt dlq.txt --exact --alerts alerts.txt
check "the run saw invalid events" test "$(lines dlq.txt)" -gt 100
dump scores headers.txt '%k\t%h\t%s\n'
pycheck "kcat reads key = event key and header id" headers headers.txt
sum2=$(committed_sum e2e)
eq "everything committed at the end" "$sum2" "$N"
finish
