#!/usr/bin/python3
"""export_sklearn.py - write scikit-learn models in rtscore's own formats.

linear-json (LogisticRegression, LinearRegression, Ridge and other linear
regressors) and mlp-json (MLPClassifier, MLPRegressor), both described in
docs/MODELS.md. A SimpleImputer and a StandardScaler may stand in front of
the model, passed as arguments or as the steps of a Pipeline, in that order:
the imputer's per-feature statistics become "missing" (what rtscore puts in
place of NaN) and the scaler's mean and scale become "standardize", stored
as they are rather than folded into the weights, so that rtscore computes
(x - mean) / scale exactly as scikit-learn does. Without an imputer, NaN is
replaced by 0 ("strategy": "zero").

The exporter refuses what rtscore would score differently (one-vs-rest
multi-class LogisticRegression, imputers with add_indicator, a scaler before
the imputer, generalized linear models with a link function), so an exported
file agrees with predict_proba / predict to about 1e-7.

Run with /usr/bin/python3 (Debian's python3-sklearn): see --help.
"""

import argparse
import json
import math
import sys

import numpy as np

LIMIT_FEATURES = 4096  # mlp.c: MLP_MAX_FEATURES
LIMIT_UNITS = 1024  # units per layer, outputs of a linear model
LIMIT_LAYERS = 16
FORMAT_VERSION = 1


class ExportError(ValueError):
    """The model (or pipeline) cannot be written in an rtscore format."""


def _floats(a, what):
    out = [float(v) for v in np.asarray(a, dtype=np.float64).ravel()]
    for i, v in enumerate(out):
        if not math.isfinite(v):
            raise ExportError(f"{what}[{i}] is {v}: rtscore files hold finite numbers only")
    return out


def _matrix(a, what):
    a = np.asarray(a, dtype=np.float64)
    return [_floats(row, f"{what}[{i}]") for i, row in enumerate(a)]


def _split_pipeline(model, imputer, scaler):
    """(imputer, scaler, estimator) from a Pipeline or the three arguments."""
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    if isinstance(model, Pipeline):
        if imputer is not None or scaler is not None:
            raise ExportError("pass either a Pipeline or imputer=/scaler=, not both")
        steps = [s for _, s in model.steps if s is not None and s != "passthrough"]
        model, pre = steps[-1], steps[:-1]
        kinds = [type(s).__name__ for s in pre]
        if kinds not in ([], ["SimpleImputer"], ["StandardScaler"],
                         ["SimpleImputer", "StandardScaler"]):
            raise ExportError(
                "pipeline steps before the model must be [SimpleImputer] [StandardScaler] "
                f"in that order, got {kinds}")
        for s in pre:
            if isinstance(s, SimpleImputer):
                imputer = s
            else:
                scaler = s
    if imputer is not None and not isinstance(imputer, SimpleImputer):
        raise ExportError(f"imputer: expected a SimpleImputer, got {type(imputer).__name__}")
    if scaler is not None and not isinstance(scaler, StandardScaler):
        raise ExportError(f"scaler: expected a StandardScaler, got {type(scaler).__name__}")
    return imputer, scaler, model


def _feature_names(feature_names, n, *fitted):
    if feature_names is None:
        for est in fitted:
            if est is not None and hasattr(est, "feature_names_in_"):
                feature_names = list(est.feature_names_in_)
                break
    if feature_names is None:
        raise ExportError("feature_names is required (the model was fitted without names)")
    names = [str(f) for f in feature_names]
    if len(names) != n:
        raise ExportError(f"{len(names)} feature names for a model of {n} features")
    if len(set(names)) != len(names) or any(not s for s in names):
        raise ExportError("feature names must be non-empty and distinct")
    if n > LIMIT_FEATURES:
        raise ExportError(f"{n} features, rtscore reads at most {LIMIT_FEATURES}")
    return names


def _missing(imputer, n):
    if imputer is None:
        return {"strategy": "zero"}
    if getattr(imputer, "add_indicator", False):
        raise ExportError("SimpleImputer(add_indicator=True) is not supported")
    mv = imputer.missing_values
    if not (isinstance(mv, float) and math.isnan(mv)):
        raise ExportError("SimpleImputer: missing_values must be NaN (rtscore's missing value)")
    stats = np.asarray(imputer.statistics_, dtype=np.float64)
    if stats.shape != (n,) or not np.all(np.isfinite(stats)):
        raise ExportError("SimpleImputer: a feature was empty in training and is dropped; "
                          "fit with keep_empty_features=True or remove it")
    return {"strategy": imputer.strategy, "values": _floats(stats, "imputer.statistics_")}


