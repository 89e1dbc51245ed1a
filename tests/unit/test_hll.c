/*
 * test_hll.c - distinct counts (hll.h): exact sparse mode with expiry at the
 * exact window edges, the exact list blocks past the inline entries,
 * promotion to a pooled sketch and back, too-old events,
 * pool exhaustion and reclaim, extreme timestamps, and HyperLogLog accuracy
 * from 1k to 1M distinct values (every trial within 3 standard errors, the
 * mean error small).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/hash.h"
#include "feature/hll.h"
#include "test.h"

#define SE (1.04 / 64.0) /* 1.04 / sqrt(4096) */

static uint64_t st_a[4096], st_b[4096];

static uint64_t vh(uint64_t seed, uint64_t i)
{
    uint64_t k[2] = {seed, i};

    return rts_hash64(k, sizeof(k));
}

static struct rts_hll_pool *pool_lists(const struct rts_distinct_spec *d, size_t n, size_t lists)
{
    struct rts_errbuf eb = {0};
    struct rts_hll_pool *p = rts_hll_pool_new(d, n, lists, &eb);

    CHECK(p != NULL);
    if (!p) {
        fprintf(stderr, "pool: %s\n", eb.msg);
        exit(1);
    }
    return p;
}

/* a pool of @n sketches and no list blocks: keys go from inline to dense */
static struct rts_hll_pool *pool(const struct rts_distinct_spec *d, size_t n)
{
    return pool_lists(d, n, 0);
}

static uint64_t lists_in_use(const struct rts_hll_pool *p)
{
    struct rts_hll_pool_stats s;

    rts_hll_pool_stats(p, &s);
    return s.lists_in_use;
}

static uint64_t in_use(const struct rts_hll_pool *p)
{
    struct rts_hll_pool_stats s;

    rts_hll_pool_stats(p, &s);
    return s.in_use;
}

TEST(sizes_and_checks)
{
    struct rts_distinct_spec d = {86400000, 32, 16};
    struct rts_distinct_spec bad = {86400000, 0, 16};
    struct rts_errbuf eb = {0};
    struct rts_hll_pool *p;
    struct rts_hll_pool_stats s;

    CHECK_INT(rts_distinct_size(&d), 24 + 16 * 4 + 16 * 8);
    d.sparse_cap = 3;
    CHECK_INT(rts_distinct_size(&d), 24 + 16 + 3 * 8);
    CHECK_INT(rts_distinct_size(&d) % 8, 0);
    CHECK_INT(rts_distinct_check(&d, NULL), RTS_ERR_OK);
    CHECK_INT(rts_distinct_check(&bad, NULL), RTS_ERR_INVAL);
    bad.nbuckets = 32;
    bad.sparse_cap = 0;
    CHECK_INT(rts_distinct_check(&bad, NULL), RTS_ERR_INVAL);
    bad.sparse_cap = 4;
    bad.width_ms = 0;
    CHECK(rts_hll_pool_new(&bad, 4, 0, &eb) == NULL);
    CHECK_INT(eb.code, RTS_ERR_INVAL);
    CHECK(strstr(eb.msg, "width") != NULL);

    p = pool(&d, 1000);
    rts_hll_pool_stats(p, &s);
    CHECK_INT(s.in_use, 0);
    CHECK_INT(s.max, 1000);
    CHECK_INT(s.exhausted, 0);
    CHECK_INT(s.bytes_per_sketch, 35 * 4096); /* 32 panes, merged, owners, metadata */
    rts_hll_pool_free(p);
    rts_hll_pool_free(NULL);
}

TEST(sparse_exact_edges)
{
    struct rts_distinct_spec d = {60000, 6, 8};
    struct rts_hll_pool *p = pool(&d, 4);
    void *st = st_a;

    memset(st_a, 0, sizeof(st_a));
    CHECK_NEAR(rts_distinct_query(&d, st, p, 0), 0, 0);
    CHECK_INT(rts_distinct_add(&d, st, p, 1000, vh(1, 'A')), 0);
    CHECK_INT(rts_distinct_add(&d, st, p, 2000, vh(1, 'B')), 0);
    CHECK_INT(rts_distinct_add(&d, st, p, 5000, vh(1, 'A')), 0); /* A last seen 5000 */
    CHECK_INT(rts_distinct_add(&d, st, p, 30000, vh(1, 'C')), 0);
    CHECK_INT(rts_distinct_add(&d, st, p, 30000, vh(1, 'C')), 0);
    CHECK_INT(rts_distinct_is_dense(st, p), 0);

    CHECK_NEAR(rts_distinct_query(&d, st, p, 30000), 3, 0);
    CHECK_NEAR(rts_distinct_query(&d, st, p, 61999), 3, 0); /* B at 2000: age 59999 */
    CHECK_NEAR(rts_distinct_query(&d, st, p, 62000), 2, 0); /* B out: age 60000 */
    CHECK_NEAR(rts_distinct_query(&d, st, p, 64999), 2, 0);
    CHECK_NEAR(rts_distinct_query(&d, st, p, 65000), 1, 0); /* A out */
    CHECK_NEAR(rts_distinct_query(&d, st, p, 89999), 1, 0);
    CHECK_NEAR(rts_distinct_query(&d, st, p, 90000), 0, 0); /* C out */
    /* Earlier than the latest sightings: only the latest is kept (documented). */
    CHECK_NEAR(rts_distinct_query(&d, st, p, 2500), 1, 0); /* B; A's 1000 forgotten */
    CHECK_NEAR(rts_distinct_query(&d, st, p, 999), 0, 0);
    CHECK_INT(in_use(p), 0);
    rts_hll_pool_free(p);
}

