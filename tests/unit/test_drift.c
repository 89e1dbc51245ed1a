/*
 * test_drift.c - unit tests of the bundle's reference histograms
 * (model/bundle.c) and of model/drift: the shipped fraud bundle's reference
 * parses as train/README.md describes it; malformed references are refused
 * with their key path; a bundle without one has no drift; live traffic drawn
 * exactly like the reference gives PSI 0; known shifts give the PSI computed
 * by hand (epsilon floor on empty bins included); missing values and missing
 * scores are counted in their bins; bins follow the cut-point rule at the
 * edges; the rolling window forgets old sub-windows; counts merge over
 * workers; counting never allocates; the warning helper; and a reader
 * computing PSI while a worker counts and rotates (run it under TSan too).
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>

#include "model/bundle.h"
#include "model/drift.h"
#include "test.h"
#include "tmp_bundle.h"
#include "wrap_alloc.h"

#define SEC INT64_C(1000000)

static const char *ref_yaml = "reference:\n"
                              "  features:\n"
                              "    a: {missing: 0.1, edges: [1, 2, 3], shares: [0.2, 0.3, 0.2, 0.2],\n"
                              "        min: 0, max: 4}\n"
                              "    b: {missing: 0, edges: [], shares: [1.0]}\n"
                              "  score:\n"
                              "    from: test rows\n"
                              "    edges: [0, 0.5, 1]\n"
                              "    shares: [0.75, 0.25]\n";

static char tmp[64];

/* Load a bundle in a fresh folder with @extra in its manifest. */
static struct rts_bundle *bundle_with(const char *extra, struct rts_errbuf *eb)
{
    char dir[128];
    static int n;

    snprintf(dir, sizeof(dir), "%s/b%d", tmp, n++);
    if (tmp_bundle_write(dir, "t", 1, extra) != 0) {
        return NULL;
    }
    return rts_bundle_load(dir, eb);
}

TEST(fraud_reference)
{
    char dir[512];
    struct rts_errbuf eb = {0};
    struct rts_bundle *b;
    const struct rts_bundle_hist *h;
    double sum;
    size_t i, j;

    snprintf(dir, sizeof(dir), "%s/examples/fraud/model", RTS_SOURCE_DIR);
    b = rts_bundle_load(dir, &eb);
    CHECK(b != NULL);
    if (!b) {
        fprintf(stderr, "%s\n", eb.msg);
        return;
    }
    CHECK_STR(b->dir, dir);
    CHECK(b->reference != NULL);
    CHECK_INT(b->nfeatures, 11);
    for (i = 0; i < b->nfeatures; i++) {
        h = &b->reference->features[i];
        CHECK(h->shares != NULL);
        sum = h->missing;
        for (j = 0; j <= h->nedges; j++) {
            sum += h->shares[j];
        }
        CHECK_NEAR(sum, 1, 1e-3);
    }
    h = &b->reference->features[0]; /* amount_log: deciles (values of the shipped fraud@2 manifest) */
    CHECK_STR(b->features[0], "amount_log");
    CHECK_INT(h->nedges, 9);
    CHECK_NEAR(h->edges[0], 2.449279546737671, 0);
    CHECK_NEAR(h->shares[9], 0.10001, 0);
    CHECK_NEAR(h->min, 0.40546509623527527, 0);
    CHECK_NEAR(h->max, 9.082037925720215, 0);
    h = &b->reference->features[1]; /* hour: constant in training */
    CHECK_INT(h->nedges, 0);
    CHECK_NEAR(h->shares[0], 1.0, 0);
    h = &b->reference->features[4]; /* amount_mean_30d: missing for first events */
    CHECK_NEAR(h->missing, 0.118457, 0);
    /* the score: 21 boundaries 0, 0.05, ..., 1 are 19 cut points, 20 bins */
    h = &b->reference->score;
    CHECK_INT(h->nedges, 19);
    CHECK_NEAR(h->edges[0], 0.05, 0);
    CHECK_NEAR(h->edges[18], 0.95, 0);
    CHECK_NEAR(h->shares[0], 0.979161, 0);
    CHECK_NEAR(h->missing, 0, 0);
    CHECK(isnan(h->min));
    rts_bundle_free(b);
}

