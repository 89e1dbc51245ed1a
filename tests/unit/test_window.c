/*
 * test_window.c - sliding event-time windows (window.h) on hand-made event
 * sequences: aggregates, expiry, bucket edges, out-of-order and too-old events,
 * negative and extreme timestamps, and a randomized comparison against a
 * brute-force model that keeps every event; exact windows (held events) by
 * hand (edges, order, ties, overflow, age) and against the same kind of model.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "feature/window.h"
#include "test.h"

#define STATE_MAX 16384

/* A state block as the state table hands it out: 8-aligned, zeroed. */
static uint64_t state[STATE_MAX / 8];

static void *fresh(const struct rts_win_spec *w)
{
    CHECK(rts_win_size(w) <= sizeof(state));
    memset(state, 0, sizeof(state));
    return state;
}

static struct rts_win_agg at(const struct rts_win_spec *w, int64_t ts)
{
    struct rts_win_agg a;

    rts_win_query(w, state, ts, &a);
    return a;
}

TEST(sizes)
{
    struct rts_win_spec cnt = {300000, 32, 0, 0};
    struct rts_win_spec summax = {86400000, 32, RTS_WIN_SUM | RTS_WIN_MAX, 0};
    struct rts_win_spec sum = {30LL * 86400000, 32, RTS_WIN_SUM, 0};
    struct rts_win_spec all = {1000, 3, RTS_WIN_SUM | RTS_WIN_MIN | RTS_WIN_MAX, 0};
    struct rts_win_spec bad = {0, 32, 0, 0};

    CHECK_INT(rts_win_size(&cnt), 8 + 32 * 4);
    CHECK_INT(rts_win_size(&summax), 8 + 32 * 4 + 2 * 32 * 8);
    CHECK_INT(rts_win_size(&summax), 648);
    CHECK_INT(rts_win_size(&sum), 8 + 32 * 4 + 32 * 8);
    CHECK_INT(rts_win_size(&all), 8 + 16 + 3 * 3 * 8); /* 3 counts padded to 16 */
    CHECK_INT(rts_win_size(&all) % 8, 0);
    CHECK_INT(rts_win_resolution_ms(&cnt), 9375);
    CHECK_INT(rts_win_resolution_ms(&summax), 2700000);
    CHECK_INT(rts_win_resolution_ms(&all), 334); /* ceil(1000 / 3) */
    CHECK_INT(rts_win_check(&cnt, NULL), RTS_ERR_OK);
    CHECK_INT(rts_win_check(&bad, NULL), RTS_ERR_INVAL);
    bad.width_ms = 10;
    bad.nbuckets = 0;
    CHECK_INT(rts_win_check(&bad, NULL), RTS_ERR_INVAL);
    bad.nbuckets = 4;
    bad.aggs = 8;
    CHECK_INT(rts_win_check(&bad, NULL), RTS_ERR_INVAL);
}

TEST(empty)
{
    struct rts_win_spec w = {60000, 6, RTS_WIN_SUM | RTS_WIN_MIN | RTS_WIN_MAX, 0};
    struct rts_win_agg a;

    fresh(&w);
    a = at(&w, 0);
    CHECK_NEAR(a.count, 0, 0);
    CHECK_NEAR(a.sum, 0, 0);
    CHECK(isnan(a.min) && isnan(a.max));
    a = at(&w, -123456789);
    CHECK_NEAR(a.count, 0, 0);
}

/* 1-minute window of 6 buckets of 10 s. */
TEST(aggregates_and_expiry)
{
    struct rts_win_spec w = {60000, 6, RTS_WIN_SUM | RTS_WIN_MIN | RTS_WIN_MAX, 0};
    struct rts_win_agg a;

    fresh(&w);
    CHECK_INT(rts_win_add(&w, state, 1000, 5.0), 0);   /* bucket 0 */
    CHECK_INT(rts_win_add(&w, state, 2000, 3.0), 0);   /* bucket 0 */
    CHECK_INT(rts_win_add(&w, state, 15000, 10.0), 0); /* bucket 1 */
    CHECK_INT(rts_win_add(&w, state, 42000, -1.5), 0); /* bucket 4 */

    a = at(&w, 42000);
    CHECK_NEAR(a.count, 4, 0);
    CHECK_NEAR(a.sum, 16.5, 0);
    CHECK_NEAR(a.sum / a.count, 4.125, 0);
    CHECK_NEAR(a.min, -1.5, 0);
    CHECK_NEAR(a.max, 10.0, 0);

    a = at(&w, 59999); /* buckets 0..5 */
    CHECK_NEAR(a.count, 4, 0);

    a = at(&w, 60000); /* buckets 1..6: the events at 1000 and 2000 expired */
    CHECK_NEAR(a.count, 2, 0);
    CHECK_NEAR(a.sum, 8.5, 0);
    CHECK_NEAR(a.sum / a.count, 4.25, 0);
    CHECK_NEAR(a.min, -1.5, 0);
    CHECK_NEAR(a.max, 10.0, 0);

    a = at(&w, 70000); /* buckets 2..7 */
    CHECK_NEAR(a.count, 1, 0);
    CHECK_NEAR(a.sum, -1.5, 0);
    CHECK_NEAR(a.min, -1.5, 0);
    CHECK_NEAR(a.max, -1.5, 0);

    a = at(&w, 99999); /* buckets 4..9 */
    CHECK_NEAR(a.count, 1, 0);
    a = at(&w, 100000); /* buckets 5..10: everything expired */
    CHECK_NEAR(a.count, 0, 0);
    CHECK_NEAR(a.sum, 0, 0);
    CHECK(isnan(a.min) && isnan(a.max));

    /* The window moves on with new events; the old slot 0 is reused. */
    CHECK_INT(rts_win_add(&w, state, 120500, 7.0), 0); /* bucket 12 = slot 0 */
    a = at(&w, 120500);
    CHECK_NEAR(a.count, 1, 0);
    CHECK_NEAR(a.sum, 7.0, 0);
    CHECK_NEAR(a.min, 7.0, 0);
    CHECK_NEAR(a.max, 7.0, 0);
}