TEST(sparse_reuse)
{
    struct rts_distinct_spec d = {60000, 6, 4};
    struct rts_hll_pool *p = pool(&d, 4);
    void *st = st_a;
    int i;

    memset(st_a, 0, sizeof(st_a));
    for (i = 0; i < 4; i++) {
        CHECK_INT(rts_distinct_add(&d, st, p, i, vh(2, (uint64_t)i)), 0);
    }
    CHECK_NEAR(rts_distinct_query(&d, st, p, 3), 4, 0);
    /* at 60002 the entry at 3 is still live, those at 0..2 are reused */
    for (i = 4; i < 7; i++) {
        CHECK_INT(rts_distinct_add(&d, st, p, 60002, vh(2, (uint64_t)i)), 0);
    }
    CHECK_INT(rts_distinct_is_dense(st, p), 0);
    CHECK_NEAR(rts_distinct_query(&d, st, p, 60002), 4, 0);
    CHECK_NEAR(rts_distinct_query(&d, st, p, 60003), 3, 0);
    CHECK_INT(in_use(p), 0);
    rts_hll_pool_free(p);
}

TEST(promote_and_back)
{
    struct rts_distinct_spec d = {60000, 6, 4}; /* r = 10 s */
    struct rts_hll_pool *p = pool(&d, 2);
    struct rts_hll_pool_stats s;
    void *st = st_a;
    uint64_t i;
    double est;

    memset(st_a, 0, sizeof(st_a));
    for (i = 0; i < 4; i++) {
        CHECK_INT(rts_distinct_add(&d, st, p, 1000 + (int64_t)i, vh(3, i)), 0);
    }
    CHECK_INT(rts_distinct_is_dense(st, p), 0);
    CHECK_INT(rts_distinct_add(&d, st, p, 1004, vh(3, 4)), 0); /* the 5th live value */
    CHECK_INT(rts_distinct_is_dense(st, p), 1);
    CHECK_INT(in_use(p), 1);
    CHECK_NEAR(rts_distinct_query(&d, st, p, 1004), 5, 0.05);
    /* duplicates, including the folded values, do not count twice */
    for (i = 0; i < 5; i++) {
        CHECK_INT(rts_distinct_add(&d, st, p, 2000, vh(3, i)), 0);
    }
    CHECK_NEAR(rts_distinct_query(&d, st, p, 2000), 5, 0.05);
    for (i = 5; i < 100; i++) {
        CHECK_INT(rts_distinct_add(&d, st, p, 3000 + (int64_t)i, vh(3, i)), 0);
    }
    est = rts_distinct_query(&d, st, p, 9999);
    CHECK(fabs(est - 100) < 3);
    /* every event was in bucket 0: it leaves the window at 60000 */
    CHECK_NEAR(rts_distinct_query(&d, st, p, 59999), est, 0);
    CHECK_NEAR(rts_distinct_query(&d, st, p, 60000), 0, 0);
    CHECK_INT(rts_distinct_is_dense(st, p), 1); /* queries do not change anything */
    /* the next add after every pane expired returns the sketch */
    CHECK_INT(rts_distinct_add(&d, st, p, 60000, vh(3, 1000)), 0);
    CHECK_INT(rts_distinct_is_dense(st, p), 0);
    CHECK_INT(in_use(p), 0);
    CHECK_NEAR(rts_distinct_query(&d, st, p, 60000), 1, 0);
    /* and it can be promoted again */
    for (i = 1001; i < 1010; i++) {
        CHECK_INT(rts_distinct_add(&d, st, p, 60001, vh(3, i)), 0);
    }
    CHECK_INT(rts_distinct_is_dense(st, p), 1);
    CHECK_NEAR(rts_distinct_query(&d, st, p, 60001), 10, 0.1);
    rts_hll_pool_stats(p, &s);
    CHECK_INT(s.in_use, 1);
    CHECK_INT(s.exhausted, 0);
    rts_distinct_release(&d, st, p);
    CHECK_INT(in_use(p), 0);
    CHECK_NEAR(rts_distinct_query(&d, st, p, 60001), 0, 0);
    CHECK_INT(rts_distinct_is_dense(st, p), 0);
    rts_hll_pool_free(p);
}

/* At promotion the live entries are folded into panes; an entry of the bucket
 * that is leaving the ring is dropped (the bucket resolution of dense mode). */