TEST(bad_references)
{
    static const struct {
        const char *yaml, *want;
    } cases[] = {
        {"reference: {features: {a: {edges: [1, 2], shares: [0.5, 0.5]}}}\n",
         "reference.features.a.shares: 2 shares for 2 edges"},
        {"reference: {features: {a: {edges: [2, 1], shares: [0.5, 0.25, 0.25]}}}\n",
         "reference.features.a.edges: edges must ascend strictly"},
        {"reference: {features: {a: {edges: [1], shares: [0.5, 0.4]}}}\n",
         "add up to 0.900000, not 1"},
        {"reference: {features: {a: {edges: [1], shares: [1.5, -0.5]}}}\n", "is not in [0, 1]"},
        {"reference: {features: {zz: {edges: [], shares: [1]}}}\n",
         "reference.features.zz: not one of the model's features"},
        {"reference: {features: {a: {edges: [], shares: [1], colour: red}}}\n", "colour"},
        {"reference: {scores: {}}\n", "unknown key 'scores'"},
        {"reference: {features: {a: {edges: [x], shares: [1, 0]}}}\n",
         "reference.features.a.edges[0]"},
        {"reference: {score: {edges: [0, 1], shares: [1], missing: 2}}\n", "missing"},
        {"reference: [1, 2]\n", "reference: expected a map"},
    };
    struct rts_errbuf eb;
    struct rts_bundle *b;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        memset(&eb, 0, sizeof(eb));
        b = bundle_with(cases[i].yaml, &eb);
        CHECK(b == NULL);
        if (!strstr(eb.msg, cases[i].want)) {
            fprintf(stderr, "case %zu: got '%s', want '%s'\n", i, eb.msg, cases[i].want);
            CHECK(0);
        }
        rts_bundle_free(b);
    }
    /* null and partial references are fine */
    b = bundle_with("reference:\n", &eb);
    CHECK(b != NULL && b->reference == NULL);
    rts_bundle_free(b);
    b = bundle_with("reference: {score: {edges: [0, 1], shares: [1]}}\n", &eb);
    CHECK(b != NULL && b->reference && !b->reference->features[0].shares &&
          b->reference->score.nedges == 0);
    rts_bundle_free(b);
}

TEST(no_reference)
{
    struct rts_errbuf eb = {0};
    struct rts_bundle *b = bundle_with(NULL, &eb);
    struct rts_drift *d;
    struct rts_drift_counts *w;
    struct rts_drift_window win;
    float row[3] = {1, 2, 3};
    double psi[3], ps = 0;

    CHECK(b != NULL && b->reference == NULL);
    d = rts_drift_new(b, NULL, &eb);
    rts_bundle_free(b); /* the drift keeps its own copy */
    CHECK(d != NULL);
    CHECK_INT(rts_drift_active(d), 0);
    CHECK_INT(rts_drift_nfeatures(d), 3);
    CHECK_STR(rts_drift_feature_name(d, 2), "c");
    w = rts_drift_worker_new(d, &eb);
    rts_drift_tick(w, 0);
    rts_drift_add(w, row, 0.5f);
    CHECK_INT(rts_drift_psi(d, &w, 1, 0, psi, &ps, &win), RTS_ERR_OK);
    CHECK(isnan(psi[0]) && isnan(psi[2]) && isnan(ps));
    CHECK_INT(win.rows, 1);
    rts_drift_worker_free(w);
    rts_drift_free(d);

    /* no bundle at all: inactive too */
    d = rts_drift_new(NULL, NULL, &eb);
    CHECK(d != NULL && !rts_drift_active(d) && rts_drift_nfeatures(d) == 0);
    rts_drift_free(d);

    /* options */
    b = bundle_with(ref_yaml, &eb);
    {
        struct rts_drift_opts o = {.sub_window_us = 10};
        CHECK(rts_drift_new(b, &o, &eb) == NULL);
        CHECK(strstr(eb.msg, "sub_window") != NULL);
        o.sub_window_us = SEC;
        o.sub_windows = RTS_DRIFT_MAX_SUB_WINDOWS + 1;
        CHECK(rts_drift_new(b, &o, &eb) == NULL);
        o.sub_windows = 2;
        o.epsilon = 0.5;
        CHECK(rts_drift_new(b, &o, &eb) == NULL);
        CHECK(strstr(eb.msg, "epsilon") != NULL);
    }
    rts_bundle_free(b);
}