TEST(count_only)
{
    struct rts_win_spec w = {300000, 32, 0, 0}; /* 5m, r = 9375 */
    struct rts_win_agg a;
    int i;

    fresh(&w);
    for (i = 0; i < 10; i++) {
        CHECK_INT(rts_win_add(&w, state, 1700000000000LL + i * 1000, 99.0), 0);
    }
    a = at(&w, 1700000009000LL);
    CHECK_NEAR(a.count, 10, 0);
    CHECK_NEAR(a.sum, 0, 0); /* not kept */
    CHECK(isnan(a.min) && isnan(a.max));
    /* Five minutes after the last event: all out (ages >= 300000 - 9375 + 1). */
    a = at(&w, 1700000009000LL + 300000);
    CHECK_NEAR(a.count, 0, 0);
}

/* The resolution rule of window.h, at each side of each edge. */
TEST(bucket_edges)
{
    struct rts_win_spec w = {60000, 6, RTS_WIN_SUM, 0};
    struct rts_win_agg a;

    fresh(&w);
    CHECK_INT(rts_win_add(&w, state, 9999, 1.0), 0);  /* last ms of bucket 0 */
    CHECK_INT(rts_win_add(&w, state, 10000, 2.0), 0); /* first ms of bucket 1 */

    /* At 59999 the event at 9999 has age 50000 = (n-1)r: always counted. */
    a = at(&w, 59999);
    CHECK_NEAR(a.sum, 3.0, 0);
    /* At 60000 it has age 50001, in the uncertain band, in the dropped bucket 0. */
    a = at(&w, 60000);
    CHECK_NEAR(a.sum, 2.0, 0);
    /* The event at 10000: at 69999 its age is 59999 < W and it is in. */
    a = at(&w, 69999);
    CHECK_NEAR(a.sum, 2.0, 0);
    /* At exactly W later it is out. */
    a = at(&w, 70000);
    CHECK_NEAR(a.sum, 0.0, 0);

    /* A query earlier than every event sees nothing (newer buckets excluded). */
    a = at(&w, 9999);
    CHECK_NEAR(a.sum, 1.0, 0);
    a = at(&w, 0);
    CHECK_NEAR(a.sum, 1.0, 0); /* the event at 9999 shares bucket 0 with ts 0 */
    a = at(&w, -1);
    CHECK_NEAR(a.sum, 0.0, 0);
}

/* width not divisible by nbuckets: the span is n * r = 128 ms, not 100. */
TEST(uneven_resolution)
{
    struct rts_win_spec w = {100, 32, RTS_WIN_SUM, 0};
    struct rts_win_agg a;

    CHECK_INT(rts_win_resolution_ms(&w), 4);
    fresh(&w);
    CHECK_INT(rts_win_add(&w, state, 1000, 1.0), 0); /* bucket 250 */
    a = at(&w, 1000 + 124);                          /* (n-1) r = 124: in */
    CHECK_NEAR(a.count, 1, 0);
    a = at(&w, 1000 + 127); /* bucket 281: (249, 281] still holds 250 */
    CHECK_NEAR(a.count, 1, 0);
    a = at(&w, 1000 + 128); /* n r = 128: out */
    CHECK_NEAR(a.count, 0, 0);
}

TEST(out_of_order)
{
    struct rts_win_spec w = {60000, 6, RTS_WIN_SUM | RTS_WIN_MIN | RTS_WIN_MAX, 0};
    struct rts_win_agg a;

    fresh(&w);
    CHECK_INT(rts_win_add(&w, state, 30000, 4.0), 0); /* bucket 3 */
    CHECK_INT(rts_win_add(&w, state, 10000, 1.0), 0); /* late, bucket 1 */
    CHECK_INT(rts_win_add(&w, state, 35000, 8.0), 0); /* bucket 3 */
    CHECK_INT(rts_win_add(&w, state, 12000, 2.0), 0); /* late, bucket 1 */

    a = at(&w, 35000);
    CHECK_NEAR(a.count, 4, 0);
    CHECK_NEAR(a.sum, 15.0, 0);
    CHECK_NEAR(a.min, 1.0, 0);
    CHECK_NEAR(a.max, 8.0, 0);

    /* The late events landed in bucket 1, which leaves the window at 70000. */
    a = at(&w, 69999);
    CHECK_NEAR(a.count, 4, 0);
    a = at(&w, 70000);
    CHECK_NEAR(a.count, 2, 0);
    CHECK_NEAR(a.sum, 12.0, 0);
    CHECK_NEAR(a.min, 4.0, 0);

    /* Seen from 12000, bucket 3 is in the future: excluded. */
    a = at(&w, 12000);
    CHECK_NEAR(a.count, 2, 0);
    CHECK_NEAR(a.sum, 3.0, 0);
    CHECK_NEAR(a.max, 2.0, 0);
    /* Seen from 30000, the event at 35000 shares the bucket: included. */
    a = at(&w, 30000);
    CHECK_NEAR(a.count, 4, 0);
}

