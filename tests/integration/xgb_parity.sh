#!/usr/bin/env bash
# XGBoost parity: tests/golden/xgb_models.py trains one model per supported
# objective (with and without feature names, ~10% missing values) and writes
# XGBoost's own predictions for 10,000 rows; `rtscore predict` must agree on
# every value within 1e-6 * max(1, |xgboost|). Prints the largest error per model.
. "$(dirname "$0")/lib/common.sh"

PY=/usr/bin/python3
if ! "$PY" -c 'import xgboost, numpy' 2> /dev/null; then
  echo "SKIP: $PY cannot import xgboost and numpy (python3-xgboost, python3-numpy)"
  exit 77
fi
check "train the golden models" "$PY" "$SRC/tests/golden/xgb_models.py" models

# compare expected.csv got.csv: prints "max_err rows bad_values"
compare() {
  paste -d, "$1" "$2" | awk -F, '
    NR == 1 { next }
    {
      k = NF / 2; rows++
      if (NF != 2 * k || k < 1) { bad++; next }
      for (i = 1; i <= k; i++) {
        e = $i + 0; g = $(i + k); d = e - g; if (d < 0) d = -d
        a = e < 0 ? -e : e; if (a < 1) a = 1
        r = d / a; if (r > m) m = r
        if (g == "" || !(r <= 1e-6)) bad++
      }
    }
    END { printf "%.3g %d %d\n", m, rows, bad + 0 }'
}

n=0
for d in models/*/; do
  name=$(basename "$d")
  n=$((n + 1))
  if ! "$RTS" predict -m "$d/model.json" -i "$d/rows.csv" -o "$d/got.csv" 2> "$d/err.txt"; then
    fail "$name: rtscore predict failed: $(head -c 300 "$d/err.txt")"
    continue
  fi
  eq "$name: header" "$(head -n 1 "$d/got.csv")" "$(head -n 1 "$d/expected.csv")"
  eq "$name: rows" "$(lines "$d/got.csv")" "$(lines "$d/expected.csv")"
  read -r maxerr rows bad < <(compare "$d/expected.csv" "$d/got.csv")
  echo "     $name: max error $maxerr over $rows rows"
  eq "$name: values within 1e-6 * max(1, |xgboost|) (count of values outside)" "$bad" 0
done
check "five golden models" test "$n" -eq 5
finish
