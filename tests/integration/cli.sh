#!/usr/bin/env bash
# The command line: exit codes, messages with positions, generated docs.
. "$(dirname "$0")/lib/common.sh"

code() { set +e; "$@" > out.txt 2> err.txt; echo $?; set -e; }

eq "version" "$(code "$RTS" version)" 0
check "version text" grep -q '^rtscore [0-9]' out.txt
eq "no command" "$(code "$RTS")" 1
eq "unknown command" "$(code "$RTS" frobnicate)" 1
eq "help" "$(code "$RTS" help)" 0
eq "check embedded default" "$(code "$RTS" check -c "$SRC/examples/fraud/pipeline.yaml")" 0
check "check summary" grep -q 'ok: pipeline fraud' out.txt
printf 'pipeline: x\nsource: {type: file, path: a}\nevent: {id: i, key: k}\nfallback: {score: "1"}\nsink: {type: null}\nfeatures:\n  - {name: a, agg: count, window: 5q}\n' > bad.yaml
eq "check bad duration" "$(code "$RTS" check -c bad.yaml)" 1
check "error names file, line and key path" grep -q 'bad.yaml:7:.*features\[0\].*duration' err.txt
eq "check missing file" "$(code "$RTS" check -c nope.yaml)" 1
eq "run without -c" "$(code "$RTS" run)" 1
"$RTS" help config > config.md
check "docs/CONFIG.md is generated from the code (rtscore help config > docs/CONFIG.md)" \
  cmp -s config.md "$SRC/docs/CONFIG.md"
"$RTS" help errors > errors.md
check "docs/ERRORS.md is generated from the code (rtscore help errors > docs/ERRORS.md)" \
  cmp -s errors.md "$SRC/docs/ERRORS.md"
"$RTS" gen --events 1000 --seed 3 > a.jsonl
"$RTS" gen --events 1000 --seed 3 > b.jsonl
"$RTS" gen --events 1000 --seed 4 > c.jsonl
eq "gen count" "$(lines a.jsonl)" 1000
check "gen is deterministic" cmp -s a.jsonl b.jsonl
check "gen seed matters" bash -c "! cmp -s a.jsonl c.jsonl"
eq "gen rejects non-numbers" "$(code "$RTS" gen --events abc)" 1
start=$(date +%s%N)
"$RTS" gen --events 200 --rate 1000 > paced.jsonl
ms=$((($(date +%s%N) - start) / 1000000))
check "gen --rate paces (200 events at 1000/s took ${ms} ms)" test "$ms" -ge 150
finish