def _standardize(scaler, n):
    if scaler is None:
        return None
    mean = scaler.mean_ if scaler.with_mean and scaler.mean_ is not None else np.zeros(n)
    scale = scaler.scale_ if scaler.with_std and scaler.scale_ is not None else np.ones(n)
    if len(mean) != n or len(scale) != n:
        raise ExportError(f"StandardScaler was fitted on {len(mean)} features, not {n}")
    return {"mean": _floats(mean, "scaler.mean_"), "scale": _floats(scale, "scaler.scale_")}


def _meta(model, classes=None):
    import sklearn

    meta = {"exporter": "train/export_sklearn.py", "estimator": type(model).__name__,
            "sklearn": sklearn.__version__}
    if classes is not None:
        meta["classes"] = [c.item() if hasattr(c, "item") else c for c in classes]
    return meta


def _document(fmt, objective, names, imputer, scaler, body, meta):
    doc = {"format": fmt, "version": FORMAT_VERSION, "objective": objective, "features": names,
           "missing": _missing(imputer, len(names))}
    std = _standardize(scaler, len(names))
    if std is not None:
        doc["standardize"] = std
    doc.update(body)
    doc["meta"] = meta
    return doc


def _write(doc, path):
    if path is not None:
        with open(path, "w", encoding="utf-8") as f:
            json.dump(doc, f, allow_nan=False, separators=(",", ":"))
            f.write("\n")
    return doc


def _linear_regressor_types():
    from sklearn import linear_model as lm
    from sklearn.svm import LinearSVR

    return (lm.LinearRegression, lm.Ridge, lm.RidgeCV, lm.Lasso, lm.LassoCV, lm.ElasticNet,
            lm.ElasticNetCV, lm.Lars, lm.LassoLars, lm.SGDRegressor, lm.HuberRegressor,
            lm.BayesianRidge, lm.ARDRegression, lm.TheilSenRegressor, LinearSVR)


def export_linear(model, feature_names=None, path=None, imputer=None, scaler=None):
    """Write @model (or a Pipeline ending in it) as linear-json at @path.

    LogisticRegression, binary: one output, P(classes_[1]) ("logistic").
    LogisticRegression, multinomial: K outputs, P of each of classes_ ("softmax").
    Linear regressors: predict(), one output per target ("identity").
    Returns the document (a dict); @path None writes nothing.
    """
    from sklearn.linear_model import LogisticRegression

    imputer, scaler, model = _split_pipeline(model, imputer, scaler)
    coef = np.atleast_2d(np.asarray(model.coef_, dtype=np.float64))
    intercept = np.atleast_1d(np.asarray(model.intercept_, dtype=np.float64))
    if intercept.shape == (1,) and coef.shape[0] > 1:
        intercept = np.full(coef.shape[0], intercept[0])
    classes = None
    if isinstance(model, LogisticRegression):
        classes = model.classes_
        # the rule LogisticRegression.predict_proba follows (scikit-learn 1.2)
        ovr = model.multi_class in ("ovr", "warn") or (
            model.multi_class == "auto" and (len(classes) <= 2 or model.solver == "liblinear"))
        if len(classes) <= 2:
            objective = "logistic"
            if not ovr:  # softmax([-d, d])[1] = sigmoid(2d): exact in binary floating point
                coef, intercept = 2.0 * coef, 2.0 * intercept
        elif ovr:
            raise ExportError("one-vs-rest multi-class LogisticRegression is not supported; "
                              "fit with multi_class='multinomial' (solver lbfgs)")
        else:
            objective = "softmax"
    elif isinstance(model, _linear_regressor_types()):
        objective = "identity"
    else:
        raise ExportError(f"export_linear: unsupported model {type(model).__name__} "
                          "(LogisticRegression or a linear regressor)")
    if coef.shape[0] != intercept.shape[0]:
        raise ExportError(f"coef_ has {coef.shape[0]} rows, intercept_ {intercept.shape[0]}")
    if coef.shape[0] > LIMIT_UNITS:
        raise ExportError(f"{coef.shape[0]} outputs, rtscore reads at most {LIMIT_UNITS}")
    names = _feature_names(feature_names, coef.shape[1], imputer, scaler, model)
    body = {"coef": _matrix(coef, "coef_"), "intercept": _floats(intercept, "intercept_")}
    return _write(_document("linear-json", objective, names, imputer, scaler, body,
                            _meta(model, classes)), path)


