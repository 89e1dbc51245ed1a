/*
 * test_prom.c - unit tests of serve/prom: the exact text of families and
 * samples, escaping of label values and help, the name rules, sticky errors
 * that leave no half line behind, the bounds, and histogram counts checked
 * against rts_hist_quantile() and against the true values.
 *
 * `test_prom --write-exposition FILE` writes a representative /metrics
 * exposition instead (every family of DESIGN.md section 5, realistic labels
 * and histograms) for `promtool check metrics` (the CTest
 * integration.promtool_metrics runs both).
 */
#include <inttypes.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "serve/prom.h"
#include "test.h"

static uint64_t rng_state = 0x2545F4914F6CDD1Du;

static uint64_t rng(void)
{
    uint64_t x = rng_state;

    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    rng_state = x;
    return x;
}

/* A log-uniform latency between @lo and @hi ns. */
static uint64_t rng_latency(double lo, double hi)
{
    double u = (double)(rng() >> 11) / 9007199254740992.0;

    return (uint64_t)exp(log(lo) + u * (log(hi) - log(lo)));
}

/* The value of the sample line that starts with @series + ' ' in @text, or -1. */
static double value_of(const char *text, const char *series)
{
    size_t n = strlen(series);
    const char *p = text;

    while (p && *p) {
        if (strncmp(p, series, n) == 0 && p[n] == ' ') {
            return strtod(p + n + 1, NULL);
        }
        p = strchr(p, '\n');
        p = p ? p + 1 : NULL;
    }
    return -1;
}

TEST(counter_and_gauge_text)
{
    struct rts_buf b = {0};
    struct rts_prom p;
    struct rts_errbuf eb = {0};
    const struct rts_prom_label scored[] = {{"outcome", "scored"}};
    const struct rts_prom_label two[] = {{"topic", "transactions"}, {"partition", "3"}};

    rts_prom_init(&p, &b, 0);
    CHECK_INT(rts_prom_family(&p, "rtscore_events_total", RTS_PROM_COUNTER, "Events by outcome."),
              RTS_ERR_OK);
    CHECK_INT(rts_prom_sample_u64(&p, scored, 1, 42), RTS_ERR_OK);
    CHECK_INT(
        rts_prom_sample_u64(&p, (const struct rts_prom_label[]){{"outcome", "dlq"}}, 1, UINT64_MAX),
        RTS_ERR_OK);
    CHECK_INT(rts_prom_family(&p, "rtscore_consumer_lag", RTS_PROM_GAUGE, "Messages behind."),
              RTS_ERR_OK);
    CHECK_INT(rts_prom_sample(&p, two, 2, 17), RTS_ERR_OK);
    CHECK_INT(rts_prom_family(&p, "rtscore_drift_psi", RTS_PROM_GAUGE, "PSI."), RTS_ERR_OK);
    CHECK_INT(rts_prom_sample(&p, NULL, 0, 0.125), RTS_ERR_OK);
    CHECK_INT(rts_prom_sample(&p, NULL, 0, NAN), RTS_ERR_OK);
    CHECK_INT(rts_prom_sample(&p, NULL, 0, INFINITY), RTS_ERR_OK);
    CHECK_INT(rts_prom_sample(&p, NULL, 0, -INFINITY), RTS_ERR_OK);
    CHECK_INT(rts_prom_sample(&p, NULL, 0, -2.5), RTS_ERR_OK);
    CHECK_INT(rts_prom_finish(&p, &eb), RTS_ERR_OK);
    CHECK_STR(b.data, "# HELP rtscore_events_total Events by outcome.\n"
                      "# TYPE rtscore_events_total counter\n"
                      "rtscore_events_total{outcome=\"scored\"} 42\n"
                      "rtscore_events_total{outcome=\"dlq\"} 18446744073709551615\n"
                      "# HELP rtscore_consumer_lag Messages behind.\n"
                      "# TYPE rtscore_consumer_lag gauge\n"
                      "rtscore_consumer_lag{topic=\"transactions\",partition=\"3\"} 17\n"
                      "# HELP rtscore_drift_psi PSI.\n"
                      "# TYPE rtscore_drift_psi gauge\n"
                      "rtscore_drift_psi 0.125\n"
                      "rtscore_drift_psi NaN\n"
                      "rtscore_drift_psi +Inf\n"
                      "rtscore_drift_psi -Inf\n"
                      "rtscore_drift_psi -2.5\n");
    rts_buf_fini(&b);
}

TEST(appends_to_existing_buffer)
{
    struct rts_buf b = {0};
    struct rts_prom p;

    CHECK_INT(rts_buf_printf(&b, "# prologue\n"), RTS_ERR_OK);
    rts_prom_init(&p, &b, 0);
    CHECK_INT(rts_prom_family(&p, "a", RTS_PROM_GAUGE, "h"), RTS_ERR_OK);
    CHECK_INT(rts_prom_sample(&p, NULL, 0, 1), RTS_ERR_OK);
    CHECK_INT(rts_prom_family(&p, "a", RTS_PROM_GAUGE, "h"), RTS_ERR_INVAL); /* reused */
    CHECK_INT(rts_prom_finish(&p, NULL), RTS_ERR_INVAL);
    CHECK_STR(b.data, "# prologue\n# HELP a h\n# TYPE a gauge\na 1\n");
    rts_buf_fini(&b);
}