TEST(promotion_fold)
{
    struct rts_distinct_spec d = {60000, 6, 3};
    struct rts_hll_pool *p = pool(&d, 1);
    void *st = st_a;

    memset(st_a, 0, sizeof(st_a));
    CHECK_INT(rts_distinct_add(&d, st, p, 5000, vh(4, 1)), 0);  /* bucket 0 */
    CHECK_INT(rts_distinct_add(&d, st, p, 20000, vh(4, 2)), 0); /* bucket 2 */
    CHECK_INT(rts_distinct_add(&d, st, p, 30000, vh(4, 3)), 0); /* bucket 3 */
    CHECK_NEAR(rts_distinct_query(&d, st, p, 62000), 3, 0);     /* sparse: exact */
    CHECK_INT(rts_distinct_add(&d, st, p, 62000, vh(4, 4)), 0); /* bucket 6: promote */
    CHECK_INT(rts_distinct_is_dense(st, p), 1);
    CHECK_NEAR(rts_distinct_query(&d, st, p, 62000), 3, 0.05); /* 2, 3, 4 */
    CHECK_NEAR(rts_distinct_query(&d, st, p, 39999), 2, 0.05); /* late view: 2, 3 */
    CHECK_NEAR(rts_distinct_query(&d, st, p, 29999), 1, 0.05); /* 2 */
    rts_hll_pool_free(p);
}

TEST(dense_sliding_and_too_old)
{
    struct rts_distinct_spec d = {60000, 6, 4};
    struct rts_hll_pool *p = pool(&d, 1);
    void *st = st_a;
    double e0, e3, both;
    uint64_t i;

    memset(st_a, 0, sizeof(st_a));
    for (i = 0; i < 1000; i++) { /* bucket 0 */
        CHECK_INT(rts_distinct_add(&d, st, p, (int64_t)(i * 9), vh(5, i)), 0);
    }
    for (i = 0; i < 1000; i++) { /* bucket 3, other values */
        CHECK_INT(rts_distinct_add(&d, st, p, 30000 + (int64_t)i, vh(6, i)), 0);
    }
    CHECK_INT(rts_distinct_is_dense(st, p), 1);
    e0 = rts_distinct_query(&d, st, p, 9999);
    both = rts_distinct_query(&d, st, p, 31000);
    e3 = rts_distinct_query(&d, st, p, 60000); /* bucket 0 out */
    CHECK(fabs(e0 - 1000) < 1000 * 3 * SE);
    CHECK(fabs(both - 2000) < 2000 * 3 * SE);
    CHECK(fabs(e3 - 1000) < 1000 * 3 * SE);
    /* the merged cache (newest bucket) and a merge of the same panes agree */
    CHECK_NEAR(rts_distinct_query(&d, st, p, 31000), rts_distinct_query(&d, st, p, 59999), 0);
    CHECK_NEAR(rts_distinct_query(&d, st, p, 89999), e3, 0);
    CHECK_NEAR(rts_distinct_query(&d, st, p, 90000), 0, 0);

    /* a late event lands in its own pane: bucket 1 */
    CHECK_INT(rts_distinct_add(&d, st, p, 15000, vh(7, 1)), 0);
    CHECK_NEAR(rts_distinct_query(&d, st, p, 19999), e0 + 1, 1.5);
    CHECK_NEAR(rts_distinct_query(&d, st, p, 79999), e3 + 1, 1.5);
    CHECK_NEAR(rts_distinct_query(&d, st, p, 80000), e3, 0);
    /* too old: bucket <= 3 - 6 */
    CHECK_INT(rts_distinct_add(&d, st, p, -20001, vh(7, 2)), 1);
    CHECK_INT(rts_distinct_add(&d, st, p, -20000, vh(7, 2)), 0); /* bucket -2 */
    CHECK_INT(rts_distinct_add(&d, st, p, INT64_MIN, vh(7, 3)), 1);
    CHECK_NEAR(rts_distinct_query(&d, st, p, 31000), both + 2, 2.5);

    /* after bucket 3 has left the window the next add goes back to sparse */
    CHECK_INT(rts_distinct_add(&d, st, p, 95000, vh(8, 1)), 0);
    CHECK_INT(rts_distinct_is_dense(st, p), 0);
    CHECK_INT(in_use(p), 0);
    CHECK_NEAR(rts_distinct_query(&d, st, p, 95000), 1, 0);
    /* too old in sparse mode: the same rule (bucket 9 - 6 = 3) */
    CHECK_INT(rts_distinct_add(&d, st, p, 39999, vh(8, 2)), 1);
    CHECK_INT(rts_distinct_add(&d, st, p, 40000, vh(8, 2)), 0);
    CHECK_NEAR(rts_distinct_query(&d, st, p, 95000), 2, 0);
    rts_hll_pool_free(p);
}

