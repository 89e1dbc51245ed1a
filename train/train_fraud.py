#!/usr/bin/python3
"""train_fraud.py - train the fraud model bundles from rtscore's own features.

  rtscore gen        labelled synthetic transactions (JSON lines)
  rtscore backfill   the pipeline's features, point in time, one row per event
                     (config: examples/fraud/pipeline.yaml with a file source)
  split by time      first 70% of rows (event-time order) train, last 30% test
  train              XGBoost binary:logistic (the shipped model) and a
                     logistic-regression baseline (SimpleImputer + StandardScaler
                     + LogisticRegression, exported with train/export_sklearn.py)
  verify             `rtscore predict` on the test rows must agree with the
                     library's predictions to 1e-6 relative, or the script fails
  write              <out>/model and <out>/model-logistic: model.json + manifest.yaml

Run with /usr/bin/python3 (Debian's python3-xgboost, -sklearn, -numpy, -yaml).
See train/README.md for the bundle layout and the manifest keys.
"""

import argparse
import ast
import csv
import datetime
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np
import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)

PIPELINE = os.path.join(ROOT, "examples", "fraud", "pipeline.yaml")
LABEL = "is_fraud"
TRAIN_SHARE = 0.7
FEATURE_BINS = 10  # quantile bins per feature in the reference (deciles)
SCORE_EDGES = [round(i * 0.05, 2) for i in range(21)]  # 0, 0.05, ..., 1
HINT_GRID = [round(i * 0.05, 2) for i in range(2, 20)] + [0.99]  # 0.10 .. 0.95, 0.99
HINT_PRECISION = {"review": 0.5, "block": 0.9}  # the precision each cut-off must reach
HINT_DEFAULT = {"review": 0.6, "block": 0.9}  # the pipeline's rule cut-offs
REL_TOL = 1e-6
FLT_MIN = float(np.finfo(np.float32).tiny)  # 1.1754944e-38


class Fail(RuntimeError):
    pass


def log(msg):
    print(f"train_fraud: {msg}", file=sys.stderr, flush=True)


def run(cmd, **kw):
    log("$ " + " ".join(cmd))
    r = subprocess.run(cmd, stdout=kw.pop("stdout", subprocess.PIPE), stderr=subprocess.PIPE,
                       text=True, **kw)
    if r.returncode != 0:
        raise Fail(f"{' '.join(cmd)}: exit {r.returncode}\n{r.stderr.strip()}")
    if r.stderr.strip():
        for line in r.stderr.strip().splitlines()[-3:]:
            log("  " + line)
    return r


# ---- the pipeline ----------------------------------------------------------------------------

def file_source_config(pipeline_text, events_path, out_dir):
    """The pipeline with its top-level source: block replaced by a file source (as the
    README's tour does) and its output paths moved under @out_dir. Text-level, so the
    rest of the file reaches rtscore exactly as written."""
    lines = pipeline_text.splitlines()
    out, i, replaced = [], 0, False
    while i < len(lines):
        line = lines[i]
        if line.startswith("model:"):
            # backfill computes features only; the bundle being trained may not exist yet
            i += 1
            while i < len(lines) and lines[i].startswith((" ", "\t")):
                i += 1
            continue
        if line.startswith("source:"):
            rest = line[len("source:"):].split("#", 1)[0].strip()
            out += ["source:", "  type: file", f"  path: {events_path}"]
            i += 1
            if not rest:  # block mapping: skip its indented lines
                while i < len(lines) and (lines[i].startswith((" ", "\t")) or not lines[i].strip()):
                    i += 1
            replaced = True
            continue
        out.append(line.replace("out/demo/", out_dir.rstrip("/") + "/"))
        i += 1
    if not replaced:
        raise Fail(f"{PIPELINE}: no top-level source: block")
    return "\n".join(out) + "\n"