TEST(too_old)
{
    struct rts_win_spec w = {60000, 6, RTS_WIN_SUM | RTS_WIN_MAX, 0};
    uint64_t before[STATE_MAX / 8];
    struct rts_win_agg a;

    fresh(&w);
    CHECK_INT(rts_win_add(&w, state, 100000, 1.0), 0); /* bucket 10 */
    memcpy(before, state, sizeof(before));
    CHECK_INT(rts_win_add(&w, state, 49999, 1000.0), 1); /* bucket 4 = 10 - 6 */
    CHECK_INT(rts_win_add(&w, state, -5, 1000.0), 1);
    CHECK_INT(rts_win_add(&w, state, INT64_MIN, 1000.0), 1);
    CHECK(memcmp(before, state, sizeof(before)) == 0); /* not applied */
    a = at(&w, 100000);
    CHECK_NEAR(a.count, 1, 0);
    CHECK_NEAR(a.max, 1.0, 0);

    CHECK_INT(rts_win_add(&w, state, 50000, 2.0), 0); /* bucket 5: the oldest kept */
    a = at(&w, 100000);
    CHECK_NEAR(a.count, 2, 0);
    CHECK_NEAR(a.sum, 3.0, 0);
    CHECK_NEAR(a.max, 2.0, 0);
    a = at(&w, 110000); /* bucket 11: bucket 5 is out */
    CHECK_NEAR(a.count, 1, 0);
}

TEST(negative_times)
{
    struct rts_win_spec w = {60000, 6, RTS_WIN_SUM | RTS_WIN_MIN, 0};
    struct rts_win_agg a;

    fresh(&w);
    /* floor: -1 and -10000 are bucket -1, -10001 is bucket -2 */
    CHECK_INT(rts_win_add(&w, state, -10001, 1.0), 0);
    CHECK_INT(rts_win_add(&w, state, -10000, 2.0), 0);
    CHECK_INT(rts_win_add(&w, state, -1, 4.0), 0);
    CHECK_INT(rts_win_add(&w, state, 5000, 8.0), 0); /* bucket 0 */

    a = at(&w, 5000);
    CHECK_NEAR(a.sum, 15.0, 0);
    CHECK_NEAR(a.min, 1.0, 0);
    a = at(&w, -1); /* bucket -1: bucket 0 is newer */
    CHECK_NEAR(a.sum, 7.0, 0);
    a = at(&w, -10001); /* bucket -2 only */
    CHECK_NEAR(a.sum, 1.0, 0);
    a = at(&w, 39999); /* buckets -2..3 */
    CHECK_NEAR(a.sum, 15.0, 0);
    a = at(&w, 40000); /* buckets -1..4 */
    CHECK_NEAR(a.sum, 14.0, 0);
    a = at(&w, 50000); /* buckets 0..5 */
    CHECK_NEAR(a.sum, 8.0, 0);
    CHECK_NEAR(a.min, 8.0, 0);
    /* Bucket -6 is too old once bucket 0 is the newest. */
    CHECK_INT(rts_win_add(&w, state, -50001, 1.0), 1);
    CHECK_INT(rts_win_add(&w, state, -50000, 16.0), 0); /* bucket -5 */
    a = at(&w, 0);
    CHECK_NEAR(a.sum, 31.0, 0);
}

