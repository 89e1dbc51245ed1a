/*
 * bench_state.c - the per-event cost of the feature state primitives: keyed
 * state lookups on 1M keys in random order, window add+query and distinct
 * add+query, each the median of several runs; and the bytes per key of the
 * demo feature set (5m count, 24h sum+max, 30d sum, 24h distinct; 32 buckets).
 * Exact windows (exact: N) beside the bucketed window of the same width, in
 * the same run: a 1h sum+max window at an event a minute per key (about 60
 * in the window), held events enough to cover it (128) and too few (16: every
 * query falls back to the ring).
 *
 * Keys are hashed before timing (the router has the hash already). Figures
 * are ns per operation on one thread.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/hash.h"
#include "feature/hll.h"
#include "feature/state.h"
#include "feature/window.h"

#include "bench.h"

#define RUNS 5
#define NKEYS 1000000u
#define KEYLEN 64u
#define DAY 86400000LL

static const struct rts_win_spec win5m = {5 * 60000, 32, 0, 0};
static const struct rts_win_spec win24h = {DAY, 32, RTS_WIN_SUM | RTS_WIN_MAX, 0};
static const struct rts_win_spec win30d = {30 * DAY, 32, RTS_WIN_SUM, 0};
static const struct rts_distinct_spec dist24h = {DAY, 32, 16};
static const struct rts_win_spec win1h = {3600000, 32, RTS_WIN_SUM | RTS_WIN_MAX, 0};
static const struct rts_win_spec win1h_x128 = {3600000, 32, RTS_WIN_SUM | RTS_WIN_MAX, 128};
static const struct rts_win_spec win1h_x16 = {3600000, 32, RTS_WIN_SUM | RTS_WIN_MAX, 16};

static volatile double sink;

static uint64_t rng = 0x9E3779B97F4A7C15ULL;

static uint64_t rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static size_t align8(size_t n)
{
    return (n + 7) & ~(size_t)7;
}

/* The demo value block: the three windows and the distinct state, 8-aligned. */
struct demo_layout {
    size_t w5m, w24h, w30d, d24h, size;
};

static void demo_layout(struct demo_layout *l)
{
    l->w5m = 0;
    l->w24h = l->w5m + align8(rts_win_size(&win5m));
    l->w30d = l->w24h + align8(rts_win_size(&win24h));
    l->d24h = l->w30d + align8(rts_win_size(&win30d));
    l->size = l->d24h + align8(rts_distinct_size(&dist24h));
}

/* ---- keyed state: 1M keys, random access ---- */

struct key {
    char s[16];
    uint32_t len;
    uint64_t hash;
};

static void bench_state(size_t value_size)
{
    const size_t nops = 4000000;
    struct key *keys = calloc(NKEYS, sizeof(*keys));
    struct key *ops = malloc(nops * sizeof(*ops)); /* streamed: the event holds its key */
    double ns[RUNS];
    struct rts_state_table *t;
    struct rts_state_stats s;
    size_t i;
    int run, is_new;

    if (!keys || !ops) {
        fprintf(stderr, "bench_state: out of memory\n");
        exit(2);
    }
    for (i = 0; i < NKEYS; i++) {
        keys[i].len = (uint32_t)snprintf(keys[i].s, sizeof(keys[i].s), "card-%07zu", i);
        keys[i].hash = rts_hash64(keys[i].s, keys[i].len);
    }
    for (i = 0; i < nops; i++) {
        ops[i] = keys[rnd() % NKEYS];
    }
    t = rts_state_new(NKEYS, KEYLEN, value_size, 30 * DAY, NULL);
    if (!t) {
        fprintf(stderr, "bench_state: rts_state_new failed\n");
        exit(2);
    }
    for (i = 0; i < NKEYS; i++) {
        uint64_t *v = rts_state_get(t, keys[i].s, keys[i].len, keys[i].hash, 0, &is_new);

        v[0] = i;
    }
    for (run = 0; run < RUNS; run++) {
        uint64_t t0 = rts_now_ns(), acc = 0;

        for (i = 0; i < nops; i++) {
            const struct key *k = &ops[i];
            uint64_t *v = rts_state_get(t, k->s, k->len, k->hash, 1000 + (int64_t)i, &is_new);

            acc += v[0];
        }
        ns[run] = (double)(rts_now_ns() - t0) / (double)nops;
        sink = (double)acc;
    }
    rts_state_stats(t, &s);
    printf(
        "state_get  1M keys, random, value %5zu B: %7.1f ns/get  (entry %zu B, %.0f MB touched)\n",
        value_size, bench_median(ns, RUNS), s.entry_bytes, (double)s.bytes_committed / 1e6);

    /* insert cost: new keys evicting the LRU tail */
    for (run = 0; run < RUNS; run++) {
        const size_t nnew = 500000;
        uint64_t t0 = rts_now_ns();

        for (i = 0; i < nnew; i++) {
            char k[24];
            uint32_t len = (uint32_t)snprintf(k, sizeof(k), "new-%d-%07zu", run, i);

            rts_state_get(t, k, len, rts_hash64(k, len), 2000, &is_new);
        }
        ns[run] = (double)(rts_now_ns() - t0) / (double)nnew;
    }
    printf(
        "state_get  new key, LRU tail evicted, value %5zu B: %7.1f ns/get (incl. snprintf+hash)\n",
        value_size, bench_median(ns, RUNS));
    rts_state_free(t);
    free(ops);
    free(keys);
}