class Expr:
    """rtscore's expression language, for the subset a fallback score uses, over numpy
    columns: missing (NaN) propagates through arithmetic, comparisons with a missing
    value are false, bools are 0/1, division by zero is missing (docs/FEATURES.md).
    Anything else (c ? a : b, strings, in [...]) fails loudly rather than guessing."""

    FUNCS = {
        "log1p": np.log1p, "abs": np.abs, "sqrt": np.sqrt, "exp": np.exp,
        "min": lambda *a: _fold(np.minimum, a), "max": lambda *a: _fold(np.maximum, a),
        "clamp": lambda x, lo, hi: np.minimum(np.maximum(x, lo), hi),
        "is_missing": lambda x: np.isnan(x).astype(np.float64),
    }

    def __init__(self, text):
        self.text = text
        src = text.strip()
        try:
            self.tree = ast.parse(src, mode="eval").body
        except SyntaxError as e:
            raise Fail(f"fallback.score: cannot evaluate {text!r} in Python: {e}") from e
        self.names = sorted({n.id for n in ast.walk(self.tree) if isinstance(n, ast.Name)}
                            - set(self.FUNCS) - {"true", "false"})

    def eval(self, env):
        with np.errstate(all="ignore"):
            return np.asarray(self._ev(self.tree, env), dtype=np.float64)

    def _ev(self, n, env):
        if isinstance(n, ast.Constant) and isinstance(n.value, (int, float)):
            return float(n.value)
        if isinstance(n, ast.Name):
            if n.id in ("true", "false"):
                return 1.0 if n.id == "true" else 0.0
            return env[n.id]
        if isinstance(n, ast.UnaryOp) and isinstance(n.op, (ast.USub, ast.UAdd)):
            v = self._ev(n.operand, env)
            return -v if isinstance(n.op, ast.USub) else v
        if isinstance(n, ast.UnaryOp) and isinstance(n.op, ast.Not):
            return (~_truth(self._ev(n.operand, env))).astype(np.float64)
        if isinstance(n, ast.BinOp):
            a, b = self._ev(n.left, env), self._ev(n.right, env)
            if isinstance(n.op, ast.Add):
                return a + b
            if isinstance(n.op, ast.Sub):
                return a - b
            if isinstance(n.op, ast.Mult):
                return a * b
            if isinstance(n.op, ast.Div):
                b = np.asarray(b, dtype=np.float64)
                return np.where(b == 0, np.nan, a / np.where(b == 0, 1.0, b))
            if isinstance(n.op, ast.Mod):
                b = np.asarray(b, dtype=np.float64)
                return np.where(b == 0, np.nan, np.fmod(a, np.where(b == 0, 1.0, b)))
        if isinstance(n, ast.Compare) and len(n.ops) == 1:
            a, b = self._ev(n.left, env), self._ev(n.comparators[0], env)
            ops = {ast.Lt: np.less, ast.LtE: np.less_equal, ast.Gt: np.greater,
                   ast.GtE: np.greater_equal, ast.Eq: np.equal, ast.NotEq: np.not_equal}
            op = ops.get(type(n.ops[0]))
            if op is not None:  # NaN compares false, NotEq included (rtscore: any comparison)
                r = op(a, b)
                if op is np.not_equal:
                    r = r & ~np.isnan(a) & ~np.isnan(b)
                return np.asarray(r, dtype=np.float64)
        if isinstance(n, ast.BoolOp):
            vals = [_truth(self._ev(v, env)) for v in n.values]
            r = vals[0]
            for v in vals[1:]:
                r = (r & v) if isinstance(n.op, ast.And) else (r | v)
            return r.astype(np.float64)
        if isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id in self.FUNCS:
            return self.FUNCS[n.func.id](*[self._ev(a, env) for a in n.args])
        raise Fail(f"fallback.score: {ast.dump(n)[:80]}... is not supported by train_fraud.py's "
                   f"evaluator; extend Expr or simplify {self.text!r}")


def _fold(f, args):
    r = args[0]
    for a in args[1:]:
        r = f(r, a)
    return r


def _truth(v):
    v = np.asarray(v, dtype=np.float64)
    return ~np.isnan(v) & (v != 0)


# ---- data ------------------------------------------------------------------------------------

def load_backfill(path, features):
    with open(path, newline="", encoding="utf-8") as f:
        rd = csv.reader(f)
        header = next(rd)
        want = ["id", "key", "ts"] + features + [LABEL]
        if header != want:
            raise Fail(f"{path}: columns {header}, expected {want} (the pipeline's features)")
        ids, ts, rows, y = [], [], [], []
        nf = len(features)
        for r in rd:
            ids.append(r[0])
            ts.append(int(r[2]))
            rows.append([float(v) if v not in ("", "nan") else math.nan for v in r[3:3 + nf]])
            y.append(int(r[3 + nf]))
    X = np.asarray(rows, dtype=np.float64)
    # rtscore reads features as 32-bit floats: train and evaluate on exactly those values
    X = X.astype(np.float32).astype(np.float64)
    return ids, np.asarray(ts, dtype=np.int64), X, np.asarray(y, dtype=np.int64)