/* @n rows into @w: a spread as given (counts for bins 0..3 and missing of a;
 * b always 7; c always 0), scores @lo times 0.2 and @hi times 0.7. */
static void add_rows(struct rts_drift_counts *w, const int a_counts[5], int lo, int hi)
{
    static const float a_val[4] = {0.5f, 1.5f, 2.5f, 3.5f};
    float row[3] = {0, 7, 0};
    int bin, i, k = 0;

    for (bin = 0; bin < 5; bin++) {
        for (i = 0; i < a_counts[bin]; i++) {
            row[0] = bin < 4 ? a_val[bin] : NAN;
            rts_drift_add(w, row, k < lo ? 0.2f : 0.7f);
            k++;
        }
    }
    while (k < lo + hi) {
        row[0] = 0.5f;
        rts_drift_add(w, row, k < lo ? 0.2f : 0.7f);
        k++;
    }
}

struct fixture {
    struct rts_bundle *b;
    struct rts_drift *d;
    struct rts_drift_counts *w[2];
};

static int fixture_new(struct fixture *f, const struct rts_drift_opts *o)
{
    struct rts_errbuf eb = {0};

    memset(f, 0, sizeof(*f));
    f->b = bundle_with(ref_yaml, &eb);
    if (!f->b) {
        fprintf(stderr, "%s\n", eb.msg);
        return -1;
    }
    f->d = rts_drift_new(f->b, o, &eb);
    f->w[0] = f->d ? rts_drift_worker_new(f->d, &eb) : NULL;
    f->w[1] = f->d ? rts_drift_worker_new(f->d, &eb) : NULL;
    return f->w[1] ? 0 : -1;
}

static void fixture_free(struct fixture *f)
{
    rts_drift_worker_free(f->w[0]);
    rts_drift_worker_free(f->w[1]);
    rts_drift_free(f->d);
    rts_bundle_free(f->b);
}

TEST(identical_is_zero)
{
    static const int same[5] = {20, 30, 20, 20, 10}; /* the reference, x100 */
    struct fixture f;
    struct rts_drift_window win;
    double psi[3], ps;

    if (fixture_new(&f, NULL)) {
        CHECK(0);
        return;
    }
    CHECK_INT(rts_drift_active(f.d), 1);
    CHECK_INT(rts_drift_has_feature(f.d, 0), 1);
    CHECK_INT(rts_drift_has_feature(f.d, 2), 0);
    CHECK_INT(rts_drift_has_score(f.d), 1);
    rts_drift_tick(f.w[0], 10 * SEC);
    add_rows(f.w[0], same, 75, 25);
    CHECK_INT(rts_drift_psi(f.d, f.w, 1, 10 * SEC, psi, &ps, &win), RTS_ERR_OK);
    CHECK_NEAR(psi[0], 0, 1e-12);
    CHECK_NEAR(psi[1], 0, 1e-12);
    CHECK(isnan(psi[2])); /* c has no reference */
    CHECK_NEAR(ps, 0, 1e-12);
    CHECK_INT(win.rows, 100);
    CHECK_INT(win.score_rows, 100);
    /* the default window: 60 sub-windows of 60 s */
    CHECK_INT(win.to_us, 60 * SEC);
    CHECK_INT(win.from_us, 0);
    fixture_free(&f);
}