/* ---- windows ---- */

static void bench_windows(void)
{
    const size_t nev = 2000000, nstates = 100000;
    struct demo_layout l;
    unsigned char *one, *many;
    double ns1[RUNS], nsm[RUNS], nsq[RUNS];
    int run;
    size_t i;

    demo_layout(&l);
    one = calloc(1, l.size);
    many = calloc(nstates, l.size);
    if (!one || !many) {
        exit(2);
    }
    for (run = 0; run < RUNS; run++) {
        int64_t ts = 1700000000000LL;
        uint64_t t0 = rts_now_ns();
        struct rts_win_agg a;
        double acc = 0;

        memset(one, 0, l.size);
        for (i = 0; i < nev; i++) {
            ts += 997; /* ~1 event/s: buckets advance now and then */
            rts_win_query(&win5m, one + l.w5m, ts, &a);
            acc += a.count;
            rts_win_add(&win5m, one + l.w5m, ts, 0);
            rts_win_query(&win24h, one + l.w24h, ts, &a);
            acc += a.sum + a.max;
            rts_win_add(&win24h, one + l.w24h, ts, (double)(i & 255));
            rts_win_query(&win30d, one + l.w30d, ts, &a);
            acc += a.sum / a.count;
            rts_win_add(&win30d, one + l.w30d, ts, (double)(i & 255));
        }
        ns1[run] = (double)(rts_now_ns() - t0) / (double)nev;
        sink = acc;
    }
    for (run = 0; run < RUNS; run++) {
        int64_t ts = 1700000000000LL;
        uint64_t t0;
        struct rts_win_agg a;
        double acc = 0;

        memset(many, 0, nstates * l.size);
        t0 = rts_now_ns();
        for (i = 0; i < nev; i++) {
            unsigned char *st = many + (rnd() % nstates) * l.size;

            ts += 10;
            rts_win_query(&win5m, st + l.w5m, ts, &a);
            acc += a.count;
            rts_win_add(&win5m, st + l.w5m, ts, 0);
            rts_win_query(&win24h, st + l.w24h, ts, &a);
            acc += a.sum + a.max;
            rts_win_add(&win24h, st + l.w24h, ts, (double)(i & 255));
            rts_win_query(&win30d, st + l.w30d, ts, &a);
            acc += a.sum / a.count;
            rts_win_add(&win30d, st + l.w30d, ts, (double)(i & 255));
        }
        nsm[run] = (double)(rts_now_ns() - t0) / (double)nev;
        sink = acc;
    }
    for (run = 0; run < RUNS; run++) {
        uint64_t t0 = rts_now_ns();
        struct rts_win_agg a;
        double acc = 0;

        for (i = 0; i < nev; i++) {
            rts_win_query(&win24h, one + l.w24h, 1700000000000LL + (int64_t)nev * 997, &a);
            acc += a.sum;
        }
        nsq[run] = (double)(rts_now_ns() - t0) / (double)nev;
        sink = acc;
    }
    printf("window     3 demo windows add+query, 1 key      : %7.1f ns/event (%.1f per window)\n",
           bench_median(ns1, RUNS), bench_median(ns1, RUNS) / 3);
    printf("window     3 demo windows add+query, 100k keys  : %7.1f ns/event (%.1f per window)\n",
           bench_median(nsm, RUNS), bench_median(nsm, RUNS) / 3);
    printf("window     24h sum+max query alone (32 buckets) : %7.1f ns/query\n", bench_median(nsq, RUNS));
    free(one);
    free(many);
}