def event_fields(path, ids, names):
    """Event fields @names for the rows @ids (backfill row order), from the JSON lines."""
    if not names:
        return {}
    by_id = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            try:
                ev = json.loads(line)
            except ValueError:
                continue
            by_id[ev.get("txn_id")] = ev
    out = {}
    for name in names:
        col = np.full(len(ids), np.nan)
        for i, k in enumerate(ids):
            v = by_id.get(k, {}).get(name)
            if isinstance(v, bool):
                v = float(v)
            if isinstance(v, (int, float)):
                col[i] = float(v)
            elif v is not None:
                raise Fail(f"fallback.score uses the non-numeric event field {name!r}")
        out[name] = col
    return out


def write_rows(path, features, X):
    """Feature rows as `rtscore predict` reads them: the exact float32 values, empty = missing."""
    with open(path, "w", encoding="utf-8") as f:
        f.write(",".join(features) + "\n")
        for row in X:
            f.write(",".join("" if math.isnan(v) else repr(float(v)) for v in row) + "\n")


def read_scores(path, n):
    with open(path, encoding="utf-8") as f:
        header = f.readline().strip()
        if header != "score":
            raise Fail(f"{path}: header {header!r}, expected 'score'")
        vals = [float(line) for line in f if line.strip()]
    if len(vals) != n:
        raise Fail(f"{path}: {len(vals)} scores for {n} rows")
    return np.asarray(vals)


def check_parity(rtscore, model_path, features, X, expected, work, what):
    rows, got_path = os.path.join(work, f"{what}-rows.csv"), os.path.join(work, f"{what}-got.csv")
    write_rows(rows, features, X)
    run([rtscore, "predict", "-m", model_path, "-i", rows, "-o", got_path])
    got = read_scores(got_path, len(expected))
    expected = np.asarray(expected, dtype=np.float64)
    # relative error; rtscore's scores are floats, so below float32's smallest normal number
    # (a probability under 1.2e-38) only the absolute difference can be asked to be that small
    diff = np.abs(got - expected)
    rel = np.where(np.abs(expected) >= FLT_MIN, diff / np.maximum(np.abs(expected), FLT_MIN),
                   np.where(diff <= FLT_MIN, 0.0, np.inf))
    bad = int(np.sum(~(rel <= REL_TOL)))
    worst = float(np.max(rel)) if len(rel) else 0.0
    log(f"parity {what}: rtscore predict vs library on {len(expected)} test rows: "
        f"max relative error {worst:.3g}, {bad} outside {REL_TOL:g}")
    if bad:
        i = int(np.argmax(np.where(np.isnan(rel), np.inf, rel)))
        raise Fail(f"PARITY FAILURE ({what}): rtscore predict disagrees with the library on {bad} "
                   f"of {len(expected)} rows (row {i}: library {expected[i]!r}, rtscore {got[i]!r})")
    return worst


# ---- metrics ---------------------------------------------------------------------------------

def auc(y, s):
    from sklearn.metrics import roc_auc_score
    return float(roc_auc_score(y, s))


def pr_at(y, s, cut):
    flagged = s >= cut
    tp = int(np.sum(flagged & (y == 1)))
    nflag = int(np.sum(flagged))
    return {"cutoff": float(cut), "precision": round(tp / nflag, 4) if nflag else None,
            "recall": round(tp / max(1, int(np.sum(y == 1))), 4), "flagged": nflag}


def choose_hints(y, s):
    """Per decision, the lowest cut-off on HINT_GRID at which the test-set precision reaches
    HINT_PRECISION; the pipeline's default cut-off when none does. block >= review."""
    hints, how = {}, {}
    for name in ("review", "block"):
        cut = None
        for c in HINT_GRID:
            p = pr_at(y, s, c)["precision"]
            if p is not None and p >= HINT_PRECISION[name] and int(np.sum(s >= c)) >= 10:
                cut = c
                break
        how[name] = "precision" if cut is not None else "default"
        hints[name] = cut if cut is not None else HINT_DEFAULT[name]
    if hints["block"] < hints["review"]:
        hints["block"] = hints["review"]
    return hints, how


def metrics_for(y, s, hints):
    return {"roc_auc": round(auc(y, s), 4),
            **{name: pr_at(y, s, cut) for name, cut in hints.items()}}


