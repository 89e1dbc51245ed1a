/*
 * bench_model.c - rtscore's XGBoost evaluator (rts_model_predict) against
 * XGBoost's own C API (XGBoosterPredictFromDense with a proxy DMatrix,
 * nthread=1) on the same model and rows, side by side in one run: single-row
 * latency (median ns per call over many calls) and per-row cost in batches
 * of 64 (median over many batches), with the ratios. It first checks that the
 * two agree on every benchmark row (to 1e-6). Each engine is timed in its own
 * loop (warm caches); a last line alternates the two call by call, so each
 * finds its caches partly evicted by the other.
 *
 * Usage: bench_model [MODEL.json]
 * Without a path it trains the reference model (binary:logistic, 300 trees,
 * depth 6, 32 features, ~10% missing) by running /usr/bin/python3 into
 * /tmp/rts_bench_model.json. Build with -O2 and link with -lxgboost; not a test.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <xgboost/c_api.h>

#include "core/clock.h"
#include "model/model.h"

#include "bench.h"

#define ROWS 4096
#define BATCH 64
#define SINGLE_CALLS 20000
#define BATCH_CALLS 2000
#define DEFAULT_MODEL "/tmp/rts_bench_model.json"

static const char train_py[] =
    "import numpy as np, xgboost as xgb\n"
    "r = np.random.default_rng(1)\n"
    "x = r.normal(size=(20000, 32)).astype(np.float32)\n"
    "y = (x[:, :8].sum(1) + x[:, 8] * x[:, 9] + r.normal(size=20000) > 0).astype(np.float32)\n"
    "x[r.uniform(size=x.shape) < 0.1] = np.nan\n"
    "b = xgb.train({'objective': 'binary:logistic', 'max_depth': 6, 'eta': 0.05,\n"
    "               'tree_method': 'hist', 'nthread': 2}, xgb.DMatrix(x, y), 300)\n"
    "b.save_model('" DEFAULT_MODEL "')\n";

static uint64_t rng_state = 0x9E3779B97F4A7C15u;

static double rng_unit(void)
{
    uint64_t x = rng_state;

    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    rng_state = x;
    return (double)(x >> 11) / 9007199254740992.0;
}

#define XGB_CHECK(call)                                                                            \
    do {                                                                                           \
        if ((call) != 0) {                                                                         \
            fprintf(stderr, "bench_model: %s: %s\n", #call, XGBGetLastError());                    \
            exit(1);                                                                               \
        }                                                                                          \
    } while (0)

static const char xgb_config[] = "{\"type\": 0, \"training\": false, \"iteration_begin\": 0, "
                                 "\"iteration_end\": 0, \"strict_shape\": false, "
                                 "\"cache_id\": 0, \"missing\": NaN}";

/* The __array_interface__ of @n rows at @x. */
static void array_interface(char *buf, size_t size, const float *x, size_t n, size_t nx)
{
    snprintf(buf, size,
             "{\"data\": [%llu, true], \"shape\": [%zu, %zu], \"typestr\": \"<f4\", "
             "\"version\": 3}",
             (unsigned long long)(uintptr_t)x, n, nx);
}

static const float *xgb_predict(BoosterHandle h, DMatrixHandle proxy, const char *iface)
{
    const bst_ulong *shape;
    bst_ulong dim;
    const float *out;

    XGB_CHECK(XGBoosterPredictFromDense(h, iface, xgb_config, proxy, &shape, &dim, &out));
    return out;
}

