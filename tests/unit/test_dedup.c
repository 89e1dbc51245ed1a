/*
 * test_dedup.c - unit tests of guard/dedup with injected time: option checks;
 * exactness (every id within horizon and capacity is a repeat, no new id is,
 * over 200,000 random ids); the horizon to the millisecond and first-sighting
 * semantics; expiry counts; eviction oldest first; clamped clock; an idle of
 * 2^32 ms that must not alias; backward-shift deletion under forced home-slot
 * collisions, checked step by step against a naive model; save and restore;
 * no allocation after rts_dedup_new(); and stats read from another thread
 * while the owner works (run it under TSan too).
 */
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>

#include "core/buf.h"
#include "core/hash.h"
#include "guard/dedup.h"
#include "test.h"
#include "wrap_alloc.h"

#define MS INT64_C(1000)
#define SEC (1000 * MS)
#define MIN (60 * SEC)

static uint64_t rng_state = 0x9E3779B97F4A7C15u;

static uint64_t rng(void)
{
    uint64_t z = (rng_state += 0x9E3779B97F4A7C15u);

    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9u;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBu;
    return z ^ (z >> 31);
}

static uint64_t id_hash(const char *prefix, long i)
{
    char buf[64];
    int n = snprintf(buf, sizeof(buf), "%s-%ld", prefix, i);

    return rts_hash64(buf, (size_t)n);
}

TEST(opts)
{
    struct rts_errbuf eb = {0};
    struct rts_dedup_stats st;
    struct rts_dedup *d;

    CHECK(rts_dedup_new(999, 10, &eb) == NULL);
    CHECK_INT(eb.code, RTS_ERR_INVAL);
    CHECK(strstr(eb.msg, "dedup.horizon") != NULL);
    CHECK(rts_dedup_new(RTS_DEDUP_MAX_HORIZON_US + 1, 10, &eb) == NULL);
    CHECK(rts_dedup_new(10 * MIN, 0, &eb) == NULL);
    CHECK(strstr(eb.msg, "dedup.max_ids") != NULL);
    CHECK(rts_dedup_new(10 * MIN, RTS_DEDUP_MAX_IDS + 1, &eb) == NULL);

    d = rts_dedup_new(RTS_DEDUP_MAX_HORIZON_US, 1, &eb);
    CHECK(d != NULL);
    CHECK_INT(rts_dedup_seen(d, 7, 0), 0);
    CHECK_INT(rts_dedup_seen(d, 7, 0), 1);
    CHECK_INT(rts_dedup_seen(d, 8, 0), 0); /* evicts 7 */
    CHECK_INT(rts_dedup_seen(d, 7, 0), 0);
    rts_dedup_stats(d, &st);
    CHECK_INT(st.capacity, 1);
    CHECK_INT(st.held, 1);
    CHECK_INT(st.evicted, 2);
    rts_dedup_free(d);
    rts_dedup_free(NULL);

    /* 23 to 34 bytes an id, as documented */
    for (uint64_t n = 1000; n <= 100000000; n = n * 3 + 1) {
        CHECK(rts_dedup_bytes(n) >= 22u * n);
        CHECK(rts_dedup_bytes(n) <= 34u * n);
    }
}

/* Every id held is a repeat; no other id is. */
TEST(exact)
{
    enum { N = 200000 };
    struct rts_dedup *d = rts_dedup_new(10 * MIN, N, NULL);
    struct rts_dedup_stats st;
    int64_t t = 1700000000 * SEC;
    long i, wrong_new = 0, wrong_dup = 0;

    for (i = 0; i < N; i++) {
        wrong_new += rts_dedup_seen(d, id_hash("a", i), t + i) != 0;
    }
    for (i = N - 1; i >= 0; i--) {
        wrong_dup += rts_dedup_seen(d, id_hash("a", i), t + N) != 1;
    }
    CHECK_INT(wrong_new, 0);
    CHECK_INT(wrong_dup, 0);
    /* a different population: all new, and each evicts the oldest of a */
    for (i = 0; i < N / 2; i++) {
        wrong_new += rts_dedup_seen(d, id_hash("b", i), t + N) != 0;
    }
    CHECK_INT(wrong_new, 0);
    for (i = 0; i < N / 2; i++) {
        /* the first half of a went first */
        wrong_dup += rts_dedup_seen(d, id_hash("a", N / 2 + i), t + N) != 1;
    }
    CHECK_INT(wrong_dup, 0);
    rts_dedup_stats(d, &st);
    CHECK_INT(st.checks, 3 * N);
    CHECK_INT(st.duplicates, N + N / 2);
    CHECK_INT(st.evicted, N / 2);
    CHECK_INT(st.expired, 0);
    CHECK_INT(st.held, N);
    rts_dedup_free(d);
}

