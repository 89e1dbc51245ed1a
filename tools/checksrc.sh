#!/usr/bin/env bash
# checksrc.sh - house rules that a compiler does not check (STYLE.md):
# no strcpy/sprintf/atoi/strtok, no typedef'd structs, no // comments, every
# C file opens with its paragraph, every exported symbol starts with rts_
# (checked on the built library when there is one). Exit 1 on a violation.
set -uo pipefail
cd "$(dirname "$0")/.."
bad=0
files=$(git ls-files 'src/*.c' 'src/*.h' 'tests/*.c' 'tests/*.h' 'bench/*.c' 2>/dev/null)
[ -n "$files" ] || files=$(find src tests bench -name '*.[ch]')

report() { echo "checksrc: $1" >&2; bad=1; }

for f in $files; do
  # strings and char literals blanked, so their contents never match
  code=$(perl -pe 's/"(?:[^"\\]|\\.)*"/""/g; s/'"'"'(?:[^'"'"'\\]|\\.)+'"'"'/0/g' "$f")
  if echo "$code" | grep -nE '\b(strcpy|sprintf|vsprintf|atoi|atol|strtok|gets)\s*\(' >/tmp/checksrc.$$; then
    while read -r l; do report "$f:$l: banned function"; done </tmp/checksrc.$$
  fi
  if echo "$code" | grep -nE '\btypedef\s+struct\b' >/tmp/checksrc.$$; then
    while read -r l; do report "$f:$l: typedef'd struct"; done </tmp/checksrc.$$
  fi
  if echo "$code" | grep -nE '(^|[^:*/])//' >/tmp/checksrc.$$; then
    while read -r l; do report "$f:$l: // comment"; done </tmp/checksrc.$$
  fi
  if [ "$(head -c 2 "$f")" != "/*" ]; then
    report "$f:1: does not open with a comment paragraph on its role"
  fi
done
rm -f /tmp/checksrc.$$

lib=""
for l in build/librtscore_lib.a build-release/librtscore_lib.a; do
  [ -f "$l" ] && { lib=$l; break; }
done
if [ -n "$lib" ]; then
  # defined global symbols; sanitizer builds add __odr_asan.* copies, so only
  # plain builds are checked
  syms=$(nm -g --defined-only "$lib" 2>/dev/null | awk '$2 ~ /^[TDBRC]$/ {print $3}' | grep -vE '^rts_' || true)
  for sym in $syms; do
    report "$lib: exported symbol '$sym' lacks the rts_ prefix"
  done
fi
[ "$bad" -eq 0 ] && echo "checksrc: ok"
exit "$bad"
