#!/usr/bin/python3
"""xgb_models.py - golden XGBoost models for the parity test (tests/integration/xgb_parity.sh).

Usage: /usr/bin/python3 xgb_models.py OUTDIR

Trains, on seeded synthetic data, one model per supported objective
(binary:logistic, binary:logitraw, reg:squarederror, reg:logistic,
multi:softprob with 4 classes), some with feature names and some without,
depth 3 to 6, 50 to 300 trees, with the exact and the hist tree methods, and
writes for each OUTDIR/<name>/:
  model.json    Booster.save_model (XGBoost's JSON format)
  rows.csv      >= 10,000 scoring rows; header = the feature names (in a
                shuffled column order for one model, to exercise matching by
                name) or f0..fN; an empty cell is a missing value (~10% NaN)
  expected.csv  XGBoost's own predictions, %.9g; header "score", or
                "p0,p1,..." for multi-class
The data is float32 (what XGBoost scores) and mixes continuous features,
small-integer features (so that rows land exactly on split thresholds, which
must go right) and wide-range features. Output is deterministic for a seed.
"""
import os
import sys

import numpy as np
import xgboost as xgb

NTRAIN = 4000
NSCORE = 10000
NFEAT = 12


def make_data(rng, n):
    x = np.empty((n, NFEAT), dtype=np.float64)
    x[:, 0:5] = rng.normal(0.0, 1.0, (n, 5))
    x[:, 5:8] = rng.integers(0, 5, (n, 3))            # ties at thresholds
    x[:, 8] = rng.lognormal(3.0, 2.0, n)              # wide range, positive
    x[:, 9] = rng.uniform(-1000.0, 1000.0, n)
    x[:, 10] = np.round(rng.normal(0.0, 10.0, n), 1)  # 1 decimal: repeats
    x[:, 11] = rng.uniform(0.0, 1.0, n)
    x = x.astype(np.float32)
    mask = rng.uniform(0.0, 1.0, x.shape) < 0.10
    mask[:, 11] &= rng.uniform(0.0, 1.0, n) < 0.5   # some features more complete
    x[mask] = np.nan
    return x


def signal(x):
    z = np.nan_to_num(x.astype(np.float64), nan=0.0)
    return (1.5 * z[:, 0] - z[:, 1] * z[:, 2] + 0.8 * (z[:, 5] >= 2) - 0.5 * z[:, 6]
            + 0.3 * np.log1p(z[:, 8]) + 0.002 * z[:, 9] + 0.05 * z[:, 10]
            + np.where(np.isnan(x[:, 3]), 1.0, np.sin(z[:, 3])))


def fmt(v):
    return "" if np.isnan(v) else "%.9g" % v


def write_rows(path, x, names, order):
    with open(path, "w") as f:
        f.write(",".join(names[j] for j in order) + "\n")
        for row in x:
            f.write(",".join(fmt(row[j]) for j in order) + "\n")


def write_expected(path, pred):
    with open(path, "w") as f:
        if pred.ndim == 1:
            f.write("score\n")
            for v in pred:
                f.write("%.9g\n" % v)
        else:
            f.write(",".join("p%d" % k for k in range(pred.shape[1])) + "\n")
            for row in pred:
                f.write(",".join("%.9g" % v for v in row) + "\n")


MODELS = [
    # name, objective, params, rounds, feature names?, shuffle columns?
    ("binary_logistic", "binary:logistic",
     {"max_depth": 6, "eta": 0.1, "tree_method": "hist"}, 300, True, True),
    ("binary_logitraw", "binary:logitraw",
     {"max_depth": 5, "eta": 0.2, "tree_method": "exact", "base_score": 0.3}, 120, False, False),
    ("reg_squarederror", "reg:squarederror",
     {"max_depth": 6, "eta": 0.05, "tree_method": "hist", "base_score": 2.5,
      "subsample": 0.8, "colsample_bytree": 0.8}, 200, True, False),
    ("reg_logistic", "reg:logistic",
     {"max_depth": 3, "eta": 0.3, "tree_method": "exact", "base_score": 0.4}, 50, False, False),
    ("multi_softprob", "multi:softprob",
     {"max_depth": 6, "eta": 0.2, "tree_method": "hist", "num_class": 4,
      "gamma": 0.5}, 60, True, False),
]


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: xgb_models.py OUTDIR")
    out = sys.argv[1]
    rng = np.random.default_rng(20240611)
    xtr = make_data(rng, NTRAIN)
    xsc = make_data(rng, NSCORE)
    s = signal(xtr)
    names = ["amount", "age_days", "velocity_1h", "ratio", "score_a", "cnt_a", "cnt_b", "cnt_c",
             "balance", "delta", "temp", "share"]
    for name, objective, params, rounds, named, shuffle in MODELS:
        if objective.startswith("binary"):
            y = (s + rng.normal(0.0, 0.5, NTRAIN) > 0.5).astype(np.float32)
        elif objective == "reg:logistic":
            y = (1.0 / (1.0 + np.exp(-s))).astype(np.float32)
        elif objective == "multi:softprob":
            y = np.digitize(s + rng.normal(0.0, 0.3, NTRAIN), [-1.0, 0.5, 2.0]).astype(np.float32)
        else:
            y = (3.0 * s + rng.normal(0.0, 0.2, NTRAIN)).astype(np.float32)
        fn = names if named else None
        dtr = xgb.DMatrix(xtr, label=y, missing=np.nan, feature_names=fn)
        p = dict(params, objective=objective, seed=7, nthread=2)
        bst = xgb.train(p, dtr, num_boost_round=rounds)
        pred = bst.predict(xgb.DMatrix(xsc, missing=np.nan, feature_names=fn))
        d = os.path.join(out, name)
        os.makedirs(d, exist_ok=True)
        bst.save_model(os.path.join(d, "model.json"))
        header = names if named else ["f%d" % j for j in range(NFEAT)]
        order = list(range(NFEAT))
        if shuffle:
            order = list(np.random.default_rng(5).permutation(NFEAT))
        write_rows(os.path.join(d, "rows.csv"), xsc, header, order)
        write_expected(os.path.join(d, "expected.csv"), pred)
        print("%s: %d trees, %d rows" % (name, len(bst.get_dump()), NSCORE))


if __name__ == "__main__":
    main()
