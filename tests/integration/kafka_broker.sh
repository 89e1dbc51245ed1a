#!/usr/bin/env bash
# Brokers taken down and brought back mid-stream, through dev-kafka's control
# channel (the mock's fault API lives in the process that owns the cluster):
# a three-broker cluster loses broker 1 for 5 s, later broker 2 for 5 s, then
# all three for 5 s, while
# kcat keeps producing and `rtscore run` consumes and produces. The mock does
# not move leaders away from a broker that is down, so each outage stalls the
# partitions (and maybe the group coordinator) that broker leads: reads,
# writes and commits wait and retry. Nothing is lost: every input is
# committed and every id output; repeats (after a commit that failed or a
# rebalance) are counted and allowed.
. "$(dirname "$0")/lib/common.sh"
. "$SRC/tests/integration/lib/kafka.sh"

N=20000 CHUNK=1000 PAUSE=0.25
devkafka_start 4 3
gen_input in.txt "$N" 14
pipeline p.yaml brk

run_start p.yaml run.log
pid=$RUN_PID
check "joins the group" wait_log run.log "kafka partitions assigned"
feed in.txt 1 "$CHUNK" "$PAUSE"
check "outputs before the first outage" wait_outputs 3000
eq "broker 1 down" "$(ctl down 1)" "ok down 1"
sleep 5
eq "broker 1 up" "$(ctl up 1)" "ok up 1"
check "outputs between the outages" wait_outputs 10000 180
eq "broker 2 down" "$(ctl down 2)" "ok down 2"
sleep 5
eq "broker 2 up" "$(ctl up 2)" "ok up 2"
check "outputs between the outages" wait_outputs 15000 180
for b in 1 2 3; do ctl down "$b" > /dev/null; done
check "the whole cluster down" grep -q "^ok down 3" dk.out
sleep 5
for b in 1 2 3; do ctl up "$b" > /dev/null; done
eq "the whole cluster back" "$(tail -n 1 dk.out)" "ok up 3"
check "kcat produced every input" wait "$FEEDER"
check "every input committed after the outages" wait_committed brk "$N" 240
run_stop "$pid"
eq "stops with exit 0" "$RC" 0
check "the outages were seen (librdkafka logged the brokers down)" \
  grep -qiE 'connection refused|disconnected|transport|down' run.log

dump scores scores.txt
dump dlq dlq.txt
pycheck "nothing lost" verify in.txt scores.txt dlq.txt
finish