TEST(extreme_times)
{
    struct rts_win_spec w = {32, 32, RTS_WIN_SUM | RTS_WIN_MAX, 0}; /* r = 1 ms */
    struct rts_win_spec big = {INT64_MAX, 32, RTS_WIN_SUM, 0};
    struct rts_win_agg a;

    fresh(&w);
    CHECK_INT(rts_win_add(&w, state, INT64_MAX, 1.0), 0);
    CHECK_INT(rts_win_add(&w, state, INT64_MAX - 1, 2.0), 0);
    CHECK_INT(rts_win_add(&w, state, INT64_MAX - 31, 4.0), 0);
    CHECK_INT(rts_win_add(&w, state, INT64_MAX - 32, 8.0), 1);
    CHECK_INT(rts_win_add(&w, state, INT64_MIN, 8.0), 1);
    a = at(&w, INT64_MAX);
    CHECK_NEAR(a.sum, 7.0, 0);
    CHECK_NEAR(a.max, 4.0, 0);
    a = at(&w, INT64_MAX - 31);
    CHECK_NEAR(a.sum, 4.0, 0);
    a = at(&w, INT64_MIN);
    CHECK_NEAR(a.count, 0, 0);
    a = at(&w, 0);
    CHECK_NEAR(a.count, 0, 0);

    fresh(&w);
    CHECK_INT(rts_win_add(&w, state, INT64_MIN, 1.0), 0);
    CHECK_INT(rts_win_add(&w, state, INT64_MIN + 5, 2.0), 0);
    a = at(&w, INT64_MIN + 31);
    CHECK_NEAR(a.sum, 3.0, 0);
    a = at(&w, INT64_MIN + 32);
    CHECK_NEAR(a.sum, 2.0, 0);
    a = at(&w, INT64_MAX);
    CHECK_NEAR(a.count, 0, 0);
    /* From the oldest to the newest representable time in one jump. */
    CHECK_INT(rts_win_add(&w, state, INT64_MAX, 16.0), 0);
    a = at(&w, INT64_MAX);
    CHECK_NEAR(a.count, 1, 0);
    CHECK_NEAR(a.sum, 16.0, 0);
    a = at(&w, INT64_MIN + 5);
    CHECK_NEAR(a.count, 0, 0);

    /* A window as wide as time itself: r = ceil(INT64_MAX / 32). */
    CHECK_INT(rts_win_resolution_ms(&big), INT64_MAX / 32 + 1);
    fresh(&big);
    CHECK_INT(rts_win_add(&big, state, INT64_MIN, 1.0), 0); /* bucket -32 */
    a = at(&big, INT64_MIN);
    CHECK_NEAR(a.sum, 1.0, 0);
    a = at(&big, -1); /* bucket -1: (-33, -1] */
    CHECK_NEAR(a.sum, 1.0, 0);
    a = at(&big, 0); /* bucket 0: (-32, 0] */
    CHECK_NEAR(a.sum, 0.0, 0);
    CHECK_INT(rts_win_add(&big, state, INT64_MAX, 2.0), 0); /* bucket 31 */
    CHECK_INT(rts_win_add(&big, state, 0, 4.0), 0);         /* bucket 0, late */
    CHECK_INT(rts_win_add(&big, state, -1, 8.0), 1);        /* bucket -1 = 31 - 32 */
    a = at(&big, INT64_MAX);
    CHECK_NEAR(a.sum, 6.0, 0);
    a = at(&big, 0);
    CHECK_NEAR(a.sum, 4.0, 0);
}

/* Jumps of every size over a small ring: the slots skipped over are emptied. */
TEST(jumps)
{
    struct rts_win_spec w = {8, 8, RTS_WIN_SUM, 0}; /* r = 1, 8 slots */
    struct rts_win_agg a;
    int64_t t = 0;
    int gap, i;

    for (gap = 1; gap <= 20; gap++) {
        fresh(&w);
        /* fill every slot, then jump by gap and check only the survivors */
        for (i = 0; i < 8; i++) {
            CHECK_INT(rts_win_add(&w, state, t + i, 1.0), 0);
        }
        CHECK_INT(rts_win_add(&w, state, t + 7 + gap, 100.0), 0);
        a = at(&w, t + 7 + gap);
        /* survivors: ordinals in (t + 7 + gap - 8, t + 7] */
        CHECK_NEAR(a.sum, 100.0 + (gap < 8 ? 8 - gap : 0), 0);
        t += 13; /* start at another slot each round */
    }
}

/* Brute-force model: every applied event kept, the window recomputed from the
 * definition in window.h: buckets (b(ts) - n, b(ts)], less those that already
 * left the ring (<= newest - n) when ts is older than the newest event. */
struct ref_event {
    int64_t t;
    double v;
};

static int64_t rng_state = 88172645463325252LL;

static int64_t rnd(void)
{
    uint64_t x = (uint64_t)rng_state;

    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    rng_state = (int64_t)x;
    return (int64_t)(x >> 1);
}

static void ref_query(const struct rts_win_spec *w, const struct ref_event *ev, int nev,
                      int64_t newest_b, int64_t ts, struct rts_win_agg *out)
{
    int64_t r = rts_win_resolution_ms(w);
    int64_t q = rts_floor_div(ts, r);
    int i;

    out->count = out->sum = 0;
    out->min = out->max = NAN;
    for (i = 0; i < nev; i++) {
        int64_t b = rts_floor_div(ev[i].t, r);

        /* buckets that left the ring are gone for late queries too */
        if (b <= q && b > q - (int64_t)w->nbuckets && b > newest_b - (int64_t)w->nbuckets) {
            if (out->count == 0 || ev[i].v < out->min) {
                out->min = ev[i].v;
            }
            if (out->count == 0 || ev[i].v > out->max) {
                out->max = ev[i].v;
            }
            out->count += 1;
            out->sum += ev[i].v;
        }
    }
}

