#!/usr/bin/env bash
# rtscore dev-kafka as a process: it prints its bootstrap servers, a real
# Kafka client (kcat) produces and consumes through it, and SIGTERM stops it
# with exit 0. kcat is required (scripts/install-deps.sh --test installs it).
. "$(dirname "$0")/lib/common.sh"

if ! command -v kcat > /dev/null; then
  echo "FAIL: kcat is not installed; run scripts/install-deps.sh --test" >&2
  exit 1
fi

"$RTS" dev-kafka --partitions 4 --topics in,out > boot.txt 2> devkafka.log &
pid=$!
trap 'kill "$pid" 2>/dev/null || true; rm -rf "$WORK"' EXIT

for _ in $(seq 1 300); do # up to 30 s for the line
  [ -s boot.txt ] && break
  kill -0 "$pid" 2>/dev/null || break
  sleep 0.1
done
bs=$(head -n 1 boot.txt)
check "dev-kafka prints its bootstrap servers ('$bs')" \
  grep -qE '^127\.0\.0\.1:[0-9]+(,127\.0\.0\.1:[0-9]+)*$' boot.txt

kcat -L -b "$bs" -t in -m 30 > meta.txt 2>&1 || true
check "topic 'in' has 4 partitions" grep -q 'topic "in" with 4 partitions' meta.txt

for i in $(seq 1 200); do echo "card-$((i % 13))|{\"n\":$i}"; done > events.txt
timeout 60 kcat -P -b "$bs" -t in -K '|' -l events.txt
timeout 60 kcat -C -b "$bs" -t in -o beginning -e -q -f '%p|%k|%s\n' > got.txt || true
eq "every produced message is consumed" "$(lines got.txt)" 200
eq "messages spread over the partitions" "$(cut -d'|' -f1 got.txt | sort -u | wc -l | tr -d ' ')" 4
eq "keys and values come back" "$(cut -d'|' -f2- got.txt | sort)" "$(sort events.txt)"
check "one key stays on one partition" \
  test "$(cut -d'|' -f1,2 got.txt | sort -u | cut -d'|' -f2 | sort | uniq -d | wc -l)" -eq 0

printf 'a\nb\nc\n' | timeout 60 kcat -P -b "$bs" -t out
timeout 60 kcat -C -b "$bs" -t out -o beginning -e -q > out.txt || true
eq "the second topic works too" "$(sort out.txt | tr '\n' ' ')" "a b c "

kill -TERM "$pid"
rc=0
wait "$pid" || rc=$?
eq "SIGTERM: exit 0" "$rc" 0
finish