TEST(escaping)
{
    struct rts_buf b = {0};
    struct rts_prom p;
    const struct rts_prom_label l[] = {
        {"path", "C:\\dir\\\"x\"\nend"},
        {"utf8", "caf\xC3\xA9 \xE2\x82\xAC"}, /* valid: kept */
        {"bad", "a\xFF"
                "b\xC3"
                "c\xE2\x82"
                "d\xED\xA0\x80"}, /* invalid bytes: U+FFFD each */
        {"empty", ""},
    };

    rts_prom_init(&p, &b, 0);
    CHECK_INT(rts_prom_family(&p, "x_total", RTS_PROM_COUNTER,
                              "A \"quoted\" help\\text\nover two lines \xC3\xA9\xFF."),
              RTS_ERR_OK);
    CHECK_INT(rts_prom_sample(&p, l, 4, 1), RTS_ERR_OK);
    CHECK_INT(rts_prom_finish(&p, NULL), RTS_ERR_OK);
    CHECK_STR(b.data,
              "# HELP x_total A \"quoted\" help\\\\text\\nover two lines \xC3\xA9\xEF\xBF\xBD.\n"
              "# TYPE x_total counter\n"
              "x_total{path=\"C:\\\\dir\\\\\\\"x\\\"\\nend\",utf8=\"caf\xC3\xA9 \xE2\x82\xAC\","
              "bad=\"a\xEF\xBF\xBD"
              "b\xEF\xBF\xBD"
              "c\xEF\xBF\xBD\xEF\xBF\xBD"
              "d\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\",empty=\"\"} 1\n");
    rts_buf_fini(&b);
}

/* Every call after a failure fails the same way and writes nothing. */
static void expect_refused(const char *name, enum rts_prom_type type, const char *help,
                           const struct rts_prom_label *l, size_t nl, int line)
{
    struct rts_buf b = {0};
    struct rts_prom p;
    struct rts_errbuf eb = {0};
    enum rts_err rc;
    size_t len;

    rts_prom_init(&p, &b, 0);
    if (l) {
        CHECK_INT(rts_prom_family(&p, "ok_family", RTS_PROM_GAUGE, "fine"), RTS_ERR_OK);
        len = b.len;
        rc = rts_prom_sample(&p, l, nl, 1);
    } else {
        len = b.len;
        rc = rts_prom_family(&p, name, type, help);
    }
    if (rc != RTS_ERR_INVAL) {
        fprintf(stderr, "line %d: accepted\n", line);
    }
    CHECK_INT(rc, RTS_ERR_INVAL);
    CHECK_INT(b.len, len);
    /* sticky */
    CHECK_INT(rts_prom_family(&p, "later", RTS_PROM_GAUGE, "fine"), RTS_ERR_INVAL);
    CHECK_INT(rts_prom_sample(&p, NULL, 0, 1), RTS_ERR_INVAL);
    CHECK_INT(b.len, len);
    CHECK_INT(rts_prom_finish(&p, &eb), RTS_ERR_INVAL);
    CHECK_INT(eb.code, RTS_ERR_INVAL);
    CHECK(eb.msg[0] != '\0');
    rts_buf_fini(&b);
}