TEST(against_model)
{
    static const struct rts_win_spec specs[] = {
        {1, 1, RTS_WIN_SUM | RTS_WIN_MIN | RTS_WIN_MAX, 0},
        {10, 1, RTS_WIN_SUM | RTS_WIN_MIN | RTS_WIN_MAX, 0},
        {30, 3, RTS_WIN_SUM | RTS_WIN_MIN | RTS_WIN_MAX, 0},
        {100, 8, RTS_WIN_SUM | RTS_WIN_MIN | RTS_WIN_MAX, 0},
        {64, 32, RTS_WIN_MAX, 0},
        {1000, 7, RTS_WIN_MIN, 0},
        {500, 5, 0, 0},
    };
    static struct ref_event ev[4000];
    int si, step, nev, mismatches = 0;

    for (si = 0; si < (int)(sizeof(specs) / sizeof(specs[0])); si++) {
        const struct rts_win_spec *w = &specs[si];
        int64_t span = rts_win_resolution_ms(w) * w->nbuckets;
        int64_t newest = -1000; /* a base time below zero: floor division matters */
        int64_t newest_b = 0;
        int seen = 0;

        fresh(w);
        nev = 0;
        for (step = 0; step < 4000; step++) {
            int64_t kind = rnd() % 10, t;
            double v = (double)(rnd() % 201 - 100); /* integers: sums are exact */
            struct rts_win_agg got, want;
            int rc, too_old;

            if (kind < 5) {
                t = newest + rnd() % (span / 4 + 2); /* mostly forward */
            } else if (kind < 8) {
                t = newest - rnd() % (span + span / 2 + 1); /* late, some too old */
            } else if (kind < 9) {
                t = newest + rnd() % (3 * span + 1); /* jump */
            } else {
                t = newest;
            }
            too_old = seen &&
                      rts_floor_div(t, rts_win_resolution_ms(w)) <= newest_b - (int64_t)w->nbuckets;
            rc = rts_win_add(w, state, t, v);
            if (rc != too_old) {
                mismatches++;
            }
            if (rc == 0) {
                ev[nev].t = t;
                ev[nev].v = w->aggs ? v : 0;
                nev++;
                if (!seen || rts_floor_div(t, rts_win_resolution_ms(w)) > newest_b) {
                    newest_b = rts_floor_div(t, rts_win_resolution_ms(w));
                }
                seen = 1;
                if (t > newest) {
                    newest = t;
                }
            }
            /* query around the newest time, before and after */
            t = newest - span - 3 + rnd() % (2 * span + 6);
            rts_win_query(w, state, t, &got);
            ref_query(w, ev, nev, newest_b, t, &want);
            if (got.count != want.count || ((w->aggs & RTS_WIN_SUM) && got.sum != want.sum) ||
                ((w->aggs & RTS_WIN_MIN) &&
                 !(got.min == want.min || (isnan(got.min) && isnan(want.min)))) ||
                ((w->aggs & RTS_WIN_MAX) &&
                 !(got.max == want.max || (isnan(got.max) && isnan(want.max))))) {
                if (mismatches++ < 5) {
                    fprintf(stderr, "spec %d step %d ts %lld: got %g/%g/%g/%g want %g/%g/%g/%g\n",
                            si, step, (long long)t, got.count, got.sum, got.min, got.max,
                            want.count, want.sum, want.min, want.max);
                }
            }
        }
        CHECK(nev > 1000);
    }
    CHECK_INT(mismatches, 0);
}

/* ---- exact windows ---- */

static uint64_t state2[STATE_MAX / 8];

/* Bit for bit, NaN equal to NaN. */
static int same(double a, double b)
{
    return (isnan(a) && isnan(b)) || memcmp(&a, &b, sizeof(a)) == 0;
}

static int same_agg(const struct rts_win_agg *a, const struct rts_win_agg *b)
{
    return same(a->count, b->count) && same(a->sum, b->sum) && same(a->min, b->min) &&
           same(a->max, b->max);
}

/* What the ring alone says: the same block read without the held events
 * (they come after the ring, which a spec without exact reads unchanged). */
static struct rts_win_agg ring_at(const struct rts_win_spec *w, const void *st, int64_t ts)
{
    struct rts_win_spec r = *w;
    struct rts_win_agg a;

    r.exact = 0;
    CHECK_INT(rts_win_query(&r, st, ts, &a), RTS_WIN_RING);
    return a;
}

TEST(exact_sizes)
{
    struct rts_win_spec w = {60000, 6, RTS_WIN_SUM | RTS_WIN_MIN | RTS_WIN_MAX, 4};
    struct rts_win_spec c = {300000, 32, 0, 64};

    CHECK_INT(rts_win_size(&w), 8 + 24 + 3 * 6 * 8 + 8 + 4 * 16);
    CHECK_INT(rts_win_size(&c), 8 + 32 * 4 + 8 + 64 * 16);
    CHECK_INT(rts_win_check(&w, NULL), RTS_ERR_OK);
    w.exact = RTS_WIN_MAX_EXACT;
    CHECK_INT(rts_win_check(&w, NULL), RTS_ERR_OK);
    w.exact = RTS_WIN_MAX_EXACT + 1;
    CHECK_INT(rts_win_check(&w, NULL), RTS_ERR_INVAL);
}

