#!/usr/bin/env bash
# rtscore's linear-json and mlp-json evaluators agree with scikit-learn:
# tests/golden/sklearn_models.py trains and exports LogisticRegression (binary,
# 3-class), Ridge, LinearRegression, MLPClassifier (relu, tanh, logistic) and
# MLPRegressor behind SimpleImputer + StandardScaler, and writes 10,000 rows
# with ~10% missing cells and scikit-learn's answers; `rtscore predict` must
# match every value within 1e-6 * max(1, |sklearn|). The max error per model
# is printed.
. "$(dirname "$0")/lib/common.sh"

PY=/usr/bin/python3 # Debian's python3-sklearn imports only from this one (NOTES.md)
if ! "$PY" -c 'import sklearn' 2> /dev/null; then
  fail "python3-sklearn is not installed (scripts/install-deps.sh)"
  finish
fi
"$PY" "$SRC/tests/golden/sklearn_models.py" . > train.log 2>&1 || { cat train.log >&2; exit 1; }
cat train.log

eq "rows" "$(($(lines rows.csv) - 1))" 10000
check "about 10% missing cells" awk -F, 'NR > 1 { for (i = 1; i <= NF; i++) { n++; m += $i == "" } }
  END { exit !(m > 0.08 * n && m < 0.12 * n) }' rows.csv

# compare got expected: same header and shape, every value within tolerance;
# prints "max_abs max_rel n_bad" (rel = |got - want| / max(1, |want|))
compare() {
  awk -F, '
    function abs(v) { return v < 0 ? -v : v }
    NR == FNR { want[FNR] = $0; nwant = FNR; next }
    FNR == 1 { if ($0 != want[1]) { bad++; print "header: " $0 " != " want[1] > "/dev/stderr" }
               next }
    {
      split(want[FNR], w, ",")
      if (NF != length(w)) { bad++; next }
      for (i = 1; i <= NF; i++) {
        if ($i == "") { bad++; continue }
        d = abs($i - w[i]); r = d / (abs(w[i]) > 1 ? abs(w[i]) : 1)
        if (d > maxd) maxd = d
        if (r > maxr) maxr = r
        if (r > 1e-6 && bad++ < 3) {
          print "row " FNR - 1 " column " i ": rtscore " $i ", sklearn " w[i] > "/dev/stderr"
        }
      }
    }
    END { if (FNR != nwant) bad++; printf "%.3g %.3g %d\n", maxd, maxr, bad }
  ' "$2" "$1"
}

for name in $(cat models.txt); do
  if ! "$RTS" predict -m "$name.json" -i rows.csv -o "$name.got.csv" 2> "$name.err"; then
    fail "$name: rtscore predict failed: $(head -c 300 "$name.err")"
    continue
  fi
  read -r maxd maxr nbad < <(compare "$name.got.csv" "$name.expected.csv")
  printf '     %-20s max |error| %-9s max relative %-9s (%s rows)\n' "$name" "$maxd" "$maxr" \
    "$(($(lines "$name.got.csv") - 1))"
  eq "$name within 1e-6 of scikit-learn" "$nbad" 0
done

# the model's own checks reach the user through the CLI
sed 's/"version":1/"version":2/' logreg_binary.json > bad.json
check "bad model rejected" bash -c "! '$RTS' predict -m bad.json -i rows.csv -o x.csv 2> bad.err"
check "with the key path" grep -q 'version: expected 1' bad.err
finish
