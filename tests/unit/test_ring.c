/*
 * test_ring.c - unit tests of core/ring: single-thread reserve / commit /
 * peek / release with the byte and record limits and wrap-around padding, a
 * random single-thread run against a model FIFO, timeouts and close, a
 * ping-pong that sleeps on every round (a lost wakeup would hang it: every
 * wait has a generous timeout that counts as a failure), and a two-thread
 * stress test moving 10M variable-size records with sequence numbers and
 * checksums. Run it under ASan and TSan. RTS_RING_STRESS_N overrides the
 * stress count.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

#include "core/clock.h"
#include "core/ring.h"
#include "test.h"

static void sleep_ns(long ns)
{
    struct timespec ts = {ns / 1000000000L, ns % 1000000000L};

    nanosleep(&ts, NULL);
}

static uint64_t mix(uint64_t x)
{
    x ^= x >> 33;
    x *= UINT64_C(0xff51afd7ed558ccd);
    x ^= x >> 33;
    x *= UINT64_C(0xc4ceb9fe1a85ec53);
    x ^= x >> 33;
    return x;
}

/* Put a record of @n bytes: "rec <seq>" filler; returns 1 on success. */
static int put_rec(struct rts_ring *r, size_t n, unsigned char tag)
{
    unsigned char *p = rts_ring_reserve(r, n);

    if (!p) {
        return 0;
    }
    memset(p, tag, n);
    rts_ring_commit(r, n);
    return 1;
}

/* Take one record; returns its size or -1; *tag gets its first byte. */
static long take_rec(struct rts_ring *r, int *tag)
{
    size_t n, i;
    const unsigned char *p = rts_ring_peek(r, &n);

    if (!p) {
        return -1;
    }
    *tag = n ? p[0] : -1;
    for (i = 0; i < n; i++) {
        if (p[i] != p[0]) {
            *tag = -2;
        }
    }
    rts_ring_release(r);
    return (long)n;
}

TEST(new_and_sizes)
{
    struct rts_errbuf eb = {0};
    struct rts_ring *r;

    r = rts_ring_new(1000, 0, &eb);
    CHECK(r != NULL);
    CHECK_INT(rts_ring_capacity(r), 1024);
    rts_ring_free(r);
    r = rts_ring_new(0, 0, &eb);
    CHECK(r != NULL);
    CHECK_INT(rts_ring_capacity(r), 64);
    rts_ring_free(r);
    r = rts_ring_new((size_t)1 << 41, 0, &eb);
    CHECK(r == NULL);
    CHECK_INT(eb.code, RTS_ERR_INVAL);
    rts_ring_free(NULL);
}

TEST(basic)
{
    struct rts_ring *r = rts_ring_new(1024, 0, NULL);
    const char *p;
    char *w;
    size_t n = 99;

    CHECK(rts_ring_peek(r, &n) == NULL);
    CHECK_INT(n, 99);
    CHECK_INT(rts_ring_count(r), 0);
    CHECK(rts_ring_reserve(r, 513) == NULL); /* > capacity / 2 */
    CHECK(rts_ring_wait_writable(r, 513, 0) == 0);
    w = rts_ring_reserve(r, 100);
    CHECK(w != NULL);
    CHECK((uintptr_t)w % 8 == 0);
    memcpy(w, "hello", 5);
    CHECK(rts_ring_peek(r, &n) == NULL); /* not committed yet */
    rts_ring_commit(r, 5);               /* shrink to the final size */
    CHECK_INT(rts_ring_count(r), 1);
    p = rts_ring_peek(r, &n);
    CHECK(p != NULL);
    CHECK_INT(n, 5);
    CHECK(p && memcmp(p, "hello", 5) == 0);
    CHECK(rts_ring_peek(r, &n) == p); /* same record until released */
    rts_ring_release(r);
    rts_ring_release(r); /* no-op: nothing peeked */
    CHECK_INT(rts_ring_count(r), 0);
    CHECK(rts_ring_peek(r, &n) == NULL);

    /* zero-size records are records */
    w = rts_ring_reserve(r, 0);
    CHECK(w != NULL);
    rts_ring_commit(r, 0);
    CHECK(rts_ring_peek(r, &n) != NULL);
    CHECK_INT(n, 0);
    rts_ring_release(r);

    /* commit without reserve, and a second commit, are no-ops */
    rts_ring_commit(r, 10);
    CHECK(rts_ring_reserve(r, 8) != NULL);
    rts_ring_commit(r, 8);
    rts_ring_commit(r, 8);
    CHECK_INT(rts_ring_count(r), 1);
    rts_ring_free(r);
}

