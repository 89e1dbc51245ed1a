#!/usr/bin/env bash
# Runs every benchmark binary in build dir $1 and prints their figures.
set -euo pipefail
dir=${1:-build-release}
echo "machine: $(nproc) cores, $(uname -m), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
for b in "$dir"/bench_*; do
  [ -x "$b" ] || continue
  echo "== $(basename "$b")"
  "$b"
done