TEST(pool_exhausted)
{
    struct rts_distinct_spec d = {60000, 6, 2};
    struct rts_hll_pool *p = pool(&d, 1);
    struct rts_hll_pool *none = pool(&d, 0);
    struct rts_hll_pool_stats s;
    void *a = st_a, *b = st_b;
    int i;

    memset(st_a, 0, sizeof(st_a));
    memset(st_b, 0, sizeof(st_b));
    for (i = 0; i < 3; i++) {
        CHECK_INT(rts_distinct_add(&d, a, p, 100 + i, vh(9, (uint64_t)i)), 0);
    }
    CHECK_INT(rts_distinct_is_dense(a, p), 1);
    /* key b needs a sketch too: none left, a's has not expired */
    CHECK_INT(rts_distinct_add(&d, b, p, 100, vh(10, 'x')), 0);
    CHECK_INT(rts_distinct_add(&d, b, p, 200, vh(10, 'y')), 0);
    CHECK_INT(rts_distinct_add(&d, b, p, 300, vh(10, 'z')), 0); /* replaces x */
    CHECK_INT(rts_distinct_is_dense(b, p), 0);
    rts_hll_pool_stats(p, &s);
    CHECK_INT(s.exhausted, 1);
    CHECK_INT(s.in_use, 1);
    CHECK_NEAR(rts_distinct_query(&d, b, p, 300), 2, 0);        /* an undercount: 3 seen */
    CHECK_INT(rts_distinct_add(&d, b, p, 300, vh(10, 'x')), 0); /* replaces y */
    CHECK_NEAR(rts_distinct_query(&d, b, p, 300), 2, 0);
    /* a late value older than every entry is the one dropped */
    CHECK_INT(rts_distinct_add(&d, b, p, 50, vh(10, 'w')), 0);
    CHECK_NEAR(rts_distinct_query(&d, b, p, 300), 2, 0);
    rts_hll_pool_stats(p, &s);
    CHECK_INT(s.exhausted, 3);

    /* a pool of 0 sketches: every key stays sparse, every overflow counted */
    memset(st_a, 0, sizeof(st_a));
    for (i = 0; i < 10; i++) {
        CHECK_INT(rts_distinct_add(&d, a, none, 1000 + i, vh(11, (uint64_t)i)), 0);
    }
    CHECK_NEAR(rts_distinct_query(&d, a, none, 1009), 2, 0);
    rts_hll_pool_stats(none, &s);
    CHECK_INT(s.exhausted, 8);
    CHECK_INT(s.in_use, 0);
    rts_hll_pool_free(none);
    rts_hll_pool_free(p);
}

/* A quiet key's expired sketch is taken back when the pool runs dry. */
TEST(pool_reclaim)
{
    struct rts_distinct_spec d = {60000, 6, 2};
    struct rts_hll_pool *p = pool(&d, 1);
    struct rts_hll_pool_stats s;
    void *a = st_a, *b = st_b;
    int i;

    memset(st_a, 0, sizeof(st_a));
    memset(st_b, 0, sizeof(st_b));
    for (i = 0; i < 3; i++) {
        CHECK_INT(rts_distinct_add(&d, a, p, 1000 + i, vh(12, (uint64_t)i)), 0);
    }
    CHECK_INT(rts_distinct_is_dense(a, p), 1);
    /* b at 59999: a's bucket 0 is still live; at 60000 it is not */
    for (i = 0; i < 3; i++) {
        CHECK_INT(rts_distinct_add(&d, b, p, 59999, vh(13, (uint64_t)i)), 0);
    }
    CHECK_INT(rts_distinct_is_dense(b, p), 0);
    memset(st_b, 0, sizeof(st_b));
    for (i = 0; i < 3; i++) {
        CHECK_INT(rts_distinct_add(&d, b, p, 60000, vh(13, (uint64_t)i)), 0);
    }
    CHECK_INT(rts_distinct_is_dense(b, p), 1);
    CHECK_INT(rts_distinct_is_dense(a, p), 0); /* a sees the generation changed */
    rts_hll_pool_stats(p, &s);
    CHECK_INT(s.reclaimed, 1);
    CHECK_INT(s.in_use, 1);
    CHECK_INT(s.exhausted, 1);
    CHECK_NEAR(rts_distinct_query(&d, a, p, 60000), 0, 0);
    CHECK_NEAR(rts_distinct_query(&d, b, p, 60000), 3, 0.05);
    /* a comes back: sparse again, without touching b's sketch */
    CHECK_INT(rts_distinct_add(&d, a, p, 70000, vh(12, 9)), 0);
    CHECK_NEAR(rts_distinct_query(&d, a, p, 70000), 1, 0);
    rts_distinct_release(&d, a, p);
    CHECK_INT(in_use(p), 1);
    CHECK_NEAR(rts_distinct_query(&d, b, p, 60000), 3, 0.05);
    rts_distinct_release(&d, b, p);
    CHECK_INT(in_use(p), 0);
    rts_hll_pool_free(p);
}

/* Past the inline entries a key moves to a list block: still exact, at the
 * exact window edges, up to RTS_HLL_LIST_CAP values; one more goes dense and
 * the list block goes back. */