TEST(limits)
{
    struct rts_ring *r = rts_ring_new(1024, 3, NULL);
    int tag;
    size_t i;

    /* records limit */
    CHECK(put_rec(r, 1, 'a'));
    CHECK(put_rec(r, 1, 'b'));
    CHECK(put_rec(r, 1, 'c'));
    CHECK(!put_rec(r, 1, 'd'));
    CHECK(rts_ring_wait_writable(r, 1, 0) == 0);
    CHECK_INT(take_rec(r, &tag), 1);
    CHECK_INT(tag, 'a');
    CHECK(rts_ring_wait_writable(r, 1, 0) == 1);
    CHECK(put_rec(r, 1, 'd'));
    rts_ring_free(r);

    /* bytes limit: 100-byte records take 8 + 104 = 112 bytes; 9 fit in 1024 */
    r = rts_ring_new(1024, 0, NULL);
    for (i = 0; i < 9; i++) {
        CHECK(put_rec(r, 100, (unsigned char)('0' + i)));
    }
    CHECK(!put_rec(r, 100, 'x'));
    CHECK(put_rec(r, 0, 'y')); /* 16 bytes still free at the end... */
    CHECK(put_rec(r, 0, 'y'));
    CHECK(!put_rec(r, 0, 'z')); /* ...and now none */
    CHECK_INT(rts_ring_count(r), 11);
    for (i = 0; i < 9; i++) {
        CHECK_INT(take_rec(r, &tag), 100);
        CHECK_INT(tag, '0' + (int)i);
    }
    CHECK_INT(take_rec(r, &tag), 0);
    CHECK_INT(take_rec(r, &tag), 0);
    CHECK_INT(take_rec(r, &tag), -1);
    rts_ring_free(r);
}

TEST(wrap_padding)
{
    struct rts_ring *r = rts_ring_new(256, 0, NULL);
    unsigned char *first, *p;
    const unsigned char *q;
    size_t n;
    int tag;

    /* 3 records of 64 (72 bytes each) fill 216; consume two */
    first = rts_ring_reserve(r, 64);
    CHECK(first != NULL);
    memset(first, 'A', 64);
    rts_ring_commit(r, 64);
    CHECK(put_rec(r, 64, 'B'));
    CHECK(put_rec(r, 64, 'C'));
    CHECK_INT(take_rec(r, &tag), 64);
    CHECK_INT(tag, 'A');
    CHECK_INT(take_rec(r, &tag), 64);
    CHECK_INT(tag, 'B');
    /* 40 bytes left before the end: a 64-byte record pads and wraps */
    p = rts_ring_reserve(r, 64);
    CHECK(p == first); /* offset 8: right after the header at offset 0 */
    memset(p, 'D', 64);
    rts_ring_commit(r, 64);
    CHECK_INT(rts_ring_count(r), 2);
    /* used: C (72) + pad (40) + D (72) = 184 of 256: 72 free, after D */
    CHECK(rts_ring_wait_writable(r, 64, 0) == 1);
    CHECK(rts_ring_wait_writable(r, 65, 0) == 0);
    CHECK_INT(take_rec(r, &tag), 64);
    CHECK_INT(tag, 'C');
    q = rts_ring_peek(r, &n); /* skips the pad */
    CHECK(q == first);
    CHECK_INT(n, 64);
    CHECK(q && q[0] == 'D' && q[63] == 'D');
    rts_ring_release(r);
    CHECK_INT(rts_ring_count(r), 0);
    CHECK(rts_ring_wait_writable(r, 128, 0) == 1);
    rts_ring_free(r);
}