TEST(name_rules)
{
    char longname[RTS_PROM_NAME_MAX + 2];
    char longval[RTS_PROM_VALUE_MAX + 2];

    memset(longname, 'a', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = '\0';
    memset(longval, 'v', sizeof(longval) - 1);
    longval[sizeof(longval) - 1] = '\0';

    expect_refused("", RTS_PROM_GAUGE, "h", NULL, 0, __LINE__);
    expect_refused(NULL, RTS_PROM_GAUGE, "h", NULL, 0, __LINE__);
    expect_refused("9lives", RTS_PROM_GAUGE, "h", NULL, 0, __LINE__);
    expect_refused("has-dash", RTS_PROM_GAUGE, "h", NULL, 0, __LINE__);
    expect_refused("job:rate5m", RTS_PROM_GAUGE, "h", NULL, 0, __LINE__); /* colon: rules only */
    expect_refused("sp ace", RTS_PROM_GAUGE, "h", NULL, 0, __LINE__);
    expect_refused(longname, RTS_PROM_GAUGE, "h", NULL, 0, __LINE__);
    expect_refused("events", RTS_PROM_COUNTER, "h", NULL, 0, __LINE__);    /* no _total */
    expect_refused("queue_total", RTS_PROM_GAUGE, "h", NULL, 0, __LINE__); /* not a counter */
    expect_refused("lat_total", RTS_PROM_HISTOGRAM, "h", NULL, 0, __LINE__);
    expect_refused("ok", RTS_PROM_GAUGE, "", NULL, 0, __LINE__); /* empty help */
    expect_refused("ok", RTS_PROM_GAUGE, NULL, NULL, 0, __LINE__);
    expect_refused("ok", (enum rts_prom_type)7, "h", NULL, 0, __LINE__);

    expect_refused(NULL, 0, NULL, (const struct rts_prom_label[]){{"le", "1"}}, 1, __LINE__);
    expect_refused(NULL, 0, NULL, (const struct rts_prom_label[]){{"quantile", "1"}}, 1, __LINE__);
    expect_refused(NULL, 0, NULL, (const struct rts_prom_label[]){{"__name__", "x"}}, 1, __LINE__);
    expect_refused(NULL, 0, NULL, (const struct rts_prom_label[]){{"a-b", "x"}}, 1, __LINE__);
    expect_refused(NULL, 0, NULL, (const struct rts_prom_label[]){{"1a", "x"}}, 1, __LINE__);
    expect_refused(NULL, 0, NULL, (const struct rts_prom_label[]){{"a:b", "x"}}, 1, __LINE__);
    expect_refused(NULL, 0, NULL, (const struct rts_prom_label[]){{NULL, "x"}}, 1, __LINE__);
    expect_refused(NULL, 0, NULL, (const struct rts_prom_label[]){{"a", NULL}}, 1, __LINE__);
    expect_refused(NULL, 0, NULL, (const struct rts_prom_label[]){{"a", longval}}, 1, __LINE__);
    expect_refused(NULL, 0, NULL, (const struct rts_prom_label[]){{"a", "1"}, {"a", "2"}}, 2,
                   __LINE__);

    /* the limits themselves are fine */
    {
        struct rts_buf b = {0};
        struct rts_prom p;

        longname[RTS_PROM_NAME_MAX] = '\0';
        longval[RTS_PROM_VALUE_MAX] = '\0';
        rts_prom_init(&p, &b, 0);
        CHECK_INT(rts_prom_family(&p, longname, RTS_PROM_GAUGE, "h"), RTS_ERR_OK);
        CHECK_INT(rts_prom_sample(&p, (const struct rts_prom_label[]){{"_a", longval}}, 1, 1),
                  RTS_ERR_OK);
        CHECK_INT(rts_prom_family(&p, "Mixed_Case_9", RTS_PROM_GAUGE, "h"), RTS_ERR_OK);
        CHECK_INT(rts_prom_finish(&p, NULL), RTS_ERR_OK);
        rts_buf_fini(&b);
    }
}

TEST(sample_kinds)
{
    struct rts_buf b = {0};
    struct rts_prom p;
    struct rts_hist h = {0};
    struct rts_errbuf eb = {0};

    /* a sample before any family */
    rts_prom_init(&p, &b, 0);
    CHECK_INT(rts_prom_sample(&p, NULL, 0, 1), RTS_ERR_INVAL);
    CHECK_INT(b.len, 0);

    /* a counter refuses negative and NaN values */
    rts_prom_init(&p, &b, 0);
    CHECK_INT(rts_prom_family(&p, "c_total", RTS_PROM_COUNTER, "h"), RTS_ERR_OK);
    CHECK_INT(rts_prom_sample(&p, NULL, 0, -1), RTS_ERR_INVAL);
    rts_prom_init(&p, &b, 0);
    b.len = 0;
    CHECK_INT(rts_prom_family(&p, "c_total", RTS_PROM_COUNTER, "h"), RTS_ERR_OK);
    CHECK_INT(rts_prom_sample(&p, NULL, 0, NAN), RTS_ERR_INVAL);

    /* a histogram sample in a gauge family and the reverse */
    b.len = 0;
    rts_prom_init(&p, &b, 0);
    CHECK_INT(rts_prom_family(&p, "g", RTS_PROM_GAUGE, "h"), RTS_ERR_OK);
    CHECK_INT(rts_prom_hist_seconds(&p, NULL, 0, &h), RTS_ERR_INVAL);
    CHECK_INT(rts_prom_finish(&p, &eb), RTS_ERR_INVAL);
    CHECK(strstr(eb.msg, "g: histogram sample in a gauge family") != NULL);
    b.len = 0;
    rts_prom_init(&p, &b, 0);
    CHECK_INT(rts_prom_family(&p, "lat_seconds", RTS_PROM_HISTOGRAM, "h"), RTS_ERR_OK);
    CHECK_INT(rts_prom_sample(&p, NULL, 0, 1), RTS_ERR_INVAL);

    /* a histogram's series names are taken, both ways round */
    b.len = 0;
    rts_prom_init(&p, &b, 0);
    CHECK_INT(rts_prom_family(&p, "lat_seconds", RTS_PROM_HISTOGRAM, "h"), RTS_ERR_OK);
    CHECK_INT(rts_prom_family(&p, "lat_seconds_count", RTS_PROM_GAUGE, "h"), RTS_ERR_INVAL);
    b.len = 0;
    rts_prom_init(&p, &b, 0);
    CHECK_INT(rts_prom_family(&p, "lat_seconds_bucket", RTS_PROM_GAUGE, "h"), RTS_ERR_OK);
    CHECK_INT(rts_prom_family(&p, "lat_seconds", RTS_PROM_HISTOGRAM, "h"), RTS_ERR_INVAL);
    b.len = 0;
    rts_prom_init(&p, &b, 0);
    CHECK_INT(rts_prom_family(&p, "lat_seconds_sum", RTS_PROM_GAUGE, "h"), RTS_ERR_OK);
    CHECK_INT(rts_prom_family(&p, "lat_seconds_summary", RTS_PROM_GAUGE, "h"), RTS_ERR_OK);
    CHECK_INT(rts_prom_family(&p, "lat_seconds", RTS_PROM_HISTOGRAM, "h"), RTS_ERR_INVAL);
    rts_buf_fini(&b);
}

TEST(hist_counts_text)
{
    struct rts_buf b = {0};
    struct rts_prom p;
    const double bounds[] = {1, 2, 4, 8};
    const uint64_t counts[] = {3, 0, 5, 1, 2}; /* last: above 8 */
    const double bad[] = {1, 1};

    rts_prom_init(&p, &b, 0);
    CHECK_INT(rts_prom_family(&p, "rtscore_batch_size", RTS_PROM_HISTOGRAM, "Rows per batch."),
              RTS_ERR_OK);
    CHECK_INT(rts_prom_hist_counts(&p, (const struct rts_prom_label[]){{"model", "fraud"}}, 1,
                                   bounds, counts, 4, 57.5),
              RTS_ERR_OK);
    CHECK_INT(rts_prom_hist_counts(&p, NULL, 0, NULL, counts, 0, 0), RTS_ERR_OK); /* only +Inf */
    CHECK_INT(rts_prom_finish(&p, NULL), RTS_ERR_OK);
    CHECK_STR(b.data, "# HELP rtscore_batch_size Rows per batch.\n"
                      "# TYPE rtscore_batch_size histogram\n"
                      "rtscore_batch_size_bucket{model=\"fraud\",le=\"1\"} 3\n"
                      "rtscore_batch_size_bucket{model=\"fraud\",le=\"2\"} 3\n"
                      "rtscore_batch_size_bucket{model=\"fraud\",le=\"4\"} 8\n"
                      "rtscore_batch_size_bucket{model=\"fraud\",le=\"8\"} 9\n"
                      "rtscore_batch_size_bucket{model=\"fraud\",le=\"+Inf\"} 11\n"
                      "rtscore_batch_size_sum{model=\"fraud\"} 57.5\n"
                      "rtscore_batch_size_count{model=\"fraud\"} 11\n"
                      "rtscore_batch_size_bucket{le=\"+Inf\"} 3\n"
                      "rtscore_batch_size_sum 0\n"
                      "rtscore_batch_size_count 3\n");

    /* bad bounds */
    b.len = 0;
    rts_prom_init(&p, &b, 0);
    CHECK_INT(rts_prom_family(&p, "h", RTS_PROM_HISTOGRAM, "h"), RTS_ERR_OK);
    CHECK_INT(rts_prom_hist_counts(&p, NULL, 0, bad, counts, 2, 0), RTS_ERR_INVAL);
    b.len = 0;
    rts_prom_init(&p, &b, 0);
    CHECK_INT(rts_prom_family(&p, "h", RTS_PROM_HISTOGRAM, "h"), RTS_ERR_OK);
    CHECK_INT(rts_prom_hist_counts(&p, NULL, 0, (const double[]){1, INFINITY}, counts, 2, 0),
              RTS_ERR_INVAL);
    b.len = 0;
    rts_prom_init(&p, &b, 0);
    CHECK_INT(rts_prom_family(&p, "h", RTS_PROM_HISTOGRAM, "h"), RTS_ERR_OK);
    CHECK_INT(rts_prom_hist_counts(&p, NULL, 0, bounds, counts, RTS_PROM_MAX_BOUNDS + 1, 0),
              RTS_ERR_INVAL);
    rts_buf_fini(&b);
}

/* The le bounds written for the default seconds histogram. */
TEST(hist_seconds_layout)
{
    static const char *const want_le[RTS_PROM_SECONDS_BOUNDS] = {
        "0.000001", "0.0000025", "0.000005", "0.00001", "0.000025", "0.00005", "0.0001", "0.00025",
        "0.0005",   "0.001",     "0.0025",   "0.005",   "0.01",     "0.025",   "0.05",   "0.1",
        "0.25",     "0.5",       "1",        "2.5",     "5",        "10"};
    struct rts_buf b = {0};
    struct rts_prom p;
    struct rts_hist h = {0};
    char series[128];
    size_t i;

    rts_hist_add(&h, 500);            /* 0.5us: in every bucket */
    rts_hist_add(&h, 1000);           /* exactly 1us */
    rts_hist_add(&h, 3000000);        /* 3ms */
    rts_hist_add(&h, 20000000000ull); /* 20s: only +Inf */
    rts_prom_init(&p, &b, 0);
    CHECK_INT(rts_prom_family(&p, "rtscore_e2e_latency_seconds", RTS_PROM_HISTOGRAM, "E2E."),
              RTS_ERR_OK);
    CHECK_INT(rts_prom_hist_seconds(&p, NULL, 0, &h), RTS_ERR_OK);
    CHECK_INT(rts_prom_finish(&p, NULL), RTS_ERR_OK);
    for (i = 0; i < RTS_PROM_SECONDS_BOUNDS; i++) {
        snprintf(series, sizeof(series), "rtscore_e2e_latency_seconds_bucket{le=\"%s\"}",
                 want_le[i]);
        CHECK(value_of(b.data, series) >= 0);
    }
    CHECK_INT(value_of(b.data, "rtscore_e2e_latency_seconds_bucket{le=\"0.0000025\"}"), 2);
    CHECK_INT(value_of(b.data, "rtscore_e2e_latency_seconds_bucket{le=\"0.0025\"}"), 2);
    CHECK_INT(value_of(b.data, "rtscore_e2e_latency_seconds_bucket{le=\"0.005\"}"), 3);
    CHECK_INT(value_of(b.data, "rtscore_e2e_latency_seconds_bucket{le=\"10\"}"), 3);
    CHECK_INT(value_of(b.data, "rtscore_e2e_latency_seconds_bucket{le=\"+Inf\"}"), 4);
    CHECK_INT(value_of(b.data, "rtscore_e2e_latency_seconds_count"), 4);
    CHECK_NEAR(value_of(b.data, "rtscore_e2e_latency_seconds_sum"), 20.0030015, 1e-9);
    /* 1000 ns lies in the bucket [992, 1023], reported as its midpoint
     * 1008: not under le=1us (off by less than 1/32, as documented) */
    CHECK_INT(value_of(b.data, "rtscore_e2e_latency_seconds_bucket{le=\"0.000001\"}"), 1);
    CHECK_INT(rts_prom_hist_le(&h, 1007), 1);
    CHECK_INT(rts_prom_hist_le(&h, 1008), 2);
    rts_buf_fini(&b);

    /* an empty histogram: all zero */
    memset(&h, 0, sizeof(h));
    rts_prom_init(&p, &b, 0);
    b.len = 0;
    CHECK_INT(rts_prom_family(&p, "e_seconds", RTS_PROM_HISTOGRAM, "E."), RTS_ERR_OK);
    CHECK_INT(rts_prom_hist_seconds(&p, NULL, 0, &h), RTS_ERR_OK);
    CHECK_INT(value_of(b.data, "e_seconds_bucket{le=\"10\"}"), 0);
    CHECK_INT(value_of(b.data, "e_seconds_bucket{le=\"+Inf\"}"), 0);
    CHECK_INT(value_of(b.data, "e_seconds_sum"), 0);
    rts_buf_fini(&b);
}

/*
 * The rule: the k-th smallest value counts under le=B iff
 * rts_hist_quantile() reports it <= B. For every bound, with c = le(B):
 * quantile of rank c is <= B and quantile of rank c + 1 is > B. A rank r is
 * asked for as q = (r - 0.5) / n, whose ceil(q * n) is r without rounding
 * trouble.
 */
static int le_agrees_with_quantiles(const struct rts_hist *h, uint64_t le)
{
    uint64_t n = 0, c = rts_prom_hist_le(h, le);
    size_t i;

    for (i = 0; i < RTS_HIST_BUCKETS; i++) {
        n += h->b[i];
    }
    if (c > n) {
        return 0;
    }
    if (c > 0 && rts_hist_quantile(h, ((double)c - 0.5) / (double)n) > le) {
        return 0;
    }
    if (c < n && rts_hist_quantile(h, ((double)c + 0.5) / (double)n) <= le) {
        return 0;
    }
    return 1;
}

TEST(hist_le_matches_quantiles)
{
    static const uint64_t special[] = {
        0, 1, 31, 32, 33, 999, 1000, 1001, 2500, 1000000, UINT64_MAX - 1, UINT64_MAX};
    struct rts_hist h;
    size_t round, i, j, bad = 0, n;
    uint64_t le;

    for (round = 0; round < 200; round++) {
        memset(&h, 0, sizeof(h));
        n = 1 + rng() % (round < 20 ? 3 : 2000); /* some tiny ones: the top bucket matters */
        for (i = 0; i < n; i++) {
            rts_hist_add(&h, round % 3 == 0 ? rng() % 64 : rng_latency(100, 5e10));
        }
        for (j = 0; j < RTS_PROM_SECONDS_BOUNDS; j++) {
            le = (uint64_t)llround(rts_prom_seconds_bounds[j] * 1e9);
            bad += !le_agrees_with_quantiles(&h, le);
        }
        for (j = 0; j < sizeof(special) / sizeof(special[0]); j++) {
            bad += !le_agrees_with_quantiles(&h, special[j]);
        }
        /* around the max, where the last rank reports max itself */
        bad += !le_agrees_with_quantiles(&h, h.max);
        if (h.max) {
            bad += !le_agrees_with_quantiles(&h, h.max - 1);
        }
        for (j = 0; j < 20; j++) {
            bad += !le_agrees_with_quantiles(&h, rng_latency(1, 1e11));
        }
    }
    CHECK_INT(bad, 0);

    /* one value: counted exactly at its own value */
    memset(&h, 0, sizeof(h));
    rts_hist_add(&h, 123456);
    CHECK_INT(rts_prom_hist_le(&h, 123455), 0);
    CHECK_INT(rts_prom_hist_le(&h, 123456), 1);
    memset(&h, 0, sizeof(h));
    CHECK_INT(rts_prom_hist_le(&h, UINT64_MAX), 0);
}

/* Against the true values: a bucket's count is off by at most the values
 * within 1/16 of the bound (the width of a log-linear bucket). */
TEST(hist_counts_near_truth)
{
    static uint64_t vals[20000];
    struct rts_hist h = {0};
    size_t i, j, bad = 0;
    uint64_t le, c, lo_true, hi_true;

    for (i = 0; i < sizeof(vals) / sizeof(vals[0]); i++) {
        vals[i] = rng_latency(200, 3e10);
        rts_hist_add(&h, vals[i]);
    }
    for (j = 0; j < RTS_PROM_SECONDS_BOUNDS; j++) {
        le = (uint64_t)llround(rts_prom_seconds_bounds[j] * 1e9);
        c = rts_prom_hist_le(&h, le);
        lo_true = hi_true = 0;
        for (i = 0; i < sizeof(vals) / sizeof(vals[0]); i++) {
            lo_true += vals[i] <= le - le / 16;
            hi_true += vals[i] <= le + le / 16;
        }
        if (c < lo_true || c > hi_true) {
            fprintf(stderr, "le=%" PRIu64 ": %" PRIu64 " not in [%" PRIu64 ", %" PRIu64 "]\n", le,
                    c, lo_true, hi_true);
            bad++;
        }
    }
    CHECK_INT(bad, 0);
}

TEST(hist_scaled)
{
    struct rts_buf b = {0};
    struct rts_prom p;
    struct rts_hist h = {0};
    const double bounds[] = {1, 2, 4, 8, 16, 32, 64};
    size_t i;

    for (i = 1; i <= 64; i++) {
        rts_hist_add(&h, i); /* batch sizes 1..64: exact below 32 */
    }
    rts_prom_init(&p, &b, 0);
    CHECK_INT(rts_prom_family(&p, "batch", RTS_PROM_HISTOGRAM, "B."), RTS_ERR_OK);
    CHECK_INT(rts_prom_hist_scaled(&p, NULL, 0, &h, 1, bounds, 7), RTS_ERR_OK);
    CHECK_INT(rts_prom_hist_scaled(&p, NULL, 0, &h, 0, bounds, 7), RTS_ERR_INVAL);
    CHECK_INT(rts_prom_finish(&p, NULL), RTS_ERR_INVAL);
    CHECK_INT(value_of(b.data, "batch_bucket{le=\"1\"}"), 1);
    CHECK_INT(value_of(b.data, "batch_bucket{le=\"16\"}"), 16);
    CHECK_INT(value_of(b.data, "batch_bucket{le=\"64\"}"), 64);
    CHECK_INT(value_of(b.data, "batch_sum"), 64 * 65 / 2);
    rts_buf_fini(&b);

    /* milliseconds, ages: 90 s and 2 h against the age bounds */
    memset(&h, 0, sizeof(h));
    rts_hist_add(&h, 90000);
    rts_hist_add(&h, 7200000);
    rts_prom_init(&p, &b, 0);
    CHECK_INT(rts_prom_family(&p, "age_seconds", RTS_PROM_HISTOGRAM, "A."), RTS_ERR_OK);
    CHECK_INT(rts_prom_hist_scaled(&p, NULL, 0, &h, 1e3, rts_prom_age_bounds, RTS_PROM_AGE_BOUNDS),
              RTS_ERR_OK);
    CHECK_INT(rts_prom_finish(&p, NULL), RTS_ERR_OK);
    CHECK_INT(value_of(b.data, "age_seconds_bucket{le=\"60\"}"), 0);
    CHECK_INT(value_of(b.data, "age_seconds_bucket{le=\"300\"}"), 1);
    CHECK_INT(value_of(b.data, "age_seconds_bucket{le=\"7200\"}"), 2);
    CHECK_INT(value_of(b.data, "age_seconds_sum"), 7290);
    rts_buf_fini(&b);
}

/* Out of room: the failing line is not written, the error sticks. */
TEST(bounds)
{
    struct rts_buf b = {0};
    struct rts_prom p;
    struct rts_hist h = {0};
    struct rts_errbuf eb = {0};
    char name[32];
    size_t i, len = 0;

    rts_prom_init(&p, &b, 120);
    CHECK_INT(rts_prom_family(&p, "g", RTS_PROM_GAUGE, "h"), RTS_ERR_OK);
    for (i = 0; i < 100 && p.err.code == RTS_ERR_OK; i++) {
        len = b.len;
        rts_prom_sample(&p, (const struct rts_prom_label[]){{"worker", "7"}}, 1, 1);
    }
    CHECK_INT(rts_prom_finish(&p, &eb), RTS_ERR_LIMIT);
    CHECK(b.len <= 120);
    CHECK_INT(b.len, len);
    CHECK(b.data[b.len - 1] == '\n');
    CHECK(strstr(eb.msg, "larger than 120 bytes") != NULL);

    /* a histogram that does not fit is not written at all */
    b.len = 0;
    rts_prom_init(&p, &b, 300);
    CHECK_INT(rts_prom_family(&p, "l", RTS_PROM_HISTOGRAM, "h"), RTS_ERR_OK);
    len = b.len;
    CHECK_INT(rts_prom_hist_seconds(&p, NULL, 0, &h), RTS_ERR_LIMIT);
    CHECK_INT(b.len, len);
    CHECK_INT((int)strlen(b.data), len);

    /* families */
    b.len = 0;
    rts_prom_init(&p, &b, 0);
    for (i = 0; i < RTS_PROM_MAX_FAMILIES; i++) {
        snprintf(name, sizeof(name), "f%zu", i);
        rts_prom_family(&p, name, RTS_PROM_GAUGE, "h");
    }
    CHECK_INT(rts_prom_finish(&p, NULL), RTS_ERR_OK);
    CHECK_INT(rts_prom_family(&p, "one_more", RTS_PROM_GAUGE, "h"), RTS_ERR_LIMIT);

    /* labels */
    {
        struct rts_prom_label many[RTS_PROM_MAX_LABELS + 1];
        char names[RTS_PROM_MAX_LABELS + 1][8];

        for (i = 0; i <= RTS_PROM_MAX_LABELS; i++) {
            snprintf(names[i], sizeof(names[i]), "l%zu", i);
            many[i].name = names[i];
            many[i].value = "v";
        }
        b.len = 0;
        rts_prom_init(&p, &b, 0);
        CHECK_INT(rts_prom_family(&p, "g", RTS_PROM_GAUGE, "h"), RTS_ERR_OK);
        CHECK_INT(rts_prom_sample(&p, many, RTS_PROM_MAX_LABELS, 1), RTS_ERR_OK);
        CHECK_INT(rts_prom_sample(&p, many, RTS_PROM_MAX_LABELS + 1, 1), RTS_ERR_INVAL);
    }
    rts_buf_fini(&b);
}

/* ---- the representative exposition for promtool ---- */

static void fill_latency(struct rts_hist *h, double lo_ns, double hi_ns, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++) {
        rts_hist_add(h, rng_latency(lo_ns, hi_ns));
    }
}