TEST(horizon)
{
    struct rts_dedup *d = rts_dedup_new(10 * MIN, 100, NULL);
    struct rts_dedup_stats st;
    int64_t t0 = 5 * SEC + 250; /* within a millisecond: times resolve to ms */

    CHECK_INT(rts_dedup_seen(d, 1, t0), 0);
    CHECK_INT(rts_dedup_seen(d, 2, t0 + MIN), 0);
    /* a repeat does not refresh the first sighting */
    CHECK_INT(rts_dedup_seen(d, 1, t0 + 5 * MIN), 1);
    CHECK_INT(rts_dedup_seen(d, 1, t0 + 10 * MIN - MS), 1); /* 599.999 s later */
    rts_dedup_stats(d, &st);
    CHECK_INT(st.expired, 0);
    CHECK_INT(rts_dedup_seen(d, 1, t0 + 10 * MIN), 0); /* 600 s: expired, recorded anew */
    rts_dedup_stats(d, &st);
    CHECK_INT(st.expired, 1);
    CHECK_INT(st.held, 2);
    CHECK_INT(rts_dedup_seen(d, 2, t0 + 11 * MIN - MS), 1);
    /* expiry happens on any call, here a repeat of 1 */
    CHECK_INT(rts_dedup_seen(d, 1, t0 + 11 * MIN), 1);
    rts_dedup_stats(d, &st);
    CHECK_INT(st.expired, 2);
    CHECK_INT(st.held, 1);
    CHECK_INT(st.duplicates, 4);
    CHECK_INT(rts_dedup_seen(d, 2, t0 + 11 * MIN), 0);

    /* the clock never goes back: an earlier time is the latest seen */
    CHECK_INT(rts_dedup_seen(d, 3, t0), 0);
    CHECK_INT(rts_dedup_seen(d, 3, t0 + 21 * MIN - MS), 1);
    CHECK_INT(rts_dedup_seen(d, 3, t0 + 21 * MIN), 0);

    /* an idle longer than the horizon forgets everything */
    CHECK_INT(rts_dedup_seen(d, 4, t0 + 21 * MIN), 0);
    CHECK_INT(rts_dedup_seen(d, 5, t0 + 40 * MIN), 0);
    CHECK_INT(rts_dedup_seen(d, 4, t0 + 40 * MIN), 0);
    rts_dedup_stats(d, &st);
    CHECK_INT(st.held, 2);
    rts_dedup_free(d);

    /* 2^32 ms later the truncated times are equal: no alias */
    d = rts_dedup_new(RTS_DEDUP_MAX_HORIZON_US, 10, NULL);
    CHECK_INT(rts_dedup_seen(d, 9, 0), 0);
    CHECK_INT(rts_dedup_seen(d, 9, (INT64_C(1) << 32) * MS), 0);
    /* just under the longest horizon, then just at it */
    CHECK_INT(rts_dedup_seen(d, 9, (INT64_C(1) << 32) * MS + RTS_DEDUP_MAX_HORIZON_US - MS), 1);
    CHECK_INT(rts_dedup_seen(d, 9, (INT64_C(1) << 32) * MS + RTS_DEDUP_MAX_HORIZON_US), 0);
    rts_dedup_free(d);
}

TEST(eviction_order)
{
    struct rts_dedup *d = rts_dedup_new(10 * MIN, 4, NULL);
    struct rts_dedup_stats st;
    uint64_t id;

    for (id = 1; id <= 5; id++) {
        CHECK_INT(rts_dedup_seen(d, id, SEC), 0); /* 5 evicts 1 */
    }
    for (id = 2; id <= 5; id++) {
        CHECK_INT(rts_dedup_seen(d, id, SEC), 1);
    }
    CHECK_INT(rts_dedup_seen(d, 1, SEC), 0); /* evicts 2 */
    CHECK_INT(rts_dedup_seen(d, 3, SEC), 1);
    CHECK_INT(rts_dedup_seen(d, 4, SEC), 1);
    CHECK_INT(rts_dedup_seen(d, 5, SEC), 1);
    CHECK_INT(rts_dedup_seen(d, 1, SEC), 1);
    CHECK_INT(rts_dedup_seen(d, 2, SEC), 0); /* evicts 3 */
    CHECK_INT(rts_dedup_seen(d, 3, SEC), 0); /* evicts 4 */
    CHECK_INT(rts_dedup_seen(d, 5, SEC), 1);
    rts_dedup_stats(d, &st);
    CHECK_INT(st.evicted, 4);
    CHECK_INT(st.held, 4);
    /* hash 0 is a valid id (stored as 1) */
    rts_dedup_clear(d);
    CHECK_INT(rts_dedup_seen(d, 0, SEC), 0);
    CHECK_INT(rts_dedup_seen(d, 0, SEC), 1);
    rts_dedup_free(d);
}