/* Random single-thread run against a model FIFO of (size, tag). */
/* peek_next walks the published records in order, across the padding at the
 * end of the buffer, without changing what peek and release see. */
TEST(peek_next_lookahead)
{
    struct rts_ring *r = rts_ring_new(1024, 0, NULL);
    size_t sizes[64], n;
    int head = 0, tail = 0;
    uint64_t x = 7;

    CHECK(r != NULL);
    for (int round = 0; round < 2000; round++) {
        const unsigned char *p, *q;
        int k;
        /* fill with records of 1..200 bytes, tagged with their sequence */
        for (;;) {
            size_t sz = 1 + (size_t)((x = mix(x)) % 200);
            if (head - tail == 64 || !put_rec(r, sz, (unsigned char)head)) {
                break;
            }
            sizes[head++ % 64] = sz;
        }
        /* look ahead over everything queued */
        p = rts_ring_peek(r, &n);
        CHECK(p != NULL);
        k = tail;
        for (q = p; q; q = rts_ring_peek_next(r, q, &n), k++) {
            if (n != sizes[k % 64] || q[0] != (unsigned char)k) {
                CHECK(0);
                break;
            }
        }
        CHECK_INT(k, head);
        /* consume a random number of them; peek still gives the oldest */
        for (int c = (int)((x = mix(x)) % (unsigned)(head - tail)) + 1; c > 0; c--) {
            int tag;
            long got = take_rec(r, &tag);
            CHECK_INT(got, (long)sizes[tail % 64]);
            CHECK_INT(tag, (unsigned char)tail);
            tail++;
        }
    }
    rts_ring_free(r);
}

TEST(random_model)
{
    enum { CAP = 4096, QMAX = 4096 };
    struct rts_ring *r = rts_ring_new(CAP, 50, NULL);
    size_t qs[QMAX], qh = 0, qt = 0, i, n, errors = 0, puts = 0;
    unsigned char qtag[QMAX];
    uint64_t s = 12345;
    const unsigned char *p;

    for (i = 0; i < 1000000; i++) {
        s = mix(s + i);
        if (s % 100 < 52) {
            size_t want = (s >> 8) % (CAP / 2 + 1);
            unsigned char tag = (unsigned char)(s >> 24);
            unsigned char *w = rts_ring_reserve(r, want);

            if (w) {
                size_t fin = want ? (s >> 32) % (want + 1) : 0;

                memset(w, tag, fin);
                rts_ring_commit(r, fin);
                qs[qt % QMAX] = fin;
                qtag[qt % QMAX] = tag;
                qt++;
                puts++;
            } else if (qt == qh) {
                errors++; /* an empty ring takes any record up to CAP / 2 */
            }
        } else {
            p = rts_ring_peek(r, &n);
            if (!p) {
                errors += qt != qh;
                continue;
            }
            if (qt == qh || n != qs[qh % QMAX] ||
                (n && (p[0] != qtag[qh % QMAX] || p[n - 1] != qtag[qh % QMAX]))) {
                errors++;
            }
            qh++;
            rts_ring_release(r);
        }
        if (rts_ring_count(r) != qt - qh) {
            errors++;
        }
    }
    CHECK_INT(errors, 0);
    CHECK(puts > 100000);
    rts_ring_free(r);
}

TEST(timeouts_and_close)
{
    struct rts_ring *r = rts_ring_new(64, 0, NULL);
    uint64_t t0;
    int tag;

    t0 = rts_now_ns();
    CHECK_INT(rts_ring_wait_readable(r, 20000000), 0);
    CHECK(rts_now_ns() - t0 >= 20000000);
    CHECK(!rts_ring_closed(r));
    CHECK(put_rec(r, 32, 'x'));
    CHECK(!put_rec(r, 32, 'y')); /* 40 + 40 > 64 */
    t0 = rts_now_ns();
    CHECK_INT(rts_ring_wait_writable(r, 32, 20000000), 0);
    CHECK(rts_now_ns() - t0 >= 20000000);
    CHECK_INT(rts_ring_wait_readable(r, -1), 1);
    rts_ring_close(r);
    CHECK(!rts_ring_closed(r)); /* a record is still queued */
    CHECK_INT(rts_ring_wait_readable(r, 0), 1);
    CHECK_INT(take_rec(r, &tag), 32);
    CHECK(rts_ring_closed(r));
    t0 = rts_now_ns();
    CHECK_INT(rts_ring_wait_readable(r, -1), 0); /* closed and empty: at once */
    CHECK(rts_now_ns() - t0 < 1000000000);
    rts_ring_free(r);
}