def feature_reference(features, X):
    ref = {}
    for j, name in enumerate(features):
        col = X[:, j]
        present = col[~np.isnan(col)]
        n = len(col)
        entry = {"missing": round(float(np.sum(np.isnan(col))) / n, 6)}
        if len(present):
            qs = np.quantile(present, np.linspace(0, 1, FEATURE_BINS + 1)[1:-1])
            # distinct cut points above the minimum (a cut at the minimum leaves an empty bin)
            edges = sorted({float(np.float32(q)) for q in qs if q > present.min()})
            idx = np.searchsorted(np.asarray(edges), present, side="right")
            counts = np.bincount(idx, minlength=len(edges) + 1)
            entry.update({"edges": [_num(e) for e in edges],
                          "shares": [round(float(c) / n, 6) for c in counts],
                          "min": _num(float(present.min())), "max": _num(float(present.max()))})
        else:
            entry.update({"edges": [], "shares": [0.0]})
        ref[name] = entry
    return ref


def score_reference(s):
    edges = np.asarray(SCORE_EDGES)
    idx = np.clip(np.searchsorted(edges, s, side="right") - 1, 0, len(edges) - 2)
    counts = np.bincount(idx, minlength=len(edges) - 1)
    return {"edges": SCORE_EDGES, "shares": [round(float(c) / len(s), 6) for c in counts]}


def _num(v):
    return int(v) if float(v).is_integer() and abs(v) < 2**53 else float(v)


# ---- bundles ---------------------------------------------------------------------------------

def write_bundle(dirpath, model_src, manifest):
    os.makedirs(dirpath, exist_ok=True)
    shutil.copyfile(model_src, os.path.join(dirpath, "model.json"))
    text = yaml.safe_dump(manifest, sort_keys=False, default_flow_style=None, width=100,
                          allow_unicode=False)
    with open(os.path.join(dirpath, "manifest.yaml"), "w", encoding="utf-8") as f:
        f.write("# written by train/train_fraud.py; see train/README.md for the keys\n")
        f.write(text)
    yaml.safe_load(text)  # plain YAML: safe_load must read it back