/* x * inv == 1 (mod 2^64) for odd x, by Newton's iteration. */
static uint64_t inverse(uint64_t x)
{
    uint64_t y = x;

    for (int i = 0; i < 6; i++) {
        y *= 2 - x * y;
    }
    return y;
}

/* A naive model: the FIFO as a plain array, searched linearly. */
struct model {
    uint64_t h[64];
    int64_t t[64];
    int n, cap;
    int64_t horizon_ms, last;
};

static int model_seen(struct model *m, uint64_t h, int64_t now_us)
{
    int64_t ms = now_us / 1000;
    int i;

    if (ms < m->last) {
        ms = m->last;
    }
    m->last = ms;
    while (m->n > 0 && ms - m->t[0] >= m->horizon_ms) {
        memmove(m->h, m->h + 1, (size_t)(m->n - 1) * sizeof(m->h[0]));
        memmove(m->t, m->t + 1, (size_t)(m->n - 1) * sizeof(m->t[0]));
        m->n--;
    }
    for (i = 0; i < m->n; i++) {
        if (m->h[i] == h) {
            return 1;
        }
    }
    if (m->n == m->cap) {
        memmove(m->h, m->h + 1, (size_t)(m->n - 1) * sizeof(m->h[0]));
        memmove(m->t, m->t + 1, (size_t)(m->n - 1) * sizeof(m->t[0]));
        m->n--;
    }
    m->h[m->n] = h;
    m->t[m->n] = ms;
    m->n++;
    return 0;
}

/* Ids crafted to share home slots (h * golden has the same top bits), mixed
 * with random ones, against the model: removal from the middle of long probe
 * runs that wrap around the table's end. */
TEST(collisions_vs_model)
{
    const uint64_t inv = inverse(UINT64_C(0x9E3779B97F4A7C15));
    struct model m = {.cap = 40, .horizon_ms = 2000};
    struct rts_dedup *d = rts_dedup_new(2 * SEC, 40, NULL); /* 64 slots: home = top 6 bits */
    uint64_t pool[160];
    int64_t now = 0;
    long i, mismatches = 0, dups = 0;

    for (i = 0; i < 160; i++) {
        if (i < 60) {
            /* homes 63, 0 and 1 only: runs wrap */
            uint64_t top = (uint64_t)(i % 3 == 0 ? 63 : i % 3 - 1);
            pool[i] = ((top << 58) | (uint64_t)(i + 1)) * inv;
        } else {
            pool[i] = rng();
        }
    }
    for (i = 0; i < 200000; i++) {
        uint64_t h = pool[rng() % 160];
        int a, b;

        now += (int64_t)(rng() % 40) * MS;
        a = rts_dedup_seen(d, h, now);
        b = model_seen(&m, h, now);
        mismatches += a != b;
        dups += a;
    }
    CHECK_INT(mismatches, 0);
    CHECK(dups > 10000); /* the test exercised both answers */
    rts_dedup_free(d);
}