TEST(list_tier)
{
    struct rts_distinct_spec d = {60000, 6, 4}; /* r = 10 s */
    struct rts_hll_pool *p = pool_lists(&d, 1, 2);
    struct rts_hll_pool_stats s;
    void *st = st_a;
    uint64_t i;

    memset(st_a, 0, sizeof(st_a));
    for (i = 0; i < 4; i++) {
        CHECK_INT(rts_distinct_add(&d, st, p, 1000 + (int64_t)i, vh(20, i)), 0);
    }
    CHECK_INT(rts_distinct_is_list(st, p), 0);
    CHECK_INT(rts_distinct_add(&d, st, p, 1004, vh(20, 4)), 0); /* the 5th live value */
    CHECK_INT(rts_distinct_is_list(st, p), 1);
    CHECK_INT(rts_distinct_is_dense(st, p), 0);
    CHECK_INT(lists_in_use(p), 1);
    CHECK_NEAR(rts_distinct_query(&d, st, p, 1004), 5, 0);
    /* the moved values and the new ones are one set: duplicates count once */
    for (i = 0; i < 5; i++) {
        CHECK_INT(rts_distinct_add(&d, st, p, 2000, vh(20, i)), 0);
    }
    CHECK_NEAR(rts_distinct_query(&d, st, p, 2000), 5, 0);
    for (i = 5; i < RTS_HLL_LIST_CAP; i++) {
        CHECK_INT(rts_distinct_add(&d, st, p, 3000, vh(20, i)), 0);
    }
    CHECK_INT(rts_distinct_is_list(st, p), 1);
    CHECK_NEAR(rts_distinct_query(&d, st, p, 3000), RTS_HLL_LIST_CAP, 0);
    /* exact edges: 0..4 last seen at 2000, the rest at 3000 */
    CHECK_NEAR(rts_distinct_query(&d, st, p, 61999), RTS_HLL_LIST_CAP, 0);
    CHECK_NEAR(rts_distinct_query(&d, st, p, 62000), RTS_HLL_LIST_CAP - 5, 0);
    CHECK_NEAR(rts_distinct_query(&d, st, p, 63000), 0, 0);
    CHECK_NEAR(rts_distinct_query(&d, st, p, 2500), 5, 0);
    /* one more live value: dense, the list block back in the pool */
    CHECK_INT(rts_distinct_add(&d, st, p, 3001, vh(20, 1000)), 0);
    CHECK_INT(rts_distinct_is_dense(st, p), 1);
    CHECK_INT(rts_distinct_is_list(st, p), 0);
    CHECK_INT(lists_in_use(p), 0);
    CHECK(fabs(rts_distinct_query(&d, st, p, 3001) - (RTS_HLL_LIST_CAP + 1)) <
          (RTS_HLL_LIST_CAP + 1) * 3 * SE);
    rts_hll_pool_stats(p, &s);
    CHECK_INT(s.in_use, 1);
    CHECK_INT(s.lists_max, 2);
    CHECK_INT(s.exhausted, 0);
    rts_distinct_release(&d, st, p);
    CHECK_INT(in_use(p), 0);
    rts_hll_pool_free(p);
}

/* A list's entries that left the window are reused; when all have, the next
 * add gives the block back (late by at most one resolution). */
TEST(list_expiry_and_reuse)
{
    struct rts_distinct_spec d = {60000, 6, 2}; /* r = 10 s */
    struct rts_hll_pool *p = pool_lists(&d, 0, 1);
    void *st = st_a;
    uint64_t i;

    memset(st_a, 0, sizeof(st_a));
    for (i = 0; i < 10; i++) {
        CHECK_INT(rts_distinct_add(&d, st, p, 1000 * (int64_t)i, vh(21, i)), 0);
    }
    CHECK_INT(rts_distinct_is_list(st, p), 1);
    CHECK_NEAR(rts_distinct_query(&d, st, p, 9000), 10, 0);
    /* at 65000 the values seen at 0..5000 have left the window: 4 live, and
     * 6 new ones reuse the free entries */
    for (i = 10; i < 16; i++) {
        CHECK_INT(rts_distinct_add(&d, st, p, 65000, vh(21, i)), 0);
    }
    CHECK_NEAR(rts_distinct_query(&d, st, p, 65000), 10, 0);
    CHECK_NEAR(rts_distinct_query(&d, st, p, 68999), 7, 0); /* 6000..8000 out */
    CHECK_NEAR(rts_distinct_query(&d, st, p, 69000), 6, 0); /* 9000 out */
    CHECK_NEAR(rts_distinct_query(&d, st, p, 124999), 6, 0);
    CHECK_NEAR(rts_distinct_query(&d, st, p, 125000), 0, 0);
    /* every value has expired, but not yet by a resolution: the block stays */
    CHECK_INT(rts_distinct_add(&d, st, p, 125000, vh(21, 99)), 0);
    CHECK_INT(rts_distinct_is_list(st, p), 1);
    CHECK_NEAR(rts_distinct_query(&d, st, p, 125000), 1, 0);
    /* 60 s + 10 s after the newest value: back inline, exact */
    CHECK_INT(rts_distinct_add(&d, st, p, 195000, vh(21, 100)), 0);
    CHECK_INT(rts_distinct_is_list(st, p), 0);
    CHECK_INT(lists_in_use(p), 0);
    CHECK_NEAR(rts_distinct_query(&d, st, p, 195000), 1, 0);
    /* late values in list mode: the latest sighting counts, as inline */
    for (i = 0; i < 3; i++) {
        CHECK_INT(rts_distinct_add(&d, st, p, 196000, vh(22, i)), 0);
    }
    CHECK_INT(rts_distinct_is_list(st, p), 1);
    CHECK_INT(rts_distinct_add(&d, st, p, 150000, vh(22, 7)), 0); /* bucket 15 of 19: live */
    CHECK_NEAR(rts_distinct_query(&d, st, p, 196000), 5, 0);
    CHECK_NEAR(rts_distinct_query(&d, st, p, 209999), 5, 0);
    CHECK_NEAR(rts_distinct_query(&d, st, p, 210000), 4, 0);      /* the late one out */
    CHECK_INT(rts_distinct_add(&d, st, p, 130000, vh(22, 8)), 1); /* too old: bucket 13 */
    rts_distinct_release(&d, st, p);
    CHECK_INT(lists_in_use(p), 0);
    rts_hll_pool_free(p);
}