def export_mlp(model, feature_names=None, path=None, imputer=None, scaler=None):
    """Write an MLPClassifier or MLPRegressor (or a Pipeline ending in one) as mlp-json.

    Binary classifier: one output, P(classes_[1]) ("logistic"); multi-class: K
    outputs ("softmax"); multi-label: K independent sigmoids ("logistic");
    regressor: predict() ("identity"). Returns the document.
    """
    from sklearn.neural_network import MLPClassifier, MLPRegressor

    imputer, scaler, model = _split_pipeline(model, imputer, scaler)
    if not isinstance(model, (MLPClassifier, MLPRegressor)):
        raise ExportError(f"export_mlp: unsupported model {type(model).__name__} "
                          "(MLPClassifier or MLPRegressor)")
    if model.activation not in ("relu", "tanh", "logistic", "identity"):
        raise ExportError(f"unsupported activation {model.activation}")
    if model.out_activation_ not in ("logistic", "softmax", "identity"):
        raise ExportError(f"unsupported output activation {model.out_activation_}")
    if len(model.coefs_) > LIMIT_LAYERS:
        raise ExportError(f"{len(model.coefs_)} layers, rtscore reads at most {LIMIT_LAYERS}")
    layers = []
    for i, (w, b) in enumerate(zip(model.coefs_, model.intercepts_)):
        if w.shape[1] > LIMIT_UNITS:
            raise ExportError(f"layer {i}: {w.shape[1]} units, rtscore reads at most "
                              f"{LIMIT_UNITS}")
        last = i == len(model.coefs_) - 1
        layers.append({"weights": _matrix(np.asarray(w).T, f"coefs_[{i}].T"),
                       "bias": _floats(b, f"intercepts_[{i}]"),
                       "activation": "identity" if last else model.activation})
    names = _feature_names(feature_names, model.coefs_[0].shape[0], imputer, scaler, model)
    classes = model.classes_ if isinstance(model, MLPClassifier) else None
    return _write(_document("mlp-json", model.out_activation_, names, imputer, scaler,
                            {"layers": layers}, _meta(model, classes)), path)


def export(model, feature_names=None, path=None, imputer=None, scaler=None):
    """export_mlp for MLPs, export_linear for the rest."""
    from sklearn.neural_network import MLPClassifier, MLPRegressor
    from sklearn.pipeline import Pipeline

    final = model.steps[-1][1] if isinstance(model, Pipeline) else model
    fn = export_mlp if isinstance(final, (MLPClassifier, MLPRegressor)) else export_linear
    return fn(model, feature_names, path, imputer=imputer, scaler=scaler)


def main(argv=None):
    ap = argparse.ArgumentParser(
        description="Export a fitted scikit-learn model (pickled or joblib file) to rtscore's "
                    "linear-json or mlp-json format (docs/MODELS.md).",
        epilog="Supported: LogisticRegression (binary, multinomial), LinearRegression, Ridge and "
               "other linear regressors, MLPClassifier, MLPRegressor; optionally in a Pipeline "
               "after a SimpleImputer and/or a StandardScaler. Example: "
               "/usr/bin/python3 train/export_sklearn.py fraud.joblib -o model.json "
               "--features-from features.csv")
    ap.add_argument("model", help="fitted estimator or Pipeline saved with joblib.dump or pickle")
    ap.add_argument("-o", "--output", required=True, help="the JSON file to write")
    names = ap.add_mutually_exclusive_group()
    names.add_argument("--features", help="comma-separated feature names, in the model's order "
                                          "(default: the model's feature_names_in_)")
    names.add_argument("--features-from", metavar="CSV",
                       help="take the names from a CSV header, e.g. rtscore backfill output "
                            "(columns the model was not fitted on must be absent)")
    args = ap.parse_args(argv)

    import joblib

    model = joblib.load(args.model)
    feature_names = None
    if args.features:
        feature_names = args.features.split(",")
    elif args.features_from:
        with open(args.features_from, encoding="utf-8") as f:
            feature_names = f.readline().strip().split(",")
    try:
        doc = export(model, feature_names, args.output)
    except ExportError as e:
        print(f"export_sklearn: {e}", file=sys.stderr)
        return 1
    nout = len(doc["coef"]) if "coef" in doc else len(doc["layers"][-1]["bias"])
    print(f"{args.output}: {doc['format']} {doc['meta']['estimator']}, "
          f"{len(doc['features'])} features, {nout} output(s), objective {doc['objective']}, "
          f"missing {doc['missing']['strategy']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