def main(argv=None):
    ap = argparse.ArgumentParser(description="Train the fraud model bundles from rtscore "
                                 "backfill features (see train/README.md).")
    ap.add_argument("--rtscore", default=os.path.join(ROOT, "build", "rtscore"),
                    help="the rtscore binary (default build/rtscore)")
    ap.add_argument("--events", type=int, default=600000, help="events to generate (600000)")
    ap.add_argument("--seed", type=int, default=7,
                    help="generator and training seed (7; the demo runs seed 42: unseen data)")
    ap.add_argument("--out", default=os.path.join(ROOT, "out", "train"),
                    help="where the bundles go: OUT/model and OUT/model-logistic")
    ap.add_argument("--pipeline", default=PIPELINE, help="the pipeline whose features are served")
    ap.add_argument("--version", type=int, default=1, help="the bundles' version (1)")
    ap.add_argument("--trees", type=int, default=200)
    ap.add_argument("--depth", type=int, default=5)
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    args = ap.parse_args(argv)

    import sklearn
    import xgboost as xgb
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from export_sklearn import export_linear

    t0 = time.time()
    rtscore = os.path.abspath(args.rtscore)
    if not os.access(rtscore, os.X_OK):
        raise Fail(f"{rtscore}: not an executable (run make first)")
    with open(args.pipeline, encoding="utf-8") as f:
        pipeline_text = f.read()
    pipe_cfg = yaml.safe_load(pipeline_text)
    features = [f["name"] for f in pipe_cfg["features"]]
    src = pipe_cfg.get("source", {})
    fraud_rate = float(src.get("fraud_rate", 0.01))
    cards = int(src.get("cards", 100000))
    density = float(src.get("density", 500))  # the demo's event-time density: the same traffic
    fallback_text = pipe_cfg["fallback"]["score"]
    fallback = Expr(fallback_text)

    work = tempfile.mkdtemp(prefix="rtscore-train-")
    try:
        events = os.path.join(work, "events.jsonl")
        run([rtscore, "gen", "--events", str(args.events), "--seed", str(args.seed),
             "--fraud-rate", repr(fraud_rate), "--cards", str(cards), "--density", repr(density),
             "-o", events])
        cfg = os.path.join(work, "pipeline.yaml")
        with open(cfg, "w", encoding="utf-8") as f:
            f.write(file_source_config(pipeline_text, events, os.path.join(work, "out")))
        run([rtscore, "check", "-c", cfg])
        feats_csv = os.path.join(work, "features.csv")
        run([rtscore, "backfill", "-c", cfg, "-i", events, "-o", feats_csv, "--label", LABEL])

        ids, ts, X, y = load_backfill(feats_csv, features)
        if np.any(np.diff(ts) < 0):
            raise Fail("backfill rows are not in event-time order")
        n = len(y)
        # the first 70% of rows; events at the boundary's timestamp all go to test
        ntr = int(np.searchsorted(ts, ts[int(n * TRAIN_SHARE)], side="left"))
        Xtr, ytr, Xte, yte = X[:ntr], y[:ntr], X[ntr:], y[ntr:]
        log(f"{n} rows ({int(y.sum())} fraud); train {ntr} rows up to ts {int(ts[ntr - 1])}, "
            f"test {n - ntr} rows from ts {int(ts[ntr])} ({int(yte.sum())} fraud)")
        if ytr.sum() < 20 or yte.sum() < 20:
            raise Fail("too few fraud rows to train and test; raise --events")

        # the pipeline's fallback score, from the same rows
        env = {name: X[:, j] for j, name in enumerate(features)}
        env.update(event_fields(events, ids, [v for v in fallback.names if v not in env]))
        missing = [v for v in fallback.names if v not in env]
        if missing:
            raise Fail(f"fallback.score uses {missing}: neither features nor event fields")
        fb = fallback.eval(env)
        fb_te = fb[ntr:]

        # XGBoost
        params = {"objective": "binary:logistic", "max_depth": args.depth, "eta": 0.1,
                  "subsample": 0.8, "colsample_bytree": 0.8, "min_child_weight": 5,
                  "tree_method": "hist", "seed": args.seed, "nthread": 0}
        dtr = xgb.DMatrix(Xtr.astype(np.float32), label=ytr, feature_names=features,
                          missing=np.nan)
        dte = xgb.DMatrix(Xte.astype(np.float32), label=yte, feature_names=features,
                          missing=np.nan)
        booster = xgb.train(params, dtr, num_boost_round=args.trees)
        xgb_path = os.path.join(work, "xgb-model.json")
        booster.save_model(xgb_path)
        with open(xgb_path, encoding="utf-8") as f:
            saved = json.load(f)["learner"]
        if saved.get("feature_names") != features:
            raise Fail(f"saved model's feature_names {saved.get('feature_names')} != {features}")
        p_xgb_te = booster.predict(dte).astype(np.float64)
        err_xgb = check_parity(rtscore, xgb_path, features, Xte, p_xgb_te, work, "xgboost")

        # logistic-regression baseline
        lr = make_pipeline(SimpleImputer(strategy="mean"), StandardScaler(),
                           LogisticRegression(max_iter=2000, C=1.0))
        lr.fit(Xtr, ytr)
        lr_path = os.path.join(work, "lr-model.json")
        export_linear(lr, features, lr_path)
        p_lr_te = lr.predict_proba(Xte)[:, 1]
        err_lr = check_parity(rtscore, lr_path, features, Xte, p_lr_te, work, "logistic")

        # thresholds and metrics
        hints_xgb, how_xgb = choose_hints(yte, p_xgb_te)
        hints_lr, how_lr = choose_hints(yte, p_lr_te)
        rule_cuts = dict(HINT_DEFAULT)
        results = {
            "xgboost": (metrics_for(yte, p_xgb_te, hints_xgb), hints_xgb),
            "logistic": (metrics_for(yte, p_lr_te, hints_lr), hints_lr),
            "fallback rules": (metrics_for(yte, fb_te, rule_cuts), rule_cuts),
        }

        trained_at = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
        training = {
            "events": args.events, "seed": args.seed, "fraud_rate": fraud_rate, "cards": cards,
            "generator": f"rtscore gen --events {args.events} --seed {args.seed} "
                         f"--fraud-rate {fraud_rate!r} --cards {cards} --density {density!r}",
            "pipeline": os.path.relpath(os.path.abspath(args.pipeline), ROOT),
            "rows": {"total": n, "train": ntr, "test": n - ntr,
                     "train_fraud": int(ytr.sum()), "test_fraud": int(yte.sum())},
            "split": {"by": "event time", "train_share": TRAIN_SHARE,
                      "train_until_ts": int(ts[ntr - 1]), "test_from_ts": int(ts[ntr])},
        }
        feat_ref = feature_reference(features, Xtr)

        def manifest(fmt, objective, hints, how, m, scores_te, model_info, parity_err):
            return {
                "name": "fraud",
                "version": args.version,
                "format": fmt,
                "objective": objective,
                "features": features,
                "threshold_hints": hints,
                # (rtscore refuses unknown top-level manifest keys: the rule goes under metrics)
                "metrics": {
                    "threshold_rule": {
                        name: (f"lowest cut-off among 0.10, 0.15, ..., 0.95, 0.99 with test-set "
                               f"precision >= {HINT_PRECISION[name]}"
                               if how[name] == "precision"
                               else f"no cut-off reached precision {HINT_PRECISION[name]}: "
                                    f"the pipeline's default {HINT_DEFAULT[name]}")
                        for name in ("review", "block")},
                    "test_rows": n - ntr, "test_fraud": int(yte.sum()),
                    "model": m,
                    "fallback": metrics_for(yte, fb_te, hints),
                    "fallback_at_rule_cutoffs": results["fallback rules"][0],
                    "fallback_score": fallback_text,
                    "parity_max_rel_error": float(f"{parity_err:.3g}"),
                },
                "trained_at": trained_at.isoformat().replace("+00:00", "Z"),
                "training": {**training, "model": model_info},
                "reference": {
                    "features": feat_ref,
                    "score": {"from": "test rows (held out)", **score_reference(scores_te)},
                },
            }

        xgb_info = {"library": f"xgboost {xgb.__version__}", "trees": args.trees,
                    "params": {k: v for k, v in params.items() if k != "nthread"}}
        lr_info = {"library": f"scikit-learn {sklearn.__version__}",
                   "estimator": "SimpleImputer(mean) + StandardScaler + "
                                "LogisticRegression(C=1.0)",
                   "exporter": "train/export_sklearn.py"}
        m_xgb = manifest("xgboost-json", "binary:logistic", hints_xgb, how_xgb,
                         results["xgboost"][0], p_xgb_te, xgb_info, err_xgb)
        m_lr = manifest("linear-json", "logistic", hints_lr, how_lr,
                        results["logistic"][0], p_lr_te, lr_info, err_lr)
        write_bundle(os.path.join(args.out, "model"), xgb_path, m_xgb)
        write_bundle(os.path.join(args.out, "model-logistic"), lr_path, m_lr)
        # the pipeline must accept each bundle as its model (manifest keys, features, format)
        for b in ("model", "model-logistic"):
            with_model = os.path.join(work, f"pipeline-{b}.yaml")
            with open(cfg, encoding="utf-8") as f, open(with_model, "w", encoding="utf-8") as g:
                g.write(f.read() + f"\nmodel: {{path: {os.path.abspath(os.path.join(args.out, b))}}}\n")
            run([rtscore, "check", "-c", with_model])

        # summary
        print()
        print(f"test set: {n - ntr} rows, {int(yte.sum())} fraud "
              f"(last {100 - int(TRAIN_SHARE * 100)}% by event time)")
        print(f"{'scorer':<16} {'ROC AUC':>7}   {'review >=':>9} {'prec':>6} {'recall':>6}   "
              f"{'block >=':>8} {'prec':>6} {'recall':>6}")
        for name, (m, h) in results.items():
            def cell(k):
                p = m[k]["precision"]
                return (f"{h[k]:>9.2f} {('  n/a' if p is None else f'{p:6.3f}'):>6} "
                        f"{m[k]['recall']:6.3f}")
            print(f"{name:<16} {m['roc_auc']:7.4f}   {cell('review')}   {cell('block')[1:]}")
        print()
        print(f"bundles: {os.path.join(args.out, 'model')} "
              f"({os.path.getsize(os.path.join(args.out, 'model', 'model.json')) // 1024} KiB), "
              f"{os.path.join(args.out, 'model-logistic')}; parity max rel. error "
              f"xgboost {err_xgb:.2g}, logistic {err_lr:.2g}; {time.time() - t0:.1f} s")
        a_model, a_rules = results["xgboost"][0]["roc_auc"], results["fallback rules"][0]["roc_auc"]
        if a_model < a_rules + 0.05:
            print(f"WARNING: the model (AUC {a_model}) does not clearly beat the fallback rules "
                  f"(AUC {a_rules})")
            return 3
        return 0
    finally:
        if args.keep:
            log(f"work directory kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    try:
        sys.exit(main())
    except Fail as e:
        print(f"train_fraud: FAILED: {e}", file=sys.stderr)
        sys.exit(1)