/* ---- exact windows ---- */

/* Query then add for @nev events over @nkeys states of window @w, one event
 * every @step ms of event time on a random key; *ts carries on. Returns the
 * overflows (queries the ring answered for an exact window). */
static uint64_t exact_run(const struct rts_win_spec *w, unsigned char *states, size_t nkeys,
                          size_t nev, int64_t step, int64_t *ts)
{
    size_t sz = align8(rts_win_size(w));
    uint64_t over = 0;
    double acc = 0;

    for (size_t i = 0; i < nev; i++) {
        unsigned char *st = states + (nkeys > 1 ? rnd() % nkeys : 0) * sz;
        struct rts_win_agg a;

        *ts += step;
        over += rts_win_query(w, st, *ts, &a) == RTS_WIN_OVERFLOW;
        acc += a.sum + a.max;
        rts_win_add(w, st, *ts, (double)(i & 255) * 0.25);
    }
    sink = acc;
    return over;
}

/* ns per event (query + add) of window @w: @nkeys keys, an event a minute
 * per key, two hours of events first (not timed), then RUNS timed runs of
 * @nev events each. The specs are interleaved run by run by the caller. */
struct exact_case {
    const struct rts_win_spec *w;
    unsigned char *states;
    int64_t ts;
    double ns[RUNS];
    uint64_t over, queries;
};

static void exact_setup(struct exact_case *c, const struct rts_win_spec *w, size_t nkeys)
{
    c->w = w;
    c->states = calloc(nkeys, align8(rts_win_size(w)));
    c->ts = 1700000000000LL;
    c->over = c->queries = 0;
    if (!c->states) {
        exit(2);
    }
    exact_run(w, c->states, nkeys, 120 * nkeys, 60000 / (int64_t)nkeys, &c->ts);
}

static void bench_exact(size_t nkeys, size_t nev)
{
    struct exact_case c[3];
    const struct rts_win_spec *specs[3] = {&win1h, &win1h_x128, &win1h_x16};
    int64_t step = 60000 / (int64_t)nkeys;

    for (int k = 0; k < 3; k++) {
        exact_setup(&c[k], specs[k], nkeys);
    }
    for (int run = 0; run < RUNS; run++) {
        for (int k = 0; k < 3; k++) {
            uint64_t t0 = rts_now_ns();
            c[k].over += exact_run(c[k].w, c[k].states, nkeys, nev, step, &c[k].ts);
            c[k].ns[run] = (double)(rts_now_ns() - t0) / (double)nev;
            c[k].queries += nev;
        }
    }
    for (int k = 0; k < 3; k++) {
        free(c[k].states);
    }
    {
        double b = bench_median(c[0].ns, RUNS), x128 = bench_median(c[1].ns, RUNS),
               x16 = bench_median(c[2].ns, RUNS);
        printf("exact      1h sum+max add+query, %6zu key%s, 1 ev/min/key: bucketed %6.1f ns, "
               "exact 128 %6.1f ns (%.2fx, %.0f%% overflow), exact 16 %6.1f ns (%.2fx, %.0f%% "
               "overflow)\n",
               nkeys, nkeys > 1 ? "s" : " ", b, x128, x128 / b,
               100.0 * (double)c[1].over / (double)c[1].queries, x16, x16 / b,
               100.0 * (double)c[2].over / (double)c[2].queries);
    }
}

/* ---- distinct ---- */

static double bench_distinct_one(struct rts_hll_pool *p, unsigned char *st, uint64_t nvalues,
                                 int64_t step_ms, size_t nev)
{
    double ns[RUNS];
    int run;
    size_t i;

    for (run = 0; run < RUNS; run++) {
        int64_t ts = 1700000000000LL;
        uint64_t t0;
        double acc = 0;

        rts_distinct_release(&dist24h, st, p);
        t0 = rts_now_ns();
        for (i = 0; i < nev; i++) {
            uint64_t v = rnd() % nvalues;

            ts += step_ms;
            acc += rts_distinct_query(&dist24h, st, p, ts);
            rts_distinct_add(&dist24h, st, p, ts, rts_hash64(&v, sizeof(v)));
        }
        ns[run] = (double)(rts_now_ns() - t0) / (double)nev;
        sink = acc;
    }
    rts_distinct_release(&dist24h, st, p);
    return bench_median(ns, RUNS);
}