static enum rts_err write_exposition(struct rts_buf *b, struct rts_errbuf *eb)
{
    static const char *const outcomes[] = {"scored", "dlq", "shed", "duplicate"};
    static const char *const reasons[] = {"invalid_json", "missing_field", "bad_type",
                                          "out_of_range", "too_large",     "bad_time",
                                          "bad_encoding", "model_error"};
    static const char *const stages[] = {"decode", "features", "lookup", "model",
                                         "rules",  "emit",     "total"};
    static const char *const budget_stages[] = {"decode", "features", "lookup",
                                                "model",  "emit",     "total"};
    static const char *const deps[] = {"model", "store:profiles"};
    static const char *const features[] = {"amount_log",      "txn_count_5m",  "amount_sum_24h",
                                           "amount_mean_30d", "merchants_24h", "avg_spend_90d"};
    static const double score_bounds[] = {0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99};
    static const double batch_bounds[] = {1, 2, 4, 8, 16, 32, 64, 128};
    struct rts_hist *h = calloc(1, sizeof(*h));
    uint64_t score_counts[12] = {9120, 412, 170, 81, 44, 30, 22, 16, 12, 5, 3, 2};
    struct rts_prom p;
    char w[8], part[8];
    size_t i;

    if (!h) {
        return RTS_ERR_NOMEM;
    }
    rts_prom_init(&p, b, 0);