/* No list block to be had: a key goes from inline to dense, or, with no
 * sketch either, drops its least recent value (counted). A quiet key's
 * expired list is taken back for another key. */
TEST(list_pool_exhausted_and_reclaim)
{
    struct rts_distinct_spec d = {60000, 6, 2};
    struct rts_hll_pool *p = pool_lists(&d, 1, 1);
    struct rts_hll_pool_stats s;
    void *a = st_a, *b = st_b;
    uint64_t i;

    memset(st_a, 0, sizeof(st_a));
    memset(st_b, 0, sizeof(st_b));
    for (i = 0; i < 3; i++) {
        CHECK_INT(rts_distinct_add(&d, a, p, 1000, vh(23, i)), 0);
        CHECK_INT(rts_distinct_add(&d, b, p, 1000, vh(24, i)), 0);
    }
    CHECK_INT(rts_distinct_is_list(a, p), 1);
    CHECK_INT(rts_distinct_is_dense(b, p), 1); /* the only list block is a's */
    CHECK_NEAR(rts_distinct_query(&d, a, p, 1000), 3, 0);
    CHECK_NEAR(rts_distinct_query(&d, b, p, 1000), 3, 0.05);
    rts_distinct_release(&d, b, p);
    /* at 70000 a's list has expired (60 s + one resolution after 1000): b takes it */
    for (i = 0; i < 3; i++) {
        CHECK_INT(rts_distinct_add(&d, b, p, 69999, vh(25, i)), 0);
    }
    CHECK_INT(rts_distinct_is_dense(b, p), 1); /* not yet: the sketch */
    rts_distinct_release(&d, b, p);
    CHECK_INT(in_use(p), 0);
    rts_hll_pool_free(p);

    p = pool_lists(&d, 0, 1);
    memset(st_a, 0, sizeof(st_a));
    memset(st_b, 0, sizeof(st_b));
    for (i = 0; i < 3; i++) {
        CHECK_INT(rts_distinct_add(&d, a, p, 1000, vh(23, i)), 0);
    }
    CHECK_INT(rts_distinct_is_list(a, p), 1);
    for (i = 0; i < 3; i++) {
        CHECK_INT(rts_distinct_add(&d, b, p, 69999, vh(25, i)), 0);
    }
    CHECK_INT(rts_distinct_is_list(b, p), 0); /* a's block still counts: dropped one */
    CHECK_NEAR(rts_distinct_query(&d, b, p, 69999), 2, 0);
    rts_hll_pool_stats(p, &s);
    CHECK_INT(s.exhausted, 1);
    CHECK_INT(rts_distinct_add(&d, b, p, 71000, vh(25, 3)), 0);
    CHECK_INT(rts_distinct_is_list(b, p), 1); /* taken back from a */
    CHECK_INT(rts_distinct_is_list(a, p), 0);
    CHECK_NEAR(rts_distinct_query(&d, b, p, 71000), 3, 0);
    CHECK_NEAR(rts_distinct_query(&d, a, p, 71000), 0, 0);
    rts_hll_pool_stats(p, &s);
    CHECK_INT(s.reclaimed, 1);
    CHECK_INT(s.lists_in_use, 1);
    /* a comes back: inline, without touching b's block */
    CHECK_INT(rts_distinct_add(&d, a, p, 72000, vh(23, 9)), 0);
    CHECK_NEAR(rts_distinct_query(&d, a, p, 72000), 1, 0);
    CHECK_NEAR(rts_distinct_query(&d, b, p, 72000), 3, 0);
    rts_distinct_release(&d, a, p);
    CHECK_INT(lists_in_use(p), 1);
    rts_distinct_release(&d, b, p);
    CHECK_INT(lists_in_use(p), 0);
    rts_hll_pool_free(p);

    /* inline entries as many as a list holds: no list blocks */
    d.sparse_cap = RTS_HLL_LIST_CAP;
    p = pool_lists(&d, 1, 8);
    rts_hll_pool_stats(p, &s);
    CHECK_INT(s.lists_max, 0);
    rts_hll_pool_free(p);
}

