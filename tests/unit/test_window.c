/*
 * test_window.c - sliding event-time windows (window.h) on hand-made event
 * sequences: aggregates, expiry, bucket edges, out-of-order and too-old events,
 * negative and extreme timestamps, and a randomized comparison against a
 * brute-force model that keeps every event.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "feature/window.h"
#include "test.h"

#define STATE_MAX 4096

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
    struct rts_win_spec cnt = {300000, 32, 0};
    struct rts_win_spec summax = {86400000, 32, RTS_WIN_SUM | RTS_WIN_MAX};
    struct rts_win_spec sum = {30LL * 86400000, 32, RTS_WIN_SUM};
    struct rts_win_spec all = {1000, 3, RTS_WIN_SUM | RTS_WIN_MIN | RTS_WIN_MAX};
    struct rts_win_spec bad = {0, 32, 0};

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
    struct rts_win_spec w = {60000, 6, RTS_WIN_SUM | RTS_WIN_MIN | RTS_WIN_MAX};
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
    struct rts_win_spec w = {60000, 6, RTS_WIN_SUM | RTS_WIN_MIN | RTS_WIN_MAX};
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
    struct rts_win_spec w = {300000, 32, 0}; /* 5m, r = 9375 */
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
    struct rts_win_spec w = {60000, 6, RTS_WIN_SUM};
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
    struct rts_win_spec w = {100, 32, RTS_WIN_SUM};
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
    struct rts_win_spec w = {60000, 6, RTS_WIN_SUM | RTS_WIN_MIN | RTS_WIN_MAX};
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
    struct rts_win_spec w = {60000, 6, RTS_WIN_SUM | RTS_WIN_MAX};
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
    struct rts_win_spec w = {60000, 6, RTS_WIN_SUM | RTS_WIN_MIN};
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
    struct rts_win_spec w = {32, 32, RTS_WIN_SUM | RTS_WIN_MAX}; /* r = 1 ms */
    struct rts_win_spec big = {INT64_MAX, 32, RTS_WIN_SUM};
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
    struct rts_win_spec w = {8, 8, RTS_WIN_SUM}; /* r = 1, 8 slots */
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
        {1, 1, RTS_WIN_SUM | RTS_WIN_MIN | RTS_WIN_MAX},
        {10, 1, RTS_WIN_SUM | RTS_WIN_MIN | RTS_WIN_MAX},
        {30, 3, RTS_WIN_SUM | RTS_WIN_MIN | RTS_WIN_MAX},
        {100, 8, RTS_WIN_SUM | RTS_WIN_MIN | RTS_WIN_MAX},
        {64, 32, RTS_WIN_MAX},
        {1000, 7, RTS_WIN_MIN},
        {500, 5, 0},
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
    return TEST_EXIT();
}