TEST(known_shift)
{
    static const int shifted[5] = {10, 30, 30, 20, 10}; /* 0.1 of bin 0 moved to bin 2 */
    static const int all_low[5] = {100, 0, 0, 0, 0};
    static const int all_missing[5] = {0, 0, 0, 0, 100};
    struct fixture f;
    struct rts_drift_window win;
    double psi[3], ps, want;

    if (fixture_new(&f, NULL)) {
        CHECK(0);
        return;
    }
    rts_drift_tick(f.w[0], 0);
    add_rows(f.w[0], shifted, 50, 50);
    CHECK_INT(rts_drift_psi(f.d, f.w, 1, 0, psi, &ps, &win), RTS_ERR_OK);
    /* (0.1 - 0.2) ln(0.1/0.2) + (0.3 - 0.2) ln(0.3/0.2) = 0.1 ln 2 + 0.1 ln 1.5 = 0.1 ln 3 */
    CHECK_NEAR(psi[0], 0.1 * log(3.0), 1e-12);
    CHECK_NEAR(psi[0], 0.10986122886681099, 1e-12);
    /* score: 0.5/0.5 against 0.75/0.25: -0.25 ln(2/3) + 0.25 ln 2 = 0.25 ln 3 */
    CHECK_NEAR(ps, 0.25 * log(3.0), 1e-12);
    CHECK_INT(rts_drift_level(psi[0]), 1);
    CHECK_INT(rts_drift_level(ps), 2);
    rts_drift_worker_free(f.w[0]);
    f.w[0] = rts_drift_worker_new(f.d, NULL);

    /* everything in bin 0: four empty live bins floored at epsilon = 1e-4 */
    rts_drift_tick(f.w[0], 0);
    add_rows(f.w[0], all_low, 100, 0);
    CHECK_INT(rts_drift_psi(f.d, f.w, 1, 0, psi, &ps, &win), RTS_ERR_OK);
    want = 0.8 * log(5.0) + 0.2999 * log(3000.0) + 2 * 0.1999 * log(2000.0) + 0.0999 * log(1000.0);
    CHECK_NEAR(psi[0], want, 1e-9);
    CHECK_NEAR(psi[0], 7.417585519180831, 1e-9);
    /* scores all low: live 1/0 against 0.75/0.25 */
    CHECK_NEAR(ps, 0.25 * log(1 / 0.75) + 0.2499 * log(2500.0), 1e-9);
    rts_drift_worker_free(f.w[0]);
    f.w[0] = rts_drift_worker_new(f.d, NULL);

    /* all missing: the missing bin against a reference share of 0.1 */
    rts_drift_tick(f.w[0], 0);
    add_rows(f.w[0], all_missing, 100, 0);
    CHECK_INT(rts_drift_psi(f.d, f.w, 1, 0, psi, &ps, &win), RTS_ERR_OK);
    want = 0.1999 * log(2000.0) + 0.2999 * log(3000.0) + 2 * 0.1999 * log(2000.0) +
           0.9 * log(10.0);
    CHECK_NEAR(psi[0], want, 1e-9);
    CHECK_NEAR(psi[1], 0, 1e-12); /* b is never missing */
    fixture_free(&f);
}