static void bench_distinct(void)
{
    struct rts_hll_pool *p = rts_hll_pool_new(&dist24h, 16, 0, NULL);
    unsigned char *st = calloc(1, rts_distinct_size(&dist24h));
    struct rts_hll_pool_stats ps;

    if (!p || !st) {
        exit(2);
    }
    rts_hll_pool_stats(p, &ps);
    /* sparse: 8 merchants, an event a minute */
    printf("distinct   sparse (8 values), add+query         : %7.1f ns/event\n",
           bench_distinct_one(p, st, 8, 60000, 2000000));
    /* dense: 1M values, 100 events/s: queries hit the merged copy, a bucket
     * (45 min) advances every 270k events */
    printf("distinct   dense (1M values, 100 ev/s) add+query: %7.1f ns/event\n",
           bench_distinct_one(p, st, 1000000, 10, 2000000));
    /* dense, 1 event a minute: every 45th event starts a new bucket, whose
     * query merges the 32 panes and whose add rebuilds the merged copy */
    printf("distinct   dense (1M values, 1 ev/min) add+query: %7.1f ns/event\n",
           bench_distinct_one(p, st, 1000000, 60000, 200000));
    /* worst case: every event in a new bucket */
    printf("distinct   dense, new bucket every event        : %7.1f ns/event\n",
           bench_distinct_one(p, st, 1000000, DAY / 32, 20000));
    /* 200 values, an event a minute: past the 16 inline entries, held
     * exactly in a list block, against the same stream in a sketch (a pool
     * without list blocks) */
    {
        struct rts_hll_pool *pl = rts_hll_pool_new(&dist24h, 16, 16, NULL);
        double list, dense;

        if (!pl) {
            exit(2);
        }
        list = bench_distinct_one(pl, st, 200, 60000, 200000);
        dense = bench_distinct_one(p, st, 200, 60000, 200000);
        printf("distinct   200 values, 1 ev/min, add+query: list block %7.1f ns/event, sketch "
               "%7.1f ns/event (%.2fx)\n",
               list, dense, dense / list);
        rts_hll_pool_free(pl);
    }
    printf("distinct   sketch %zu B reserved per dense key (%u panes, merged copy, owners, meta), "
           "committed per touched pane\n",
           ps.bytes_per_sketch, dist24h.nbuckets);
    free(st);
    rts_hll_pool_free(p);
}

static void print_bytes_per_key(void)
{
    struct demo_layout l;
    const uint64_t max_keys = 10000000;
    uint64_t slots = 2;
    size_t entry;

    demo_layout(&l);
    while (slots < 2 * max_keys) {
        slots <<= 1;
    }
    entry = 32 + l.size + KEYLEN;
    printf("bytes/key  demo feature set, 32 buckets:\n");
    printf("             5m count        %5zu\n", rts_win_size(&win5m));
    printf("             24h sum+max     %5zu\n", rts_win_size(&win24h));
    printf("             30d sum         %5zu\n", rts_win_size(&win30d));
    printf("             24h distinct    %5zu (sparse_cap %u)\n", rts_distinct_size(&dist24h),
           dist24h.sparse_cap);
    printf("             value block     %5zu\n", l.size);
    printf("             (an exact window adds 8 + 16 N: 1h sum+max %zu, exact 128 %zu, "
           "exact 16 %zu)\n",
           rts_win_size(&win1h), rts_win_size(&win1h_x128), rts_win_size(&win1h_x16));
    printf("             entry           %5zu (32 header + value + %u key bytes)\n", entry, KEYLEN);
    printf("             index           %5.1f (at 10M keys: %llu slots x 8 B)\n",
           (double)slots * 8 / (double)max_keys, (unsigned long long)slots);
    printf("             total           %5.0f per key\n",
           (double)entry + (double)slots * 8 / (double)max_keys);
}

int main(void)
{
    struct demo_layout l;

    demo_layout(&l);
    print_bytes_per_key();
    bench_state(64);
    bench_state(l.size);
    bench_windows();
    bench_exact(1, 2000000);
    bench_exact(60000, 2000000);
    bench_distinct();
    return 0;
}