/* 1-minute window, 6 buckets (r = 10 s, S = 60 s), 4 events held. */
TEST(exact_by_hand)
{
    struct rts_win_spec w = {60000, 6, RTS_WIN_SUM | RTS_WIN_MIN | RTS_WIN_MAX, 4};
    static const struct rts_win_held evs[] = {
        {1000, 1.0},   {2000, 2.0},  {30000, 4.0},   {20000, 3.0},
        {30000, -1.0}, {30000, 2.5}, {10000, 100.0},
    };
    static const int64_t probes[] = {0, 1000, 30000, 60999, 61000, 62000, 70000, 80000, 90001};
    struct rts_win_agg a, b, r;

    fresh(&w);
    CHECK_INT(rts_win_query(&w, state, 5000, &a), RTS_WIN_EXACT); /* empty */
    CHECK_NEAR(a.count, 0, 0);
    CHECK_NEAR(a.sum, 0, 0);
    CHECK(isnan(a.min) && isnan(a.max));

    CHECK_INT(rts_win_add(&w, state, 1000, 1.0), 0);
    CHECK_INT(rts_win_add(&w, state, 2000, 2.0), 0);
    CHECK_INT(rts_win_add(&w, state, 30000, 4.0), 0);
    /* the edge: 1000 = ts - W + 1 is in, 1000 = ts - W is out */
    CHECK_INT(rts_win_query(&w, state, 60999, &a), RTS_WIN_EXACT);
    CHECK_NEAR(a.count, 3, 0);
    CHECK_NEAR(a.sum, 7, 0);
    CHECK_NEAR(a.min, 1, 0);
    CHECK_NEAR(a.max, 4, 0);
    CHECK_INT(rts_win_query(&w, state, 61000, &a), RTS_WIN_EXACT);
    CHECK_NEAR(a.count, 2, 0);
    CHECK_NEAR(a.sum, 6, 0);
    CHECK_NEAR(a.min, 2, 0);
    r = ring_at(&w, state, 61000); /* the ring lost bucket 0 (1000 and 2000) */
    CHECK_NEAR(r.count, 1, 0);
    /* an event after its time but inside the window: in place */
    CHECK_INT(rts_win_query(&w, state, 30000, &a), RTS_WIN_EXACT);
    CHECK_NEAR(a.count, 3, 0);
    CHECK_INT(rts_win_add(&w, state, 20000, 3.0), 0);              /* 4 held: full */
    CHECK_INT(rts_win_query(&w, state, 61000, &a), RTS_WIN_EXACT); /* the oldest is the edge */
    CHECK_NEAR(a.count, 3, 0);
    CHECK_NEAR(a.sum, 9, 0);
    CHECK_NEAR(a.min, 2, 0);
    CHECK_NEAR(a.max, 4, 0);
    /* one ms earlier the oldest is inside: full, something older might have
     * been dropped for room (nothing was): the ring answers, an overflow */
    CHECK_INT(rts_win_query(&w, state, 60999, &a), RTS_WIN_OVERFLOW);
    r = ring_at(&w, state, 60999);
    CHECK(same_agg(&a, &r));
    /* a tie in time, lower value: (1000, 1) is dropped for room, so the
     * window at 61000 might have lost an event (it did not, but 2000 > 1000):
     * the ring answers, counted as an overflow */
    CHECK_INT(rts_win_add(&w, state, 30000, -1.0), 0);
    CHECK_INT(rts_win_query(&w, state, 61000, &a), RTS_WIN_OVERFLOW);
    r = ring_at(&w, state, 61000);
    CHECK(same_agg(&a, &r));
    CHECK_NEAR(a.count, 3, 0); /* buckets 1..6: 20000, 30000 twice */
    CHECK_NEAR(a.sum, 6, 0);
    CHECK_INT(rts_win_query(&w, state, 62000, &a), RTS_WIN_EXACT); /* oldest 2000 = the edge */
    CHECK_NEAR(a.count, 3, 0);
    CHECK_NEAR(a.sum, 6, 0);
    CHECK_NEAR(a.min, -1, 0);
    CHECK_NEAR(a.max, 4, 0);
    CHECK_INT(rts_win_add(&w, state, 30000, 2.5), 0); /* drops (2000, 2) */
    /* older than everything held, set full: not kept (the ring takes it) */
    CHECK_INT(rts_win_add(&w, state, 10000, 100.0), 0);
    CHECK_INT(rts_win_query(&w, state, 80000, &a), RTS_WIN_EXACT);
    CHECK_NEAR(a.count, 3, 0); /* (20000, 80000]: 30000 x 3 */
    CHECK_NEAR(a.sum, 5.5, 0);
    CHECK_NEAR(a.min, -1, 0);
    CHECK_NEAR(a.max, 4, 0);
    CHECK_INT(rts_win_query(&w, state, 69999, &a), RTS_WIN_OVERFLOW);
    CHECK_NEAR(a.max, 100, 0); /* the ring's, which has it */

    /* the held events do not depend on arrival order: the same events
     * backwards give the same answers, bit for bit */
    memset(state2, 0, sizeof(state2));
    for (int i = (int)(sizeof(evs) / sizeof(evs[0])) - 1; i >= 0; i--) {
        CHECK_INT(rts_win_add(&w, state2, evs[i].t, evs[i].v), 0);
    }
    for (size_t i = 0; i < sizeof(probes) / sizeof(probes[0]); i++) {
        enum rts_win_answer x = rts_win_query(&w, state, probes[i], &a);
        CHECK_INT(rts_win_query(&w, state2, probes[i], &b), x);
        CHECK(same_agg(&a, &b));
    }
}

/* Sums add in ascending (time, value) order, whatever the arrival order; -0
 * is held as 0. */