int main(int argc, char **argv)
{
    const char *path = argc > 1 ? argv[1] : DEFAULT_MODEL;
    struct rts_errbuf eb = {0};
    struct rts_model *m;
    BoosterHandle h;
    DMatrixHandle proxy;
    size_t nx, i, j, c;
    float *x, y[BATCH];
    char(*iface1)[160], ifaceb[ROWS / BATCH][160];
    double *t_rts, *t_xgb, maxdiff = 0.0, rs, xs, rb, xb, rc, xc;
    const float *out;
    uint64_t t0;
    FILE *f;

    if (argc < 2) {
        f = fopen("/tmp/rts_bench_train.py", "w");
        if (!f || fputs(train_py, f) < 0 || fclose(f) != 0) {
            fprintf(stderr, "bench_model: cannot write /tmp/rts_bench_train.py\n");
            return 1;
        }
        fprintf(stderr, "training the reference model into %s ...\n", path);
        if (system("/usr/bin/python3 /tmp/rts_bench_train.py") != 0) {
            fprintf(stderr, "bench_model: training failed (python3-xgboost installed?)\n");
            return 1;
        }
    }
    m = rts_model_load(path, &eb);
    if (!m) {
        fprintf(stderr, "bench_model: %s\n", eb.msg);
        return 1;
    }
    if (rts_model_noutputs(m) != 1) {
        fprintf(stderr, "bench_model: the benchmark wants a single-output model\n");
        return 1;
    }
    XGB_CHECK(XGBoosterCreate(NULL, 0, &h));
    XGB_CHECK(XGBoosterLoadModel(h, path));
    XGB_CHECK(XGBoosterSetParam(h, "nthread", "1"));
    XGB_CHECK(XGProxyDMatrixCreate(&proxy));

    nx = rts_model_nfeatures(m);
    x = malloc(ROWS * nx * sizeof(*x));
    iface1 = malloc(ROWS * sizeof(*iface1));
    t_rts = malloc(SINGLE_CALLS * sizeof(*t_rts));
    t_xgb = malloc(SINGLE_CALLS * sizeof(*t_xgb));
    if (!x || !iface1 || !t_rts || !t_xgb) {
        return 1;
    }
    for (i = 0; i < ROWS * nx; i++) {
        double u = rng_unit();
        x[i] = u < 0.1 ? NAN : (float)((rng_unit() - 0.5) * 6.0);
    }
    for (i = 0; i < ROWS; i++) {
        array_interface(iface1[i], sizeof(iface1[i]), x + i * nx, 1, nx);
    }
    for (i = 0; i < ROWS / BATCH; i++) {
        array_interface(ifaceb[i], sizeof(ifaceb[i]), x + i * BATCH * nx, BATCH, nx);
    }

    /* Agreement on every row, through both paths of each side. */
    for (i = 0; i < ROWS / BATCH; i++) {
        out = xgb_predict(h, proxy, ifaceb[i]);
        rts_model_predict(m, x + i * BATCH * nx, BATCH, nx, y);
        for (j = 0; j < BATCH; j++) {
            float y1;
            double d = fabs((double)out[j] - y[j]);
            rts_model_predict(m, x + (i * BATCH + j) * nx, 1, nx, &y1);
            d = fmax(d, fabs((double)out[j] - y1));
            maxdiff = fmax(maxdiff, d / fmax(1.0, fabs(out[j])));
        }
    }

    /* Each side in its own loop (its working set warm, as in a scoring
     * worker), after a warm-up pass. */
    for (c = 0; c < ROWS; c++) {
        rts_model_predict(m, x + c * nx, 1, nx, y);
        xgb_predict(h, proxy, iface1[c]);
    }
    for (c = 0; c < SINGLE_CALLS; c++) {
        i = c % ROWS;
        t0 = rts_now_ns();
        rts_model_predict(m, x + i * nx, 1, nx, y);
        t_rts[c] = (double)(rts_now_ns() - t0);
    }
    for (c = 0; c < SINGLE_CALLS; c++) {
        i = c % ROWS;
        t0 = rts_now_ns();
        xgb_predict(h, proxy, iface1[i]);
        t_xgb[c] = (double)(rts_now_ns() - t0);
    }
    rs = bench_median(t_rts, SINGLE_CALLS);
    xs = bench_median(t_xgb, SINGLE_CALLS);

    for (c = 0; c < BATCH_CALLS; c++) {
        i = c % (ROWS / BATCH);
        t0 = rts_now_ns();
        rts_model_predict(m, x + i * BATCH * nx, BATCH, nx, y);
        t_rts[c] = (double)(rts_now_ns() - t0) / BATCH;
    }
    for (c = 0; c < BATCH_CALLS; c++) {
        i = c % (ROWS / BATCH);
        t0 = rts_now_ns();
        xgb_predict(h, proxy, ifaceb[i]);
        t_xgb[c] = (double)(rts_now_ns() - t0) / BATCH;
    }
    rb = bench_median(t_rts, BATCH_CALLS);
    xb = bench_median(t_xgb, BATCH_CALLS);

    /* Single rows again, alternating the two engines call by call: each
     * call finds its caches partly evicted by the other (a colder case). */
    for (c = 0; c < SINGLE_CALLS; c++) {
        i = c % ROWS;
        t0 = rts_now_ns();
        rts_model_predict(m, x + i * nx, 1, nx, y);
        t_rts[c] = (double)(rts_now_ns() - t0);
        t0 = rts_now_ns();
        xgb_predict(h, proxy, iface1[i]);
        t_xgb[c] = (double)(rts_now_ns() - t0);
    }
    rc = bench_median(t_rts, SINGLE_CALLS);
    xc = bench_median(t_xgb, SINGLE_CALLS);

    printf("model %s: %zu features, objective %s\n", path, nx, rts_model_objective(m));
    printf("agreement on %d rows: max relative difference %.3g%s\n", ROWS, maxdiff,
           maxdiff <= 1e-6 ? "" : "  ** MISMATCH **");
    printf("%-28s %12s %12s %8s\n", "", "rtscore", "xgboost", "ratio");
    printf("%-28s %9.0f ns %9.0f ns %7.1fx\n", "single row (median)", rs, xs, xs / rs);
    printf("%-28s %9.0f ns %9.0f ns %7.1fx\n", "batch of 64, per row (median)", rb, xb, xb / rb);
    printf("%-28s %9.0f ns %9.0f ns %7.1fx\n", "single row, alternating", rc, xc, xc / rc);

    XGDMatrixFree(proxy);
    XGBoosterFree(h);
    rts_model_unref(m);
    free(x);
    free(iface1);
    free(t_rts);
    free(t_xgb);
    return maxdiff <= 1e-6 ? 0 : 1;
}