    rts_prom_family(&p, "rtscore_events_total", RTS_PROM_COUNTER,
                    "Events by final outcome; every event ends as exactly one of them.");
    for (i = 0; i < 4; i++) {
        rts_prom_sample_u64(&p, (const struct rts_prom_label[]){{"outcome", outcomes[i]}}, 1,
                            i == 0 ? 1204332 : 17 * i);
    }
    rts_prom_family(&p, "rtscore_dlq_total", RTS_PROM_COUNTER,
                    "Events sent to the dead-letter queue, by reason.");
    for (i = 0; i < sizeof(reasons) / sizeof(reasons[0]); i++) {
        rts_prom_sample_u64(&p, (const struct rts_prom_label[]){{"reason", reasons[i]}}, 1, i * 3);
    }
    rts_prom_family(&p, "rtscore_stage_latency_seconds", RTS_PROM_HISTOGRAM,
                    "Time spent per pipeline stage per event.");
    for (i = 0; i < sizeof(stages) / sizeof(stages[0]); i++) {
        memset(h, 0, sizeof(*h));
        fill_latency(h, 300 + 500 * (double)i, 2e6 + 1e6 * (double)i, 5000);
        rts_prom_hist_seconds(&p, (const struct rts_prom_label[]){{"stage", stages[i]}}, 1, h);
    }
    rts_prom_family(&p, "rtscore_e2e_latency_seconds", RTS_PROM_HISTOGRAM,
                    "Event time to emit, per event.");
    memset(h, 0, sizeof(*h));
    fill_latency(h, 1e6, 3e9, 5000);
    rts_prom_hist_seconds(&p, NULL, 0, h);
    rts_prom_family(&p, "rtscore_predictions_total", RTS_PROM_COUNTER,
                    "Predictions by model, version and path (model, fallback, shed, shadow).");
    rts_prom_sample_u64(
        &p,
        (const struct rts_prom_label[]){{"model", "fraud"}, {"version", "3"}, {"path", "model"}}, 3,
        1203311);
    rts_prom_sample_u64(
        &p,
        (const struct rts_prom_label[]){{"model", "fraud"}, {"version", "3"}, {"path", "fallback"}},
        3, 1004);
    rts_prom_sample_u64(
        &p,
        (const struct rts_prom_label[]){{"model", "fraud"}, {"version", "4"}, {"path", "shadow"}},
        3, 1203311);
    rts_prom_family(&p, "rtscore_score", RTS_PROM_HISTOGRAM, "Model scores (0 to 1).");
    rts_prom_hist_counts(&p, (const struct rts_prom_label[]){{"model", "fraud"}, {"version", "3"}},
                         2, score_bounds, score_counts, 11, 612.25);
    rts_prom_family(&p, "rtscore_batch_size", RTS_PROM_HISTOGRAM, "Rows per model batch.");
    memset(h, 0, sizeof(*h));
    for (i = 0; i < 3000; i++) {
        rts_hist_add(h, 1 + rng() % 64);
    }
    rts_prom_hist_scaled(&p, (const struct rts_prom_label[]){{"model", "fraud"}}, 1, h, 1,
                         batch_bounds, 8);
    rts_prom_family(&p, "rtscore_circuit_state", RTS_PROM_GAUGE,
                    "Circuit breaker state per dependency: 0 closed, 1 half-open, 2 open.");
    for (i = 0; i < 2; i++) {
        rts_prom_sample(&p, (const struct rts_prom_label[]){{"dependency", deps[i]}}, 1,
                        (double)i * 2);
    }
    rts_prom_family(&p, "rtscore_consumer_lag", RTS_PROM_GAUGE,
                    "Messages between the committed offset and the end of each partition.");
    for (i = 0; i < 4; i++) {
        snprintf(part, sizeof(part), "%zu", i);
        rts_prom_sample_u64(
            &p, (const struct rts_prom_label[]){{"topic", "transactions"}, {"partition", part}}, 2,
            i * 11);
    }
    rts_prom_family(&p, "rtscore_queue_depth", RTS_PROM_GAUGE, "Events queued per worker.");
    for (i = 0; i < 2; i++) {
        snprintf(w, sizeof(w), "%zu", i);
        rts_prom_sample_u64(&p, (const struct rts_prom_label[]){{"worker", w}}, 1, 3 + i);
    }
    rts_prom_family(&p, "rtscore_keys", RTS_PROM_GAUGE, "Keys with state per worker.");
    for (i = 0; i < 2; i++) {
        snprintf(w, sizeof(w), "%zu", i);
        rts_prom_sample_u64(&p, (const struct rts_prom_label[]){{"worker", w}}, 1, 250000 + i);
    }
    rts_prom_family(&p, "rtscore_feature_staleness_seconds", RTS_PROM_HISTOGRAM,
                    "Event time minus the store's update time of looked-up values.");
    memset(h, 0, sizeof(*h));
    for (i = 0; i < 2000; i++) {
        rts_hist_add(h, (uint64_t)rng_latency(1e3, 9e7)); /* ms: 1 s to 25 h */
    }
    rts_prom_hist_scaled(&p, (const struct rts_prom_label[]){{"feature", "avg_spend_90d"}}, 1, h,
                         1e3, rts_prom_age_bounds, RTS_PROM_AGE_BOUNDS);
    rts_prom_family(&p, "rtscore_feature_default_total", RTS_PROM_COUNTER,
                    "Lookups that fell back to the feature's default (missing or stale).");
    rts_prom_sample_u64(&p, (const struct rts_prom_label[]){{"feature", "avg_spend_90d"}}, 1, 93);
    rts_prom_family(&p, "rtscore_drift_psi", RTS_PROM_GAUGE,
                    "Population stability index of each feature against the training reference.");
    for (i = 0; i < sizeof(features) / sizeof(features[0]); i++) {
        rts_prom_sample(&p, (const struct rts_prom_label[]){{"feature", features[i]}}, 1,
                        0.01 * (double)(i + 1));
    }
    rts_prom_family(&p, "rtscore_budget_exceeded_total", RTS_PROM_COUNTER,
                    "Events over the latency budget of a stage.");
    for (i = 0; i < sizeof(budget_stages) / sizeof(budget_stages[0]); i++) {
        rts_prom_sample_u64(&p, (const struct rts_prom_label[]){{"stage", budget_stages[i]}}, 1, i);
    }
    rts_prom_family(&p, "rtscore_model_info", RTS_PROM_GAUGE,
                    "Loaded models per slot (live, candidate, previous); the value is 1.");
    rts_prom_sample(
        &p, (const struct rts_prom_label[]){{"model", "fraud"}, {"version", "3"}, {"slot", "live"}},
        3, 1);
    rts_prom_sample(&p,
                    (const struct rts_prom_label[]){
                        {"model", "fraud"}, {"version", "4"}, {"slot", "candidate"}},
                    3, 1);
    /* a label value with everything that needs escaping */
    rts_prom_family(&p, "rtscore_escape_check", RTS_PROM_GAUGE, "Escaping: \\ and\nnewline.");
    rts_prom_sample(&p, (const struct rts_prom_label[]){{"value", "a\\b\"c\nd\xFF"}}, 1, 1);
    free(h);
    return rts_prom_finish(&p, eb);
}

