/*
 * test_hist.c - unit tests of core/hist: the bucket layout (every boundary,
 * monotonic bounds, the 1/16 relative width), quantiles on known
 * distributions, merging, and a live writer read by a concurrent merger (run
 * it under TSan too).
 */
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>

#include "core/hist.h"
#include "test.h"

static uint64_t rng_state = 0x9E3779B97F4A7C15u;

static uint64_t rng(void)
{
    uint64_t x = rng_state;

    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    rng_state = x;
    return x;
}

TEST(bucket_layout)
{
    size_t i, bad_of = 0, bad_next = 0, bad_mono = 0, bad_width = 0;
    uint64_t lo, hi;

    CHECK_INT(rts_hist_bucket_lower(0), 0);
    CHECK(rts_hist_bucket_upper(RTS_HIST_BUCKETS - 1) == UINT64_MAX);
    CHECK(rts_hist_bucket_of(UINT64_MAX) == RTS_HIST_BUCKETS - 1);
    CHECK(rts_hist_bucket_of(UINT64_C(1) << 40) < RTS_HIST_BUCKETS);
    for (i = 0; i < RTS_HIST_BUCKETS; i++) {
        lo = rts_hist_bucket_lower(i);
        hi = rts_hist_bucket_upper(i);
        /* both ends of every bucket map back to it, and the neighbours do not */
        if (rts_hist_bucket_of(lo) != i || rts_hist_bucket_of(hi) != i ||
            (lo > 0 && rts_hist_bucket_of(lo - 1) != i - 1) ||
            (hi < UINT64_MAX && rts_hist_bucket_of(hi + 1) != i + 1)) {
            bad_of++;
        }
        if (i + 1 < RTS_HIST_BUCKETS && rts_hist_bucket_lower(i + 1) != hi + 1) {
            bad_next++;
        }
        if (i > 0 && !(hi > rts_hist_bucket_upper(i - 1))) {
            bad_mono++;
        }
        /* width <= lower / 16 above the exact range */
        if (i >= 32 && (hi - lo + 1) * 16 > lo) {
            bad_width++;
        }
        if (i < 32 && (lo != i || hi != i)) {
            bad_width++;
        }
    }
    CHECK_INT(bad_of, 0);
    CHECK_INT(bad_next, 0);
    CHECK_INT(bad_mono, 0);
    CHECK_INT(bad_width, 0);
}

TEST(bucket_exact_small)
{
    uint64_t v;
    size_t bad = 0;

    for (v = 0; v < 32; v++) {
        if (rts_hist_bucket_of(v) != v) {
            bad++;
        }
    }
    CHECK_INT(bad, 0);
    CHECK_INT(rts_hist_bucket_of(32), 32);
    CHECK_INT(rts_hist_bucket_of(33), 32); /* [32,33] */
    CHECK_INT(rts_hist_bucket_of(34), 33);
    CHECK_INT(rts_hist_bucket_upper(32), 33);
    CHECK_INT(rts_hist_bucket_lower(48), 64);
    CHECK_INT(rts_hist_bucket_upper(48), 67);
}

/* A random value is within 1/32 of what its bucket reports (midpoint). */
TEST(relative_error)
{
    size_t n, bad = 0;
    struct rts_hist h;
    uint64_t v, q;

    for (n = 0; n < 200000; n++) {
        v = rng() >> (rng() % 64);
        memset(&h, 0, sizeof(h));
        rts_hist_add(&h, v);
        rts_hist_add(&h, UINT64_MAX); /* keep max from clamping */
        q = rts_hist_quantile(&h, 0.25);
        if (v < 32 ? q != v : fabs((double)q - (double)v) > (double)v / 32) {
            bad++;
        }
    }
    CHECK_INT(bad, 0);
}

TEST(empty_and_single)
{
    struct rts_hist h;

    memset(&h, 0, sizeof(h));
    CHECK_INT(rts_hist_quantile(&h, 0.5), 0);
    CHECK_INT(rts_hist_quantile(&h, 1), 0);
    rts_hist_add(&h, 1000);
    CHECK_INT(h.count, 1);
    CHECK_INT(h.sum, 1000);
    CHECK_INT(h.max, 1000);
    /* midpoint 1008 is clamped to max */
    CHECK_INT(rts_hist_quantile(&h, 0.5), 1000);
    CHECK_INT(rts_hist_quantile(&h, 0), 1000);
    CHECK_INT(rts_hist_quantile(&h, 1), 1000);
    CHECK_INT(rts_hist_quantile(&h, NAN), 1000);
    CHECK_INT(rts_hist_quantile(&h, -3), 1000);
    CHECK_INT(rts_hist_quantile(&h, 7), 1000);
    rts_hist_add(&h, 0);
    CHECK_INT(rts_hist_quantile(&h, 0), 0);
    CHECK_INT(rts_hist_quantile(&h, 0.5), 0);     /* 1st of 2 */
    CHECK_INT(rts_hist_quantile(&h, 0.51), 1000); /* 2nd of 2 */
}