/* Ping-pong: each side sleeps in every round, so every wake matters. */
#define PP_ROUNDS 20000
#define PP_TIMEOUT 5000000000LL

struct pingpong {
    struct rts_ring *ab, *ba;
    size_t timeouts, bad;
};

static void *pong(void *arg)
{
    struct pingpong *pp = arg;
    const uint64_t *v;
    uint64_t *w;
    size_t n, i;

    for (i = 0; i < PP_ROUNDS; i++) {
        if (!rts_ring_wait_readable(pp->ab, PP_TIMEOUT)) {
            pp->timeouts++;
            break;
        }
        v = rts_ring_peek(pp->ab, &n);
        if (!v || n != 8 || *v != i) {
            pp->bad++;
        }
        rts_ring_release(pp->ab);
        if (!rts_ring_wait_writable(pp->ba, 8, PP_TIMEOUT)) {
            pp->timeouts++;
            break;
        }
        w = rts_ring_reserve(pp->ba, 8);
        *w = i + 1;
        rts_ring_commit(pp->ba, 8);
    }
    return NULL;
}

TEST(pingpong_wakeups)
{
    struct pingpong pp = {rts_ring_new(64, 1, NULL), rts_ring_new(64, 1, NULL), 0, 0};
    pthread_t t;
    const uint64_t *v;
    uint64_t *w;
    size_t n, i, timeouts = 0, bad = 0;

    CHECK_INT(pthread_create(&t, NULL, pong, &pp), 0);
    for (i = 0; i < PP_ROUNDS; i++) {
        if (!rts_ring_wait_writable(pp.ab, 8, PP_TIMEOUT)) {
            timeouts++;
            break;
        }
        w = rts_ring_reserve(pp.ab, 8);
        *w = i;
        rts_ring_commit(pp.ab, 8);
        if (!rts_ring_wait_readable(pp.ba, PP_TIMEOUT)) {
            timeouts++;
            break;
        }
        v = rts_ring_peek(pp.ba, &n);
        if (!v || n != 8 || *v != i + 1) {
            bad++;
        }
        rts_ring_release(pp.ba);
    }
    pthread_join(t, NULL);
    CHECK_INT(timeouts + pp.timeouts, 0);
    CHECK_INT(bad + pp.bad, 0);
    rts_ring_free(pp.ab);
    rts_ring_free(pp.ba);
}

/* Stress: records of 16..(16 + 1000) bytes, mostly small: seq, checksum of
 * the rest, then bytes derived from seq. Phases where one side stalls force
 * the other to sleep. */
struct stress {
    struct rts_ring *r;
    uint64_t n;
    uint64_t prod_waits, cons_waits;
    uint64_t lost, reordered, corrupt, bad_size, timeouts, received;
};

static size_t stress_size(uint64_t seq)
{
    uint64_t h = mix(seq);

    return 16 + (size_t)(h % 16 == 0 ? (h >> 8) % 1001 : (h >> 8) % 200);
}

static uint64_t fill_sum(unsigned char *p, size_t n, uint64_t seq)
{
    uint64_t h = mix(seq ^ 0xabcdef), sum = 0;
    size_t i;

    for (i = 0; i < n; i++) {
        if (i % 8 == 0) {
            h = mix(h + i);
        }
        if (p) {
            p[i] = (unsigned char)(h >> (8 * (i % 8)));
        }
        sum = sum * 31 + (unsigned char)(h >> (8 * (i % 8)));
    }
    return sum;
}