TEST(extreme_times)
{
    struct rts_distinct_spec d = {32, 32, 2}; /* r = 1 ms */
    struct rts_distinct_spec big = {INT64_MAX, 4, 2};
    struct rts_hll_pool *p = pool(&d, 2);
    struct rts_hll_pool *pb = pool(&big, 2);
    void *st = st_a;
    uint64_t i;

    memset(st_a, 0, sizeof(st_a));
    CHECK_INT(rts_distinct_add(&d, st, p, INT64_MIN, vh(14, 0)), 0);
    CHECK_INT(rts_distinct_add(&d, st, p, INT64_MIN + 1, vh(14, 1)), 0);
    CHECK_NEAR(rts_distinct_query(&d, st, p, INT64_MIN + 1), 2, 0);
    CHECK_NEAR(rts_distinct_query(&d, st, p, INT64_MIN + 32), 1, 0);
    CHECK_INT(rts_distinct_add(&d, st, p, INT64_MIN + 2, vh(14, 2)), 0); /* promote */
    CHECK_INT(rts_distinct_is_dense(st, p), 1);
    CHECK_NEAR(rts_distinct_query(&d, st, p, INT64_MIN + 2), 3, 0.05);
    CHECK_NEAR(rts_distinct_query(&d, st, p, INT64_MAX), 0, 0);
    /* one jump to the end of time: the sketch is returned */
    CHECK_INT(rts_distinct_add(&d, st, p, INT64_MAX, vh(14, 3)), 0);
    CHECK_INT(rts_distinct_is_dense(st, p), 0);
    CHECK_INT(rts_distinct_add(&d, st, p, INT64_MIN, vh(14, 4)), 1);
    for (i = 4; i < 10; i++) {
        CHECK_INT(rts_distinct_add(&d, st, p, INT64_MAX - (int64_t)i, vh(14, i)), 0);
    }
    CHECK_INT(rts_distinct_is_dense(st, p), 1);
    CHECK_NEAR(rts_distinct_query(&d, st, p, INT64_MAX), 7, 0.05);
    CHECK_NEAR(rts_distinct_query(&d, st, p, INT64_MAX - 7), 3, 0.05);
    CHECK_INT(rts_distinct_add(&d, st, p, INT64_MAX - 32, vh(14, 99)), 1);
    rts_distinct_release(&d, st, p);

    memset(st_a, 0, sizeof(st_a));
    for (i = 0; i < 5; i++) {
        CHECK_INT(rts_distinct_add(&big, st, pb, i % 2 ? INT64_MAX : 1, vh(15, i)), 0);
    }
    CHECK_INT(rts_distinct_is_dense(st, pb), 1);
    CHECK_NEAR(rts_distinct_query(&big, st, pb, INT64_MAX), 5, 0.05);
    rts_distinct_release(&big, st, pb);
    CHECK_INT(in_use(pb), 0);
    rts_hll_pool_free(pb);
    rts_hll_pool_free(p);
}

/* Dense mode against a brute-force model that keeps every applied add: the
 * window at q is the register-wise max over the adds whose bucket is in
 * (q - n, q] and still in the ring (N - n, N]. Covers the merged copy kept by
 * adds, the incremental expiry of leaving panes (few values per pane) and the
 * full rebuild (many), late events, too-old events and queries at, after and
 * before the newest bucket. */
struct ref_add {
    int64_t b;
    uint32_t idx;
    uint8_t rank;
};

static struct ref_add ref[40000];

static uint64_t rs = 0x853c49e6748fea9bULL;

static uint64_t rnd(void)
{
    rs ^= rs << 13;
    rs ^= rs >> 7;
    rs ^= rs << 17;
    return rs;
}

static int64_t fdiv(int64_t a, int64_t b)
{
    return a / b - (a % b < 0);
}

TEST(dense_against_model)
{
    static const struct {
        uint32_t n;
        uint64_t universe;
        int burst, steps;
    } cfg[] = {
        {2, 50, 1, 3000},   {5, 30, 1, 3000},      {32, 40, 1, 3000},
        {32, 300, 3, 3000}, {32, 20000, 150, 200}, {8, 5000, 40, 400},
    };
    static uint8_t regs[RTS_HLL_M];
    int bad = 0;
    size_t c;

    for (c = 0; c < sizeof(cfg) / sizeof(cfg[0]); c++) {
        const int64_t r = 1000;
        struct rts_distinct_spec d = {(int64_t)cfg[c].n * r, cfg[c].n, 1};
        struct rts_hll_pool *p = pool(&d, 1);
        int64_t newest = 5000, top;
        size_t nref = 0, j;
        int step, k;

        memset(st_a, 0, sizeof(st_a));
        for (k = 0; k < 2; k++) { /* promote at once: cap 1 */
            uint64_t h = vh(100 + c, 1000000 + (uint64_t)k);
            uint64_t w = h << RTS_HLL_P;

            CHECK_INT(rts_distinct_add(&d, st_a, p, newest, h), 0);
            ref[nref].b = fdiv(newest, r);
            ref[nref].idx = (uint32_t)(h >> 52);
            ref[nref].rank = (uint8_t)(w ? __builtin_clzll(w) + 1 : 53);
            nref++;
        }
        top = fdiv(newest, r);
        for (step = 0; step < cfg[c].steps; step++) {
            uint64_t kind = rnd() % 20;
            int64_t ts, q;
            double got, want;

            if (kind < 12) {
                ts = newest + (int64_t)(rnd() % 400);
            } else if (kind < 14) { /* a jump, short of emptying the window */
                ts = newest + (int64_t)(rnd() % ((cfg[c].n - 1) * (uint64_t)r + 1));
            } else {
                ts = newest - (int64_t)(rnd() % ((cfg[c].n + 1) * (uint64_t)r)); /* late */
            }
            for (k = 0; k < cfg[c].burst; k++) {
                uint64_t h = vh(100 + c, rnd() % cfg[c].universe);
                uint64_t w = h << RTS_HLL_P;
                int64_t b = fdiv(ts, r);
                int too_old = b <= top - (int64_t)cfg[c].n;
                int rc = rts_distinct_add(&d, st_a, p, ts, h);

                bad += rc != too_old;
                if (rc == 0 && nref < sizeof(ref) / sizeof(ref[0])) {
                    ref[nref].b = b;
                    ref[nref].idx = (uint32_t)(h >> 52);
                    ref[nref].rank = (uint8_t)(w ? __builtin_clzll(w) + 1 : 53);
                    nref++;
                    if (b > top) {
                        top = b;
                    }
                    if (ts > newest) {
                        newest = ts;
                    }
                }
            }
            bad += !rts_distinct_is_dense(st_a, p);
            /* query before, at and after the newest bucket */
            q = newest - (int64_t)((cfg[c].n + 1) * (uint64_t)r) +
                (int64_t)(rnd() % (2 * (cfg[c].n + 1) * (uint64_t)r));
            if (rnd() % 3 == 0) {
                q = newest; /* the cached path */
            }
            memset(regs, 0, sizeof(regs));
            for (j = 0; j < nref; j++) {
                int64_t b = ref[j].b, qb = fdiv(q, r);

                if (b <= qb && b > qb - (int64_t)cfg[c].n && b > top - (int64_t)cfg[c].n &&
                    ref[j].rank > regs[ref[j].idx]) {
                    regs[ref[j].idx] = ref[j].rank;
                }
            }
            want = rts_hll_estimate(regs);
            got = rts_distinct_query(&d, st_a, p, q);
            if (!(fabs(got - want) <= 1e-9 * (want + 1))) {
                if (bad++ < 5) {
                    fprintf(stderr, "cfg %zu step %d q %lld: got %.6f want %.6f\n", c, step,
                            (long long)q, got, want);
                }
            }
        }
        CHECK(nref < sizeof(ref) / sizeof(ref[0]));
        rts_distinct_release(&d, st_a, p);
        CHECK_INT(in_use(p), 0);
        rts_hll_pool_free(p);
    }
    CHECK_INT(bad, 0);
}