TEST(quantiles_uniform)
{
    struct rts_hist h;
    uint64_t v;
    double q, want;
    size_t bad = 0;

    memset(&h, 0, sizeof(h));
    for (v = 1; v <= 1000000; v++) {
        rts_hist_add(&h, v);
    }
    CHECK_INT(h.count, 1000000);
    CHECK_INT(h.sum, 500000500000);
    CHECK_INT(h.max, 1000000);
    for (q = 0.01; q < 1; q += 0.01) {
        want = ceil(q * 1e6);
        if (fabs((double)rts_hist_quantile(&h, q) - want) > want / 32 + 1) {
            bad++;
        }
    }
    CHECK_INT(bad, 0);
    CHECK_INT(rts_hist_quantile(&h, 0), 1);
    CHECK_INT(rts_hist_quantile(&h, 1), 1000000);
}

TEST(quantiles_exponential)
{
    struct rts_hist h;
    const double mean = 250000, n = 100000; /* 250 us */
    const double qs[] = {0.5, 0.9, 0.99, 0.999};
    double want, got;
    size_t i;

    memset(&h, 0, sizeof(h));
    for (i = 0; i < (size_t)n; i++) {
        rts_hist_add(&h, (uint64_t)(-log(1 - (i + 0.5) / n) * mean));
    }
    for (i = 0; i < sizeof(qs) / sizeof(qs[0]); i++) {
        want = -log(1 - qs[i]) * mean;
        got = (double)rts_hist_quantile(&h, qs[i]);
        CHECK_NEAR(got, want, want / 16);
    }
}

TEST(merge)
{
    struct rts_hist a, b, all, m;
    uint64_t v;
    size_t i, diff = 0;

    memset(&a, 0, sizeof(a));
    memset(&b, 0, sizeof(b));
    memset(&all, 0, sizeof(all));
    memset(&m, 0, sizeof(m));
    for (i = 0; i < 100000; i++) {
        v = rng() % (i % 2 ? 1000 : 10000000);
        rts_hist_add(i % 3 ? &a : &b, v);
        rts_hist_add(&all, v);
    }
    rts_hist_merge(&m, &a);
    rts_hist_merge(&m, &b);
    CHECK_INT(m.count, all.count);
    CHECK(m.sum == all.sum);
    CHECK_INT(m.max, all.max);
    for (i = 0; i < RTS_HIST_BUCKETS; i++) {
        diff += m.b[i] != all.b[i];
    }
    CHECK_INT(diff, 0);
    CHECK_INT(rts_hist_quantile(&m, 0.99), rts_hist_quantile(&all, 0.99));

    /* A source caught mid-update: bucket counted, count and max not yet. */
    memset(&a, 0, sizeof(a));
    memset(&m, 0, sizeof(m));
    a.b[rts_hist_bucket_of(5000)] = 1;
    rts_hist_merge(&m, &a);
    CHECK_INT(m.count, 1);
    CHECK_INT(m.max, rts_hist_bucket_lower(rts_hist_bucket_of(5000)));
    CHECK(rts_hist_quantile(&m, 0.5) >= rts_hist_bucket_lower(rts_hist_bucket_of(5000)));
}

#define LIVE_N 2000000

static struct rts_hist live;

static void *live_writer(void *arg)
{
    uint64_t i;

    for (i = 0; i < LIVE_N; i++) {
        rts_hist_add(&live, i & 0xFFFF);
    }
    return NULL;
}

TEST(live_reader)
{
    pthread_t t;
    struct rts_hist m;
    uint64_t prev = 0;
    size_t snaps = 0, backwards = 0, inconsistent = 0, i;

    memset(&live, 0, sizeof(live));
    CHECK_INT(pthread_create(&t, NULL, live_writer, NULL), 0);
    while (snaps < 200) {
        uint64_t n = 0;

        memset(&m, 0, sizeof(m));
        rts_hist_merge(&m, &live);
        for (i = 0; i < RTS_HIST_BUCKETS; i++) {
            n += m.b[i];
        }
        inconsistent += n != m.count;
        backwards += m.count < prev;
        prev = m.count;
        snaps++;
        if (m.count == LIVE_N) {
            break;
        }
    }
    pthread_join(t, NULL);
    CHECK_INT(inconsistent, 0);
    CHECK_INT(backwards, 0);
    memset(&m, 0, sizeof(m));
    rts_hist_merge(&m, &live);
    CHECK_INT(m.count, LIVE_N);
    CHECK_INT(m.max, 0xFFFF);
}

int main(void)
{
    RUN(bucket_layout);
    RUN(bucket_exact_small);
    RUN(relative_error);
    RUN(empty_and_single);
    RUN(quantiles_uniform);
    RUN(quantiles_exponential);
    RUN(merge);
    RUN(live_reader);
    return TEST_EXIT();
}