static uint64_t check_sum(const unsigned char *p, size_t n)
{
    uint64_t sum = 0;
    size_t i;

    for (i = 0; i < n; i++) {
        sum = sum * 31 + p[i];
    }
    return sum;
}

static void *stress_producer(void *arg)
{
    struct stress *st = arg;
    uint64_t seq, sum;
    unsigned char *p;
    size_t n;

    for (seq = 0; seq < st->n; seq++) {
        n = stress_size(seq);
        p = rts_ring_reserve(st->r, n);
        if (!p) {
            st->prod_waits++;
            if (!rts_ring_wait_writable(st->r, n, 10000000000LL)) {
                st->timeouts++;
                break;
            }
            p = rts_ring_reserve(st->r, n);
            if (!p) {
                st->timeouts++;
                break;
            }
        }
        sum = fill_sum(p + 16, n - 16, seq);
        memcpy(p, &seq, 8);
        memcpy(p + 8, &sum, 8);
        rts_ring_commit(st->r, n);
        if (seq % 1000003 == 500000) {
            sleep_ns(2000000); /* consumer drains and sleeps */
        }
    }
    rts_ring_close(st->r);
    return NULL;
}

static void *stress_consumer(void *arg)
{
    struct stress *st = arg;
    uint64_t expect = 0, seq, sum;
    const unsigned char *p;
    size_t n;

    for (;;) {
        p = rts_ring_peek(st->r, &n);
        if (!p) {
            if (rts_ring_closed(st->r)) {
                break;
            }
            st->cons_waits++;
            if (!rts_ring_wait_readable(st->r, 10000000000LL) && !rts_ring_closed(st->r)) {
                st->timeouts++;
                break;
            }
            continue;
        }
        if (n < 16) {
            st->bad_size++;
            rts_ring_release(st->r);
            continue;
        }
        memcpy(&seq, p, 8);
        memcpy(&sum, p + 8, 8);
        if (seq > expect) {
            st->lost += seq - expect;
        } else if (seq < expect) {
            st->reordered++;
        }
        if (n != stress_size(seq)) {
            st->bad_size++;
        }
        if (check_sum(p + 16, n - 16) != sum) {
            st->corrupt++;
        }
        expect = seq + 1;
        st->received++;
        rts_ring_release(st->r);
        if (seq % 1000003 == 700000) {
            sleep_ns(2000000); /* producer fills up and sleeps */
        }
    }
    return NULL;
}

TEST(two_thread_stress)
{
    struct stress st;
    pthread_t tp, tc;
    const char *env = getenv("RTS_RING_STRESS_N");
    uint64_t t0 = rts_now_ns();

    memset(&st, 0, sizeof(st));
    st.n = env ? strtoull(env, NULL, 10) : 10000000;
    st.r = rts_ring_new(64 * 1024, 512, NULL);
    CHECK_INT(pthread_create(&tc, NULL, stress_consumer, &st), 0);
    CHECK_INT(pthread_create(&tp, NULL, stress_producer, &st), 0);
    pthread_join(tp, NULL);
    pthread_join(tc, NULL);
    CHECK(st.received == st.n);
    CHECK_INT(st.lost, 0);
    CHECK_INT(st.reordered, 0);
    CHECK_INT(st.corrupt, 0);
    CHECK_INT(st.bad_size, 0);
    CHECK_INT(st.timeouts, 0);
    CHECK(rts_ring_closed(st.r));
    CHECK(st.n < 3000000 || (st.prod_waits > 0 && st.cons_waits > 0));
    fprintf(stderr, "     %llu records in %.2f s, producer waits %llu, consumer waits %llu\n",
            (unsigned long long)st.received, (double)(rts_now_ns() - t0) / 1e9,
            (unsigned long long)st.prod_waits, (unsigned long long)st.cons_waits);
    rts_ring_free(st.r);
}

int main(void)
{
    RUN(new_and_sizes);
    RUN(basic);
    RUN(limits);
    RUN(wrap_padding);
    RUN(peek_next_lookahead);
    RUN(random_model);
    RUN(timeouts_and_close);
    RUN(pingpong_wakeups);
    RUN(two_thread_stress);
    return TEST_EXIT();
}