TEST(exact_sum_order)
{
    struct rts_win_spec w = {3600000, 32, RTS_WIN_SUM | RTS_WIN_MIN, 8};
    volatile double x = 0.1, y = 0.2, z = 0.3;
    double want = 0.0;
    struct rts_win_agg a;

    want += x;
    want += y;
    want += z;
    CHECK(want != x + (y + z)); /* the order shows */
    fresh(&w);
    CHECK_INT(rts_win_add(&w, state, 3000, 0.3), 0);
    CHECK_INT(rts_win_add(&w, state, 1000, 0.1), 0);
    CHECK_INT(rts_win_add(&w, state, 2000, 0.2), 0);
    CHECK_INT(rts_win_query(&w, state, 3000, &a), RTS_WIN_EXACT);
    CHECK(same(a.sum, want));
    fresh(&w);
    CHECK_INT(rts_win_add(&w, state, 5000, 0.2), 0); /* one time: by value */
    CHECK_INT(rts_win_add(&w, state, 5000, 0.3), 0);
    CHECK_INT(rts_win_add(&w, state, 5000, 0.1), 0);
    CHECK_INT(rts_win_query(&w, state, 5000, &a), RTS_WIN_EXACT);
    CHECK(same(a.sum, want));
    CHECK_INT(rts_win_add(&w, state, 9000000, -0.0), 0);
    CHECK_INT(rts_win_query(&w, state, 9000000, &a), RTS_WIN_EXACT);
    CHECK_NEAR(a.count, 1, 0);
    CHECK(a.min == 0 && !signbit(a.min) && !signbit(a.sum));
}

/* 100 ms window, 4 buckets (r = 25, S = 100), 8 held: events dropped for
 * age (at or before t - W - S) and late events. */
TEST(exact_age)
{
    struct rts_win_spec w = {100, 4, RTS_WIN_SUM, 8};
    struct rts_win_agg a;

    fresh(&w);
    CHECK_INT(rts_win_add(&w, state, 1000, 1.0), 0);
    CHECK_INT(rts_win_add(&w, state, 1050, 2.0), 0);
    CHECK_INT(rts_win_query(&w, state, 949, &a), RTS_WIN_OVERFLOW); /* before newest - S */
    CHECK_INT(rts_win_query(&w, state, 950, &a), RTS_WIN_EXACT);
    CHECK_NEAR(a.count, 0, 0);
    CHECK_INT(rts_win_query(&w, state, 1099, &a), RTS_WIN_EXACT);
    CHECK_NEAR(a.count, 2, 0);
    CHECK_INT(rts_win_add(&w, state, 1250, 3.0), 0); /* drops 1000 and 1050 (<= 1050) */
    CHECK_INT(rts_win_query(&w, state, 1250, &a), RTS_WIN_EXACT);
    CHECK_NEAR(a.count, 1, 0);
    CHECK_INT(rts_win_query(&w, state, 1149, &a), RTS_WIN_OVERFLOW); /* 1050 may be gone */
    CHECK_INT(rts_win_query(&w, state, 1150, &a), RTS_WIN_EXACT);
    CHECK_NEAR(a.count, 0, 0);
    /* too old for the ring (bucket 44 <= 50 - 4), held all the same */
    CHECK_INT(rts_win_add(&w, state, 1100, 5.0), 1);
    CHECK_INT(rts_win_query(&w, state, 1199, &a), RTS_WIN_EXACT);
    CHECK_NEAR(a.count, 1, 0);
    CHECK_NEAR(a.sum, 5, 0);
    CHECK_INT(rts_win_query(&w, state, 1200, &a), RTS_WIN_EXACT); /* (1100, 1200] */
    CHECK_NEAR(a.count, 0, 0);
    CHECK_INT(rts_win_query(&w, state, 1250, &a), RTS_WIN_EXACT);
    CHECK_NEAR(a.count, 1, 0);
    CHECK_NEAR(a.sum, 3, 0);
}

/* The held events as window.h defines them, kept by brute force. */
struct held_model {
    struct rts_win_held e[512];
    uint32_t n;
};

static int held_cmp(const void *a, const void *b)
{
    const struct rts_win_held *x = a, *y = b;

    if (x->t != y->t) {
        return x->t < y->t ? -1 : 1;
    }
    return x->v < y->v ? -1 : x->v > y->v;
}

static void model_add(struct held_model *m, const struct rts_win_spec *w, int64_t t, double v)
{
    int64_t keep = w->width_ms + (int64_t)w->nbuckets * rts_win_resolution_ms(w);
    uint32_t k = 0;

    m->e[m->n].t = t;
    m->e[m->n++].v = rts_win_held_value(v);
    qsort(m->e, m->n, sizeof(m->e[0]), held_cmp);
    if (m->n > w->exact) {
        memmove(m->e, m->e + 1, (m->n - 1) * sizeof(m->e[0]));
        m->n--;
    }
    while (k < m->n && m->e[k].t <= t - keep) {
        k++;
    }
    memmove(m->e, m->e + k, (m->n - k) * sizeof(m->e[0]));
    m->n -= k;
}

/* Random events (forward, late, too old for the ring, jumps, equal times,
 * equal values, -0) against a model that keeps every event: an exact answer
 * is the model's over (ts - W, ts], summed in (time, value) order, bit for
 * bit; an overflow is the ring's; with room for every event nothing near the
 * newest ever overflows. The held events rebuilt from a partial copy (what
 * the Redis state reads: how many, the oldest, those newer than ts - W)
 * answer as the original. */