/* Bins by the cut-point rule: a value equal to an edge goes above it. */
TEST(bin_edges)
{
    static const float vals[] = {-INFINITY, 0.999f, 1.0f, 1.5f, 2.0f, 3.0f, 1e30f, INFINITY};
    static const int want_bin[] = {0, 0, 1, 1, 2, 3, 3, 3};
    struct fixture f;
    double psi[3], ps, live[5], ref[5] = {0.2, 0.3, 0.2, 0.2, 0.1};

    for (size_t i = 0; i < sizeof(vals) / sizeof(vals[0]); i++) {
        float row[3] = {vals[i], 0, 0};

        if (fixture_new(&f, NULL)) {
            CHECK(0);
            return;
        }
        rts_drift_tick(f.w[0], 0);
        rts_drift_add(f.w[0], row, NAN); /* a missing score */
        CHECK_INT(rts_drift_psi(f.d, f.w, 1, 0, psi, &ps, NULL), RTS_ERR_OK);
        memset(live, 0, sizeof(live));
        live[want_bin[i]] = 1;
        CHECK_NEAR(psi[0], rts_drift_psi_shares(live, ref, 5, 1e-4), 1e-12);
        /* the score's missing bin (reference share 0) */
        {
            double sl[3] = {0, 0, 1}, sr[3] = {0.75, 0.25, 0};
            CHECK_NEAR(ps, rts_drift_psi_shares(sl, sr, 3, 1e-4), 1e-12);
        }
        fixture_free(&f);
    }
    /* score boundaries: below 0 counts in the first bin, 1 and above in the last */
    {
        float row[3] = {0.5f, 0, 0};
        double sl[3] = {0.5, 0.5, 0}, sr[3] = {0.75, 0.25, 0};

        if (fixture_new(&f, NULL)) {
            CHECK(0);
            return;
        }
        rts_drift_tick(f.w[0], 0);
        rts_drift_add(f.w[0], row, -0.5f);
        rts_drift_add(f.w[0], row, 1.0f);
        rts_drift_add(f.w[0], row, 0.49f);
        rts_drift_add(f.w[0], row, 0.5f);
        CHECK_INT(rts_drift_psi(f.d, f.w, 1, 0, psi, &ps, NULL), RTS_ERR_OK);
        CHECK_NEAR(ps, rts_drift_psi_shares(sl, sr, 3, 1e-4), 1e-12);
        fixture_free(&f);
    }
}

/* Sub-windows of 1 s, 4 of them: PSI at t covers [floor(t) - 3 s, floor(t) + 1 s). */
TEST(rolling_window)
{
    static const int same[5] = {20, 30, 20, 20, 10};
    static const int all_low[5] = {100, 0, 0, 0, 0};
    struct rts_drift_opts o = {.sub_window_us = SEC, .sub_windows = 4};
    struct rts_drift_window win;
    struct fixture f;
    double psi[3], ps;

    if (fixture_new(&f, &o)) {
        CHECK(0);
        return;
    }
    /* rows before the first tick are not counted */
    add_rows(f.w[0], all_low, 100, 0);
    rts_drift_tick(f.w[0], 100 * SEC + 1);
    add_rows(f.w[0], all_low, 100, 0); /* period 100: shifted */
    rts_drift_tick(f.w[0], 101 * SEC);
    add_rows(f.w[0], same, 75, 25); /* period 101: like the reference */
    rts_drift_tick(f.w[0], 100 * SEC); /* back in time: ignored */
    add_rows(f.w[0], same, 75, 25);
    CHECK_INT(rts_drift_psi(f.d, f.w, 1, 103 * SEC + 999999, psi, &ps, &win), RTS_ERR_OK);
    CHECK_INT(win.rows, 300);
    CHECK_INT(win.from_us, 100 * SEC);
    CHECK_INT(win.to_us, 104 * SEC);
    CHECK(psi[0] > 0.2 && psi[0] < 1); /* a third shifted */
    /* at 104 s period 100 has left the window */
    CHECK_INT(rts_drift_psi(f.d, f.w, 1, 104 * SEC, psi, &ps, &win), RTS_ERR_OK);
    CHECK_INT(win.rows, 200);
    CHECK_NEAR(psi[0], 0, 1e-12);
    CHECK_NEAR(ps, 0, 1e-12);
    /* reusing the slot of period 101 for 105 empties it */
    rts_drift_tick(f.w[0], 105 * SEC);
    CHECK_INT(rts_drift_psi(f.d, f.w, 1, 105 * SEC, psi, &ps, &win), RTS_ERR_OK);
    CHECK_INT(win.rows, 0);
    CHECK(isnan(psi[0]) && isnan(ps));
    /* rows without a score count for the inputs only */
    rts_drift_add_row(f.w[0], (const float[3]){0.5f, 7, 0});
    CHECK_INT(rts_drift_psi(f.d, f.w, 1, 105 * SEC, psi, &ps, &win), RTS_ERR_OK);
    CHECK_INT(win.rows, 1);
    CHECK_INT(win.score_rows, 0);
    CHECK(!isnan(psi[0]) && isnan(ps));
    fixture_free(&f);
}