/* Accuracy: @trials sketches of @n distinct values each (every value added
 * twice, spread over a few panes of a 24h window); returns the mean signed
 * relative error and the worst absolute one. */
static void accuracy(struct rts_hll_pool *p, uint64_t n, int trials, double *mean, double *worst)
{
    struct rts_distinct_spec d = {86400000, 32, 16};
    int64_t t0 = 1700000000000LL;
    double sum = 0, w = 0;
    int tr;

    for (tr = 0; tr < trials; tr++) {
        uint64_t seed = 1000 + n * 131 + (uint64_t)tr, i;
        double est, err;

        memset(st_a, 0, sizeof(st_a));
        for (i = 0; i < n; i++) {
            int64_t t = t0 + (int64_t)(i * 3 * 86400000ULL / 4 / n); /* 3/4 of the window */

            rts_distinct_add(&d, st_a, p, t, vh(seed, i));
            rts_distinct_add(&d, st_a, p, t + 1000, vh(seed, i));
        }
        est = rts_distinct_query(&d, st_a, p, t0 + 86400000 / 4 * 3 + 1000);
        rts_distinct_release(&d, st_a, p);
        err = (est - (double)n) / (double)n;
        sum += err;
        if (fabs(err) > w) {
            w = fabs(err);
        }
    }
    *mean = sum / trials;
    *worst = w;
}

TEST(accuracy)
{
    static const struct {
        uint64_t n;
        int trials;
    } runs[] = {
        {1000, 30},  {3000, 20},  {5000, 20},   {10000, 30},
        {20000, 20}, {50000, 10}, {100000, 10}, {1000000, 3},
    };
    struct rts_distinct_spec d = {86400000, 32, 16};
    struct rts_hll_pool *p = pool(&d, 1);
    size_t i;

    for (i = 0; i < sizeof(runs) / sizeof(runs[0]); i++) {
        double mean, worst;

        accuracy(p, runs[i].n, runs[i].trials, &mean, &worst);
        fprintf(stderr, "  n=%-8llu trials=%-3d mean err %+.4f%%  worst |err| %.4f%%\n",
                (unsigned long long)runs[i].n, runs[i].trials, mean * 100, worst * 100);
        CHECK(worst <= 3 * SE);
        /* the mean of k trials has standard error SE/sqrt(k) */
        CHECK(fabs(mean) <= 3 * SE / sqrt(runs[i].trials));
    }
    CHECK_INT(in_use(p), 0);
    rts_hll_pool_free(p);
}

int main(void)
{
    RUN(sizes_and_checks);
    RUN(sparse_exact_edges);
    RUN(sparse_reuse);
    RUN(promote_and_back);
    RUN(promotion_fold);
    RUN(dense_sliding_and_too_old);
    RUN(pool_exhausted);
    RUN(pool_reclaim);
    RUN(list_tier);
    RUN(list_expiry_and_reuse);
    RUN(list_pool_exhausted_and_reclaim);
    RUN(extreme_times);
    RUN(dense_against_model);
    RUN(accuracy);
    return TEST_EXIT();
}