TEST(exact_against_model)
{
    static const struct rts_win_spec specs[] = {
        {100, 4, RTS_WIN_SUM | RTS_WIN_MIN | RTS_WIN_MAX, 4},
        {100, 8, RTS_WIN_SUM | RTS_WIN_MIN | RTS_WIN_MAX, 16},
        {1000, 7, RTS_WIN_SUM | RTS_WIN_MAX, 64},
        {30, 3, RTS_WIN_MIN, 1},
        {500, 32, 0, 8},
        {200, 8, RTS_WIN_SUM, 500}, /* room for every event */
    };
    static struct ref_event ev[2000];
    static struct rts_win_held win[2000];
    static struct held_model m;
    size_t exact = 0, overflow = 0, mismatches = 0;

    for (size_t si = 0; si < sizeof(specs) / sizeof(specs[0]); si++) {
        const struct rts_win_spec *w = &specs[si];
        int64_t span = rts_win_resolution_ms(w) * w->nbuckets, newest = -500;
        int nev = 0;

        CHECK(rts_win_size(w) <= sizeof(state));
        fresh(w);
        m.n = 0;
        for (int step = 0; step < 2000; step++) {
            int64_t kind = rnd() % 10, t, ts;
            double v = (double)(rnd() % 2001 - 1000) / 7.0;
            struct rts_win_agg got, want = {0, 0, NAN, NAN}, re;
            enum rts_win_answer by;
            int k = 0;
            uint32_t from;

            if (kind < 5) {
                t = newest + rnd() % (span / 4 + 2);
            } else if (kind < 8) {
                t = newest - rnd() % (2 * span + 1); /* late, some too old for the ring */
            } else if (kind < 9) {
                t = newest + rnd() % (3 * span + 1);
            } else {
                t = newest;
                v = rnd() % 3 ? -0.0 : v; /* equal times, zeros of both signs */
            }
            rts_win_add(w, state, t, v);
            model_add(&m, w, t, v);
            ev[nev].t = t;
            ev[nev++].v = rts_win_held_value(w->aggs ? v : 0);
            newest = t > newest ? t : newest;
            ts = newest - span - 3 + rnd() % (2 * span + 6);

            by = rts_win_query(w, state, ts, &got);
            if (by == RTS_WIN_EXACT) {
                exact++;
                for (int i = 0; i < nev; i++) {
                    if (ev[i].t <= ts && ev[i].t > ts - w->width_ms) {
                        win[k].t = ev[i].t;
                        win[k++].v = ev[i].v;
                    }
                }
                qsort(win, (size_t)k, sizeof(win[0]), held_cmp);
                for (int i = 0; i < k; i++) {
                    want.sum += win[i].v;
                    want.min = i == 0 || win[i].v < want.min ? win[i].v : want.min;
                    want.max = i == 0 || win[i].v > want.max ? win[i].v : want.max;
                }
                want.count = k;
                want.sum = w->aggs & RTS_WIN_SUM ? want.sum : 0;
                want.min = w->aggs & RTS_WIN_MIN ? want.min : NAN;
                want.max = w->aggs & RTS_WIN_MAX ? want.max : NAN;
            } else {
                overflow++;
                CHECK_INT(by, RTS_WIN_OVERFLOW);
                want = ring_at(w, state, ts);
                /* nothing dropped for room or age: never an overflow */
                if (w->exact >= 500 && ts >= newest - span) {
                    mismatches++;
                }
            }
            if (!same_agg(&got, &want) && mismatches++ < 5) {
                fprintf(stderr,
                        "spec %zu step %d ts %lld (%s): got %g/%.17g/%g/%g want "
                        "%g/%.17g/%g/%g\n",
                        si, step, (long long)ts, by == RTS_WIN_EXACT ? "exact" : "overflow",
                        got.count, got.sum, got.min, got.max, want.count, want.sum, want.min,
                        want.max);
            }
            /* the rebuilt copy: the ring as is, the held events partial */
            memcpy(state2, state, rts_win_size(w));
            for (from = m.n; from > 0 && m.e[from - 1].t > ts - w->width_ms; from--) {
            }
            rts_win_load_held(w, state2, m.n, m.n ? m.e[0].t : 0, m.e + from, m.n - from);
            if (rts_win_query(w, state2, ts, &re) != by || !same_agg(&got, &re)) {
                if (mismatches++ < 5) {
                    fprintf(stderr, "spec %zu step %d ts %lld: the rebuilt copy differs\n", si,
                            step, (long long)ts);
                }
            }
        }
    }
    CHECK_INT(mismatches, 0);
    CHECK(exact > 3000 && overflow > 1000);
}

int main(void)
{
    RUN(sizes);
    RUN(empty);
    RUN(aggregates_and_expiry);
    RUN(count_only);
    RUN(bucket_edges);
    RUN(uneven_resolution);
    RUN(out_of_order);
    RUN(too_old);
    RUN(negative_times);
    RUN(extreme_times);
    RUN(jumps);
    RUN(against_model);
    RUN(exact_sizes);
    RUN(exact_by_hand);
    RUN(exact_sum_order);
    RUN(exact_age);
    RUN(exact_against_model);
    return TEST_EXIT();
}