TEST(exposition_builds)
{
    struct rts_buf b = {0};
    struct rts_errbuf eb = {0};

    CHECK_INT(write_exposition(&b, &eb), RTS_ERR_OK);
    CHECK(strstr(b.data, "# TYPE rtscore_stage_latency_seconds histogram\n") != NULL);
    CHECK(strstr(b.data,
                 "rtscore_stage_latency_seconds_bucket{stage=\"total\",le=\"+Inf\"} 5000\n") !=
          NULL);
    rts_buf_fini(&b);
}

static int write_exposition_file(const char *path)
{
    struct rts_buf b = {0};
    struct rts_errbuf eb = {0};
    FILE *f;
    int rc = 1;

    if (write_exposition(&b, &eb)) {
        fprintf(stderr, "test_prom: %s\n", eb.msg);
        goto out;
    }
    f = fopen(path, "w");
    if (!f) {
        perror(path);
        goto out;
    }
    if (fwrite(b.data, 1, b.len, f) != b.len) {
        perror(path);
        fclose(f);
        goto out;
    }
    rc = fclose(f) != 0;
out:
    rts_buf_fini(&b);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "--write-exposition") == 0) {
        return write_exposition_file(argv[2]);
    }
    RUN(counter_and_gauge_text);
    RUN(appends_to_existing_buffer);
    RUN(escaping);
    RUN(name_rules);
    RUN(sample_kinds);
    RUN(hist_counts_text);
    RUN(hist_seconds_layout);
    RUN(hist_le_matches_quantiles);
    RUN(hist_counts_near_truth);
    RUN(hist_scaled);
    RUN(bounds);
    RUN(exposition_builds);
    return TEST_EXIT();
}