TEST(save_restore)
{
    struct rts_dedup *d = rts_dedup_new(10 * MIN, 1000, NULL);
    struct rts_dedup *e = rts_dedup_new(10 * MIN, 1000, NULL);
    struct rts_dedup *small = rts_dedup_new(5 * MIN, 10, NULL);
    struct rts_errbuf eb = {0};
    struct rts_dedup_stats st;
    struct rts_buf buf = {0};
    long i, wrong = 0;

    for (i = 0; i < 500; i++) {
        CHECK_INT(rts_dedup_seen(d, id_hash("s", i), i * SEC), 0);
    }
    CHECK_INT(rts_dedup_save(d, &buf), RTS_ERR_OK);
    CHECK_INT(buf.len, 32 + 500 * 16);
    CHECK_INT(rts_dedup_restore(e, buf.data, buf.len, &eb), RTS_ERR_OK);
    rts_dedup_stats(e, &st);
    CHECK_INT(st.held, 500);
    /* at 619 s the ids of the first 20 s have expired, in both alike */
    for (i = 0; i < 500; i++) {
        int want = rts_dedup_seen(d, id_hash("s", i), 499 * SEC + 2 * MIN);
        wrong += rts_dedup_seen(e, id_hash("s", i), 499 * SEC + 2 * MIN) != want;
    }
    CHECK_INT(wrong, 0);

    /* into a smaller, shorter set: the newest 10 within 5 min of 499 s */
    CHECK_INT(rts_dedup_restore(small, buf.data, buf.len, &eb), RTS_ERR_OK);
    rts_dedup_stats(small, &st);
    CHECK_INT(st.held, 10);
    CHECK_INT(st.evicted, 490);
    CHECK_INT(rts_dedup_seen(small, id_hash("s", 499), 499 * SEC), 1);
    CHECK_INT(rts_dedup_seen(small, id_hash("s", 490), 499 * SEC), 1);
    CHECK_INT(rts_dedup_seen(small, id_hash("s", 489), 499 * SEC), 0);

    /* truncated or altered saves are refused and leave the set empty */
    CHECK_INT(rts_dedup_restore(e, buf.data, buf.len - 1, &eb), RTS_ERR_PARSE);
    rts_dedup_stats(e, &st);
    CHECK_INT(st.held, 0);
    CHECK_INT(rts_dedup_restore(e, buf.data, 10, &eb), RTS_ERR_PARSE);
    buf.data[0] = 'X';
    CHECK_INT(rts_dedup_restore(e, buf.data, buf.len, &eb), RTS_ERR_PARSE);
    CHECK(strstr(eb.msg, "dedup") != NULL);
    rts_buf_fini(&buf);

    /* an empty set round-trips */
    rts_dedup_clear(d);
    CHECK_INT(rts_dedup_save(d, &buf), RTS_ERR_OK);
    CHECK_INT(rts_dedup_restore(e, buf.data, buf.len, &eb), RTS_ERR_OK);
    rts_buf_fini(&buf);
    rts_dedup_free(d);
    rts_dedup_free(e);
    rts_dedup_free(small);
}

/* After rts_dedup_new, checks (new ids, repeats, evictions, expiry, an idle
 * that empties the set, restore) never allocate. */
TEST(no_alloc)
{
    long at_new = atomic_load(&wrap_allocs);
    struct rts_dedup *d = rts_dedup_new(MIN, 50000, NULL);
    static unsigned char saved[32 + 16 * 16];
    long before, i, dups = 0;
    int64_t now = SEC;

    CHECK(atomic_load(&wrap_allocs) - at_new >= 4); /* the counter does see allocations */
    memset(saved, 0, sizeof(saved));
    memcpy(saved, "RTSDEDUP\1", 9);
    before = atomic_load(&wrap_allocs);
    for (i = 0; i < 500000; i++) {
        now += 200; /* 5000 a second: 60 s hold 300,000 > 50,000 ids */
        dups += rts_dedup_seen(d, (uint64_t)(rng() % 120000), now);
    }
    rts_dedup_seen(d, 1, now + 2 * MIN);
    CHECK_INT(rts_dedup_restore(d, saved, 32, NULL), RTS_ERR_OK);
    CHECK_INT(atomic_load(&wrap_allocs) - before, 0);
    CHECK(dups > 0);
    rts_dedup_free(d);
}

struct reader_arg {
    struct rts_dedup *d;
    _Atomic int stop;
    uint64_t last_checks, last_dups;
    long bad;
};

static void *stats_reader(void *p)
{
    struct reader_arg *a = p;
    struct rts_dedup_stats st;

    while (!atomic_load(&a->stop)) {
        rts_dedup_stats(a->d, &st);
        /* each counter only grows; they are not a snapshot of one moment */
        if (st.checks < a->last_checks || st.duplicates < a->last_dups ||
            st.held > st.capacity) {
            a->bad++;
        }
        a->last_checks = st.checks;
        a->last_dups = st.duplicates;
    }
    return NULL;
}

TEST(stats_from_another_thread)
{
    struct reader_arg a = {.d = rts_dedup_new(SEC, 1000, NULL)};
    pthread_t t;
    long i;

    atomic_init(&a.stop, 0);
    CHECK_INT(pthread_create(&t, NULL, stats_reader, &a), 0);
    for (i = 0; i < 200000; i++) {
        rts_dedup_seen(a.d, (uint64_t)(rng() % 3000), i * 10);
    }
    atomic_store(&a.stop, 1);
    pthread_join(t, NULL);
    CHECK_INT(a.bad, 0);
    rts_dedup_free(a.d);
}

int main(void)
{
    RUN(opts);
    RUN(exact);
    RUN(horizon);
    RUN(eviction_order);
    RUN(collisions_vs_model);
    RUN(save_restore);
    RUN(no_alloc);
    RUN(stats_from_another_thread);
    return TEST_EXIT();
}