TEST(merge_workers)
{
    static const int part1[5] = {10, 30, 0, 20, 10};
    static const int part2[5] = {0, 0, 30, 0, 0};
    struct fixture f;
    struct rts_drift_counts *ws[3];
    struct rts_drift_window win;
    double psi[3], ps;

    if (fixture_new(&f, NULL)) {
        CHECK(0);
        return;
    }
    rts_drift_tick(f.w[0], 0);
    rts_drift_tick(f.w[1], 0);
    add_rows(f.w[0], part1, 50, 20);
    add_rows(f.w[1], part2, 0, 30);
    ws[0] = f.w[0];
    ws[1] = NULL; /* skipped */
    ws[2] = f.w[1];
    CHECK_INT(rts_drift_psi(f.d, ws, 3, 0, psi, &ps, &win), RTS_ERR_OK);
    CHECK_INT(win.rows, 100);
    CHECK_NEAR(psi[0], 0.1 * log(3.0), 1e-12); /* together: the known shift */
    CHECK_NEAR(ps, 0.25 * log(3.0), 1e-12);
    fixture_free(&f);
}

TEST(no_alloc)
{
    struct fixture f;
    float row[3] = {0, 7, 0};
    long before, i;

    if (fixture_new(&f, &(struct rts_drift_opts){.sub_window_us = SEC, .sub_windows = 8})) {
        CHECK(0);
        return;
    }
    before = atomic_load(&wrap_allocs);
    for (i = 0; i < 100000; i++) {
        rts_drift_tick(f.w[0], i * 1000);
        row[0] = (float)(i % 50) / 10.0f;
        row[2] = i % 7 ? 1.0f : NAN;
        rts_drift_add(f.w[0], row, (float)(i % 100) / 100.0f);
        rts_drift_add_row(f.w[0], row);
    }
    CHECK_INT(atomic_load(&wrap_allocs) - before, 0);
    fixture_free(&f);
}

TEST(warnings)
{
    struct fixture f;
    struct rts_drift_window win = {.rows = 1000, .score_rows = 1000};
    double psi[3] = {0.41, 0.05, NAN};
    char msg[128];

    if (fixture_new(&f, NULL)) {
        CHECK(0);
        return;
    }
    CHECK_INT(rts_drift_level(NAN), 0);
    CHECK_INT(rts_drift_level(0.0999), 0);
    CHECK_INT(rts_drift_level(0.1), 1);
    CHECK_INT(rts_drift_level(0.25), 2);
    CHECK_INT(rts_drift_warnings(f.d, psi, 0.27, &win, 0.25, 100, msg, sizeof(msg)), 2);
    CHECK_STR(msg, "drift over 0.25 in 2 of 3: a 0.41, score 0.27");
    CHECK_INT(rts_drift_warnings(f.d, psi, 0.01, &win, 0.25, 100, msg, sizeof(msg)), 1);
    CHECK_STR(msg, "drift over 0.25 in 1 of 3: a 0.41");
    CHECK_INT(rts_drift_warnings(f.d, psi, 0.01, &win, 0.5, 100, msg, sizeof(msg)), 0);
    CHECK_STR(msg, "");
    /* too few rows to tell */
    win.rows = 99;
    CHECK_INT(rts_drift_warnings(f.d, psi, 0.27, &win, 0.25, 100, msg, sizeof(msg)), 0);
    CHECK_STR(msg, "");
    /* truncated, still terminated */
    win.rows = 1000;
    CHECK_INT(rts_drift_warnings(f.d, psi, 0.27, &win, 0.25, 100, msg, 20), 2);
    CHECK_INT(strlen(msg), 19);
    fixture_free(&f);
}

