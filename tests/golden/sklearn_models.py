#!/usr/bin/python3
"""sklearn_models.py OUTDIR - the scikit-learn side of tests/integration/sklearn_parity.sh.

Trains small models on synthetic data (seeded, so every run is the same),
exports them with train/export_sklearn.py and writes into OUTDIR:

  rows.csv             10,000 rows of 6 features, header = feature names,
                       about 10% empty cells (missing values)
  NAME.json            the exported model
  NAME.expected.csv    scikit-learn's answer for each row, %.9g: predict_proba
                       (the positive class for binary, every class for
                       multi-class) or predict; header `score` or `p0,p1,...`
                       like `rtscore predict`
  models.txt           the NAMEs, one per line

Feature values are rounded to float32 before training and scoring, because
rtscore reads features as float: both sides then see the same numbers and
any difference is the evaluators'. Missing values are NaN for scikit-learn,
so the models are Pipelines starting with a SimpleImputer (mean, median,
constant), except linreg_zero, which is fitted on zero-filled data and
exported without an imputer to exercise the "zero" strategy.
"""

import os
import sys
import warnings

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "train"))

sys.dont_write_bytecode = True  # keep the source tree clean
import export_sklearn  # noqa: E402

from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.impute import SimpleImputer  # noqa: E402
from sklearn.linear_model import LinearRegression, LogisticRegression, Ridge  # noqa: E402
from sklearn.neural_network import MLPClassifier, MLPRegressor  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

FEATURES = ["amount_log", "hour", "txn_count_5m", "amount_ratio", "merchants_24h", "velocity_1h"]
N_TRAIN = 4000
N_ROWS = 10000
MISSING = 0.10


def make_rows(rng, n):
    """Features on different scales, float32-exact, then ~10% NaN."""
    x = np.column_stack([
        rng.normal(4.0, 1.5, n),
        rng.integers(0, 24, n).astype(np.float64),
        rng.poisson(3.0, n).astype(np.float64),
        rng.lognormal(0.0, 0.8, n),
        rng.poisson(2.0, n).astype(np.float64),
        rng.exponential(120.0, n),
    ]).astype(np.float32).astype(np.float64)
    x[rng.random(x.shape) < MISSING] = np.nan
    return x


def targets(rng, x):
    """Binary, 3-class and continuous targets from the complete features."""
    z = np.where(np.isnan(x), np.nanmean(x, axis=0), x)
    s = (0.9 * (z[:, 0] - 4) + 0.6 * np.sin(z[:, 1] / 24 * 2 * np.pi) + 0.4 * (z[:, 2] - 3)
         + 1.2 * np.log(z[:, 3]) - 0.3 * z[:, 4] + 0.004 * z[:, 5])
    binary = (s + rng.logistic(0, 1, len(s)) > 0).astype(int)
    u = np.column_stack([s, 0.8 * (z[:, 2] - 3) - 0.5 * z[:, 4], np.zeros(len(s))])
    multi = np.argmax(u + rng.gumbel(0, 1, u.shape), axis=1)
    reg = 10 * np.tanh(s / 2) + 0.02 * z[:, 5] + rng.normal(0, 0.5, len(s))
    return binary, multi, reg


def pipe(model, strategy="mean", **kw):
    return make_pipeline(SimpleImputer(strategy=strategy, **kw), StandardScaler(), model)


def main(out):
    rng = np.random.default_rng(20240601)
    xtr = make_rows(rng, N_TRAIN)
    ybin, ymulti, yreg = targets(rng, xtr)
    rows = make_rows(rng, N_ROWS)

    models = {
        "logreg_binary": (pipe(LogisticRegression(max_iter=2000)), ybin),
        "logreg_multi": (pipe(LogisticRegression(max_iter=2000)), ymulti),
        "ridge_median": (pipe(Ridge(alpha=3.0), "median"), yreg),
        "mlp_binary_relu": (pipe(MLPClassifier((16, 8), activation="relu", max_iter=300,
                                               random_state=1)), ybin),
        "mlp_multi_tanh": (pipe(MLPClassifier((12, 6), activation="tanh", max_iter=300,
                                              random_state=2), "constant", fill_value=-1.0),
                           ymulti),
        "mlp_binary_logistic": (pipe(MLPClassifier((10,), activation="logistic", max_iter=300,
                                                   random_state=3)), ybin),
        "mlp_regressor": (pipe(MLPRegressor((16, 8), activation="relu", max_iter=400,
                                            random_state=4)), yreg),
    }
    names = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for name, (model, y) in models.items():
            model.fit(xtr, y)
            export_sklearn.export(model, FEATURES, os.path.join(out, name + ".json"))
            if hasattr(model, "predict_proba"):
                p = model.predict_proba(rows)
                expected = p[:, 1:] if p.shape[1] == 2 else p
            else:
                expected = model.predict(rows).reshape(-1, 1)
            write_expected(os.path.join(out, name + ".expected.csv"), expected)
            names.append(name)

        # no imputer: rtscore's "zero" strategy; scikit-learn sees zeros for NaN
        lin = LinearRegression().fit(np.nan_to_num(xtr, nan=0.0), yreg)
        export_sklearn.export_linear(lin, FEATURES, os.path.join(out, "linreg_zero.json"))
        write_expected(os.path.join(out, "linreg_zero.expected.csv"),
                       lin.predict(np.nan_to_num(rows, nan=0.0)).reshape(-1, 1))
        names.append("linreg_zero")

    with open(os.path.join(out, "rows.csv"), "w", encoding="utf-8") as f:
        f.write(",".join(FEATURES) + "\n")
        for r in rows:
            f.write(",".join("" if np.isnan(v) else "%.9g" % v for v in r) + "\n")
    with open(os.path.join(out, "models.txt"), "w", encoding="utf-8") as f:
        f.write("\n".join(names) + "\n")
    print(f"{len(names)} models, {N_ROWS} rows, "
          f"{np.isnan(rows).mean() * 100:.1f}% missing cells -> {out}")


def write_expected(path, y):
    with open(path, "w", encoding="utf-8") as f:
        k = y.shape[1]
        f.write("score\n" if k == 1 else ",".join(f"p{j}" for j in range(k)) + "\n")
        for r in y:
            f.write(",".join("%.9g" % v for v in r) + "\n")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__.splitlines()[0])
    main(sys.argv[1])