struct race {
    struct fixture f;
    _Atomic int64_t clock;
    _Atomic int stop;
    _Atomic long added;
};

static void *race_worker(void *p)
{
    struct race *r = p;
    float row[3] = {0, 7, 0};
    long i;

    for (i = 0; i < 300000; i++) {
        int64_t now = atomic_fetch_add(&r->clock, 37);

        if (i % 16 == 0) {
            rts_drift_tick(r->f.w[0], now);
        }
        row[0] = (float)(i % 40) / 10.0f;
        /* counted before it is added: a reader that sees the row sees this */
        atomic_fetch_add_explicit(&r->added, 1, memory_order_relaxed);
        rts_drift_add(r->f.w[0], row, (float)(i % 10) / 10.0f);
    }
    atomic_store(&r->stop, 1);
    return NULL;
}

TEST(psi_while_counting)
{
    struct rts_drift_opts o = {.sub_window_us = 1000, .sub_windows = 16};
    struct rts_drift_window win;
    struct race *r = calloc(1, sizeof(*r));
    pthread_t t;
    double psi[3], ps;
    long reads = 0, bad = 0;

    if (!r || fixture_new(&r->f, &o)) {
        CHECK(0);
        free(r);
        return;
    }
    atomic_init(&r->clock, 0);
    atomic_init(&r->stop, 0);
    atomic_init(&r->added, 0);
    CHECK_INT(pthread_create(&t, NULL, race_worker, r), 0);
    while (!atomic_load(&r->stop)) {
        if (rts_drift_psi(r->f.d, r->f.w, 1, atomic_load(&r->clock), psi, &ps, &win)) {
            bad++;
        }
        /* never more rows than the window can have seen, never a broken
         * figure (the counters are read one by one while they move, so
         * rows and score_rows need not agree here) */
        if (win.rows > (uint64_t)atomic_load(&r->added) || (win.rows && !(psi[0] >= 0)) ||
            (win.score_rows && !(ps >= 0))) {
            fprintf(stderr, "rows %llu score_rows %llu psi %g %g\n",
                    (unsigned long long)win.rows, (unsigned long long)win.score_rows, psi[0], ps);
            bad++;
        }
        reads++;
    }
    pthread_join(t, NULL);
    CHECK_INT(bad, 0);
    /* at rest they do */
    CHECK_INT(rts_drift_psi(r->f.d, r->f.w, 1, atomic_load(&r->clock), psi, &ps, &win),
              RTS_ERR_OK);
    CHECK(win.rows > 0);
    CHECK_INT(win.score_rows, win.rows);
    CHECK(reads > 0);
    fixture_free(&r->f);
    free(r);
}

int main(void)
{
    if (!tmp_dir(tmp, "drift")) {
        perror("mkdtemp");
        return 1;
    }
    RUN(fraud_reference);
    RUN(bad_references);
    RUN(no_reference);
    RUN(identical_is_zero);
    RUN(known_shift);
    RUN(bin_edges);
    RUN(rolling_window);
    RUN(merge_workers);
    RUN(no_alloc);
    RUN(warnings);
    RUN(psi_while_counting);
    tmp_rm(tmp);
    return TEST_EXIT();
}
