/*
 * test_offsets.c - unit tests of source/offsets: the committable prefix with
 * in-order, out-of-order and gapped offsets; holds and their misuse; a full
 * ring and wrap-around; revoke and reassign making old tokens stale (also
 * when their ring entry is reused); slot limits and malformed tokens; a
 * random single-thread run against a reference model; and a multi-threaded
 * stress test where a source thread tracks messages on several partitions,
 * workers add holds and release out of order, a sink thread releases the
 * outputs in shuffled batches, and a partition is revoked and reassigned
 * while its tokens are still in flight. The stress test checks, every time
 * it reads a committable position, that every message below it had all its
 * holds released. Run it under ASan and TSan. RTS_OFFSETS_STRESS_N overrides
 * the stress message count.
 */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>

#include "source/offsets.h"
#include "test.h"

static uint64_t rng_next(uint64_t *s)
{
    uint64_t x = (*s += UINT64_C(0x9e3779b97f4a7c15));

    x = (x ^ (x >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    x = (x ^ (x >> 27)) * UINT64_C(0x94d049bb133111eb);
    return x ^ (x >> 31);
}

TEST(new_bounds)
{
    struct rts_errbuf eb = {0};
    struct rts_offsets *o;

    CHECK(rts_offsets_new(0, 10, &eb) == NULL);
    CHECK_INT(eb.code, RTS_ERR_INVAL);
    CHECK(rts_offsets_new(RTS_OFFSETS_MAX_SLOTS + 1, 10, &eb) == NULL);
    CHECK(rts_offsets_new(4, 0, &eb) == NULL);
    CHECK(rts_offsets_new(4, RTS_OFFSETS_MAX_INFLIGHT + 1, &eb) == NULL);
    CHECK(strstr(eb.msg, "max_inflight") != NULL);
    o = rts_offsets_new(4, 10, &eb);
    CHECK(o != NULL);
    rts_offsets_free(o);
    rts_offsets_free(NULL);
}

TEST(in_order_and_out_of_order)
{
    struct rts_errbuf eb = {0};
    struct rts_offsets *o = rts_offsets_new(2, 16, &eb);
    uint64_t t[5];
    int s = rts_offsets_assign(o, &eb);

    CHECK(s >= 0);
    CHECK_INT(rts_offsets_committable(o, s), -1);
    for (int i = 0; i < 5; i++) {
        t[i] = rts_offsets_track(o, s, 10 + i);
        CHECK(t[i] != 0);
        CHECK_INT(rts_offsets_token_slot(t[i]), s);
    }
    CHECK_INT(rts_offsets_inflight(o, s), 5);
    CHECK_INT(rts_offsets_committable(o, s), -1);
    CHECK_INT(rts_offsets_release(o, t[0]), RTS_OFFSETS_DONE);
    CHECK_INT(rts_offsets_committable(o, s), 11);
    /* out of order: 2 and 4 finish before 1 and 3 */
    CHECK_INT(rts_offsets_release(o, t[2]), RTS_OFFSETS_DONE);
    CHECK_INT(rts_offsets_release(o, t[4]), RTS_OFFSETS_DONE);
    CHECK_INT(rts_offsets_committable(o, s), 11);
    CHECK_INT(rts_offsets_inflight(o, s), 4);
    CHECK_INT(rts_offsets_release(o, t[1]), RTS_OFFSETS_DONE);
    CHECK_INT(rts_offsets_committable(o, s), 13);
    CHECK_INT(rts_offsets_release(o, t[3]), RTS_OFFSETS_DONE);
    CHECK_INT(rts_offsets_committable(o, s), 15);
    CHECK_INT(rts_offsets_inflight(o, s), 0);
    /* the position stays when nothing is in flight */
    CHECK_INT(rts_offsets_committable(o, s), 15);
    rts_offsets_free(o);
}

TEST(gapped_offsets)
{
    struct rts_errbuf eb = {0};
    struct rts_offsets *o = rts_offsets_new(1, 8, &eb);
    int s = rts_offsets_assign(o, &eb);
    uint64_t a = rts_offsets_track(o, s, 100);
    uint64_t b = rts_offsets_track(o, s, 105); /* compaction or a transaction marker */
    uint64_t c = rts_offsets_track(o, s, 230);

    rts_offsets_release(o, c);
    rts_offsets_release(o, a);
    CHECK_INT(rts_offsets_committable(o, s), 101);
    rts_offsets_release(o, b);
    CHECK_INT(rts_offsets_committable(o, s), 231);
    rts_offsets_free(o);
}

TEST(holds)
{
    struct rts_errbuf eb = {0};
    struct rts_offsets *o = rts_offsets_new(1, 8, &eb);
    struct rts_offsets_stats st;
    int s = rts_offsets_assign(o, &eb);
    uint64_t t = rts_offsets_track(o, s, 0), u;

    /* the daemon's protocol: one hold per output, then the processing hold goes */
    CHECK_INT(rts_offsets_hold(o, t, 3), RTS_OFFSETS_DONE);
    CHECK_INT(rts_offsets_release(o, t), RTS_OFFSETS_DONE);
    CHECK_INT(rts_offsets_committable(o, s), -1);
    CHECK_INT(rts_offsets_release(o, t), RTS_OFFSETS_DONE);
    CHECK_INT(rts_offsets_release(o, t), RTS_OFFSETS_DONE);
    CHECK_INT(rts_offsets_hold(o, t, 0), RTS_OFFSETS_DONE); /* nothing */
    CHECK_INT(rts_offsets_committable(o, s), -1);
    CHECK_INT(rts_offsets_release(o, t), RTS_OFFSETS_DONE);
    CHECK_INT(rts_offsets_committable(o, s), 1);
    /* misuse is refused and counted: a release too many, a hold on a finished message */
    CHECK_INT(rts_offsets_release(o, t), RTS_OFFSETS_INVALID);
    CHECK_INT(rts_offsets_hold(o, t, 1), RTS_OFFSETS_INVALID);
    CHECK_INT(rts_offsets_committable(o, s), 1);
    u = rts_offsets_track(o, s, 1);
    CHECK_INT(rts_offsets_hold(o, u, RTS_OFFSETS_MAX_HOLDS), RTS_OFFSETS_INVALID); /* 1 + max */
    CHECK_INT(rts_offsets_hold(o, u, RTS_OFFSETS_MAX_HOLDS - 1), RTS_OFFSETS_DONE);
    CHECK_INT(rts_offsets_hold(o, u, 1), RTS_OFFSETS_INVALID);
    CHECK_INT(rts_offsets_hold(o, u, 0xffffffffu), RTS_OFFSETS_INVALID);
    rts_offsets_stats(o, &st);
    CHECK_INT(st.invalid, 5);
    CHECK_INT(st.stale, 0);
    rts_offsets_free(o);
}

TEST(full_and_wrap)
{
    struct rts_errbuf eb = {0};
    struct rts_offsets *o = rts_offsets_new(1, 3, &eb); /* ring of 4, limit 3 */
    int s = rts_offsets_assign(o, &eb);
    uint64_t t[3];
    int64_t off = 0;

    for (int round = 0; round < 50; round++) {
        for (int i = 0; i < 3; i++) {
            CHECK(!rts_offsets_full(o, s));
            t[i] = rts_offsets_track(o, s, off++);
            CHECK(t[i] != 0);
        }
        CHECK(rts_offsets_full(o, s));
        CHECK_INT(rts_offsets_track(o, s, off), 0); /* not tracked */
        CHECK_INT(rts_offsets_release(o, t[1]), RTS_OFFSETS_DONE);
        CHECK(rts_offsets_full(o, s)); /* the prefix has not moved */
        CHECK_INT(rts_offsets_release(o, t[0]), RTS_OFFSETS_DONE);
        CHECK(!rts_offsets_full(o, s));
        CHECK_INT(rts_offsets_inflight(o, s), 1);
        CHECK_INT(rts_offsets_release(o, t[2]), RTS_OFFSETS_DONE);
        CHECK_INT(rts_offsets_committable(o, s), off);
        /* tokens of finished, reused entries are refused */
        CHECK(rts_offsets_release(o, t[0]) != RTS_OFFSETS_DONE);
    }
    rts_offsets_free(o);
}

TEST(revoke_and_reassign)
{
    struct rts_errbuf eb = {0};
    struct rts_offsets *o = rts_offsets_new(2, 4, &eb);
    struct rts_offsets_stats st;
    int a = rts_offsets_assign(o, &eb);
    uint64_t old[4], t;
    int b;

    for (int i = 0; i < 4; i++) {
        old[i] = rts_offsets_track(o, a, i);
    }
    CHECK_INT(rts_offsets_hold(o, old[3], 2), RTS_OFFSETS_DONE);
    rts_offsets_release(o, old[0]);
    CHECK_INT(rts_offsets_committable(o, a), 1);
    rts_offsets_revoke(o, a);
    CHECK_INT(rts_offsets_committable(o, a), -1);
    CHECK_INT(rts_offsets_track(o, a, 9), 0);
    CHECK_INT(rts_offsets_full(o, a), 0);
    /* in-flight tokens of the revoked partition: ignored */
    CHECK_INT(rts_offsets_release(o, old[1]), RTS_OFFSETS_STALE);
    CHECK_INT(rts_offsets_hold(o, old[2], 1), RTS_OFFSETS_STALE);
    rts_offsets_revoke(o, a); /* twice: a no-op */

    /* the slot comes back (it has a ring already) for another partition */
    b = rts_offsets_assign(o, &eb);
    CHECK_INT(b, a);
    CHECK_INT(rts_offsets_committable(o, b), -1);
    for (int i = 0; i < 4; i++) {
        t = rts_offsets_track(o, b, 500 + i); /* reuses every ring entry */
        CHECK(t != 0);
        CHECK(t != old[i]);
    }
    CHECK(rts_offsets_full(o, b));
    /* old tokens still cannot touch the new messages in their entries */
    for (int i = 1; i < 4; i++) {
        CHECK_INT(rts_offsets_release(o, old[i]), RTS_OFFSETS_STALE);
        CHECK_INT(rts_offsets_release(o, old[i]), RTS_OFFSETS_STALE);
    }
    CHECK_INT(rts_offsets_committable(o, b), -1);
    CHECK_INT(rts_offsets_inflight(o, b), 4);
    rts_offsets_stats(o, &st);
    CHECK_INT(st.stale, 8);
    CHECK_INT(st.invalid, 0);
    rts_offsets_free(o);
}

TEST(slots_and_bad_tokens)
{
    struct rts_errbuf eb = {0};
    struct rts_offsets *o = rts_offsets_new(2, 4, &eb);
    struct rts_offsets_stats st;
    int a = rts_offsets_assign(o, &eb), b = rts_offsets_assign(o, &eb);
    uint64_t ta, tb;

    CHECK(a >= 0 && b >= 0 && a != b);
    CHECK_INT(rts_offsets_assign(o, &eb), -1);
    CHECK_INT(eb.code, RTS_ERR_LIMIT);
    ta = rts_offsets_track(o, a, 7);
    tb = rts_offsets_track(o, b, 7);
    CHECK(ta != tb);
    /* partitions are independent */
    rts_offsets_release(o, tb);
    CHECK_INT(rts_offsets_committable(o, a), -1);
    CHECK_INT(rts_offsets_committable(o, b), 8);
    rts_offsets_revoke(o, b);
    CHECK_INT(rts_offsets_assign(o, &eb), b);

    CHECK_INT(rts_offsets_track(o, 5, 1), 0); /* no such slot */
    CHECK_INT(rts_offsets_track(o, -1, 1), 0);
    CHECK_INT(rts_offsets_committable(o, 9), -1);
    CHECK_INT(rts_offsets_token_slot(0), -1);
    CHECK_INT(rts_offsets_release(o, 0), RTS_OFFSETS_INVALID);
    CHECK_INT(rts_offsets_release(o, UINT64_C(9) << 48), RTS_OFFSETS_INVALID);
    CHECK_INT(rts_offsets_hold(o, UINT64_MAX, 1), RTS_OFFSETS_INVALID);
    rts_offsets_stats(o, &st);
    CHECK_INT(st.invalid, 3);
    CHECK_INT(rts_offsets_release(o, ta), RTS_OFFSETS_DONE);
    CHECK_INT(rts_offsets_committable(o, a), 8);
    rts_offsets_free(o);

    /* a slot never assigned has no ring: its tokens are invalid */
    o = rts_offsets_new(3, 4, &eb);
    CHECK_INT(rts_offsets_release(o, UINT64_C(3) << 48), RTS_OFFSETS_INVALID);
    rts_offsets_free(o);
}

/* Single thread, random operations, against a plain array of hold counts. */
TEST(random_model)
{
    enum { N = 20000, MAXF = 37 };
    struct rts_errbuf eb = {0};
    struct rts_offsets *o = rts_offsets_new(1, MAXF, &eb);
    int s = rts_offsets_assign(o, &eb);
    static uint64_t tok[N];
    static int holds[N];
    static int64_t offs[N];
    uint64_t rng = 42;
    size_t tracked = 0, first = 0; /* messages [first, tracked) may be in flight */
    int64_t off = 0, want = -1;

    while (first < N) {
        uint64_t r = rng_next(&rng);
        if (tracked < N && r % 3 == 0) {
            off += 1 + (int64_t)(r >> 60); /* gaps */
            uint64_t t = rts_offsets_track(o, s, off);
            if (tracked - first >= MAXF) {
                CHECK_INT(t, 0);
            } else {
                CHECK(t != 0);
                tok[tracked] = t;
                holds[tracked] = 1;
                offs[tracked] = off;
                tracked++;
            }
        } else if (tracked > first) {
            size_t i = first + (size_t)((r >> 8) % (tracked - first));
            if (holds[i] > 0 && (r >> 40) % 4 == 0) {
                CHECK_INT(rts_offsets_hold(o, tok[i], 2), RTS_OFFSETS_DONE);
                holds[i] += 2;
            } else if (holds[i] > 0) {
                CHECK_INT(rts_offsets_release(o, tok[i]), RTS_OFFSETS_DONE);
                holds[i]--;
            }
        } else {
            continue;
        }
        while (first < tracked && holds[first] == 0) {
            want = offs[first++] + 1;
        }
        CHECK_INT(rts_offsets_committable(o, s), want);
        CHECK_INT(rts_offsets_inflight(o, s), tracked - first);
        if (test_failures) {
            break;
        }
    }
    rts_offsets_free(o);
}

/* ---- multi-threaded stress ---- */

enum { NSLOTS = 4, NWORKERS = 3, QCAP = 512 };

struct queue {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    uint64_t items[QCAP];
    size_t head, n;
    int closed;
};

static void q_init(struct queue *q)
{
    memset(q, 0, sizeof(*q));
    pthread_mutex_init(&q->mu, NULL);
    pthread_cond_init(&q->cv, NULL);
}

static void q_fini(struct queue *q)
{
    pthread_mutex_destroy(&q->mu);
    pthread_cond_destroy(&q->cv);
}

static void q_push(struct queue *q, uint64_t v)
{
    pthread_mutex_lock(&q->mu);
    while (q->n == QCAP) {
        pthread_cond_wait(&q->cv, &q->mu);
    }
    q->items[(q->head + q->n++) % QCAP] = v;
    pthread_cond_broadcast(&q->cv);
    pthread_mutex_unlock(&q->mu);
}

/* Up to @max items into @out; 0 once closed and empty. */
static size_t q_pop(struct queue *q, uint64_t *out, size_t max)
{
    size_t n = 0;

    pthread_mutex_lock(&q->mu);
    while (q->n == 0 && !q->closed) {
        pthread_cond_wait(&q->cv, &q->mu);
    }
    while (n < max && q->n > 0) {
        out[n++] = q->items[q->head];
        q->head = (q->head + 1) % QCAP;
        q->n--;
    }
    pthread_cond_broadcast(&q->cv);
    pthread_mutex_unlock(&q->mu);
    return n;
}

static void q_close(struct queue *q)
{
    pthread_mutex_lock(&q->mu);
    q->closed = 1;
    pthread_cond_broadcast(&q->cv);
    pthread_mutex_unlock(&q->mu);
}

/* A message is its global number; the work queue carries (token, number). */
struct stress {
    struct rts_offsets *o;
    size_t n;
    uint64_t *token;         /* by message */
    _Atomic uint32_t *done;  /* releases performed (counted before releasing) */
    struct queue work, acks; /* work: message numbers; acks: message numbers of outputs */
    _Atomic uint64_t stale_seen, invalid_seen;
    _Atomic int workers_left;
};

static uint32_t extra_holds(size_t msg)
{
    return (uint32_t)(msg % 3); /* outputs per event: 0, 1 or 2 */
}

static void count(struct stress *st, enum rts_offsets_result r)
{
    if (r == RTS_OFFSETS_STALE) {
        atomic_fetch_add(&st->stale_seen, 1);
    } else if (r == RTS_OFFSETS_INVALID) {
        atomic_fetch_add(&st->invalid_seen, 1);
    }
}

static void do_release(struct stress *st, size_t msg)
{
    atomic_fetch_add_explicit(&st->done[msg], 1, memory_order_relaxed);
    count(st, rts_offsets_release(st->o, st->token[msg]));
}

static void *worker_main(void *arg)
{
    struct stress *st = arg;
    uint64_t batch[16];
    size_t n;

    while ((n = q_pop(&st->work, batch, 16)) > 0) {
        for (size_t i = 0; i < n; i++) {
            size_t msg = (size_t)batch[i];
            uint32_t k = extra_holds(msg);
            if (k) {
                count(st, rts_offsets_hold(st->o, st->token[msg], k));
            }
            /* one output released here (when odd), the others by the sink */
            for (uint32_t j = 0; j < k; j++) {
                if (j == 0 && (msg & 1)) {
                    continue;
                }
                q_push(&st->acks, msg);
            }
            do_release(st, msg); /* the processing hold */
            if (k && (msg & 1)) {
                do_release(st, msg);
            }
        }
    }
    if (atomic_fetch_sub(&st->workers_left, 1) == 1) {
        q_close(&st->acks);
    }
    return NULL;
}

static void *sink_main(void *arg)
{
    struct stress *st = arg;
    uint64_t batch[64], rng = 7;
    size_t n;

    while ((n = q_pop(&st->acks, batch, 64)) > 0) {
        for (size_t i = n; i > 1; i--) { /* shuffled: deliveries complete out of order */
            size_t j = (size_t)(rng_next(&rng) % i);
            uint64_t t = batch[i - 1];
            batch[i - 1] = batch[j];
            batch[j] = t;
        }
        for (size_t i = 0; i < n; i++) {
            do_release(st, (size_t)batch[i]);
        }
    }
    return NULL;
}

TEST(stress_threads)
{
    struct rts_errbuf eb = {0};
    struct stress st;
    pthread_t workers[NWORKERS], sink;
    const char *env = getenv("RTS_OFFSETS_STRESS_N");
    size_t n = env ? (size_t)strtoull(env, NULL, 10) : 1000000;
    int slot[NSLOTS];
    size_t *list[NSLOTS], nlist[NSLOTS] = {0}, checked[NSLOTS] = {0};
    size_t last[NSLOTS];
    int64_t pos[NSLOTS];
    size_t bad_order = 0, bad_prefix = 0, revoked = 0, full_waits = 0;

    memset(&st, 0, sizeof(st));
    st.o = rts_offsets_new(NSLOTS, 64, &eb);
    st.n = n;
    st.token = calloc(n, sizeof(*st.token));
    st.done = calloc(n, sizeof(*st.done));
    q_init(&st.work);
    q_init(&st.acks);
    atomic_init(&st.workers_left, NWORKERS);
    for (int s = 0; s < NSLOTS; s++) {
        slot[s] = rts_offsets_assign(st.o, &eb);
        list[s] = calloc(n, sizeof(size_t));
        pos[s] = -1;
        last[s] = SIZE_MAX;
    }
    for (int i = 0; i < NWORKERS; i++) {
        CHECK_INT(pthread_create(&workers[i], NULL, worker_main, &st), 0);
    }
    CHECK_INT(pthread_create(&sink, NULL, sink_main, &st), 0);

    for (size_t msg = 0; msg < n; msg++) {
        int s = (int)(msg % NSLOTS);
        uint64_t t;

        if (msg == n / 2) {
            /* partition 0 is revoked with tokens in flight, and comes back */
            rts_offsets_revoke(st.o, slot[0]);
            slot[0] = rts_offsets_assign(st.o, &eb);
            nlist[0] = checked[0] = 0;
            pos[0] = -1;
            revoked = 1;
        }
        while (!(t = rts_offsets_track(st.o, slot[s], (int64_t)msg))) {
            full_waits++;
            sched_yield();
        }
        st.token[msg] = t;
        list[s][nlist[s]++] = msg;
        last[s] = msg;
        q_push(&st.work, msg);

        /* what the source commits: never past a message with holds left */
        int64_t p = rts_offsets_committable(st.o, slot[s]);
        if (p < pos[s]) {
            bad_order++;
        }
        pos[s] = p;
        while (checked[s] < nlist[s] && (int64_t)list[s][checked[s]] < p) {
            size_t m = list[s][checked[s]++];
            if (atomic_load_explicit(&st.done[m], memory_order_relaxed) != 1 + extra_holds(m)) {
                bad_prefix++;
            }
        }
    }
    q_close(&st.work);
    for (int i = 0; i < NWORKERS; i++) {
        pthread_join(workers[i], NULL);
    }
    pthread_join(sink, NULL);

    CHECK_INT(bad_order, 0);
    CHECK_INT(bad_prefix, 0);
    CHECK_INT(revoked, 1);
    for (int s = 0; s < NSLOTS; s++) {
        CHECK_INT(rts_offsets_inflight(st.o, slot[s]), 0);
        CHECK_INT(rts_offsets_committable(st.o, slot[s]), (int64_t)last[s] + 1);
    }
    {
        struct rts_offsets_stats os;
        rts_offsets_stats(st.o, &os);
        CHECK_INT(os.invalid, 0);
        CHECK_INT(atomic_load(&st.invalid_seen), 0);
        CHECK_INT(os.stale, atomic_load(&st.stale_seen));
    }
    for (size_t m = 0; m < n; m++) {
        if (atomic_load(&st.done[m]) != 1 + extra_holds(m)) {
            bad_prefix++;
        }
    }
    CHECK_INT(bad_prefix, 0);
    fprintf(stderr, "  stress: %zu messages, %zu waits on a full partition, %llu stale\n", n,
            full_waits, (unsigned long long)atomic_load(&st.stale_seen));
    for (int s = 0; s < NSLOTS; s++) {
        free(list[s]);
    }
    q_fini(&st.work);
    q_fini(&st.acks);
    free(st.token);
    free((void *)st.done);
    rts_offsets_free(st.o);
}

int main(void)
{
    RUN(new_bounds);
    RUN(in_order_and_out_of_order);
    RUN(gapped_offsets);
    RUN(holds);
    RUN(full_and_wrap);
    RUN(revoke_and_reassign);
    RUN(slots_and_bad_tokens);
    RUN(random_model);
    RUN(stress_threads);
    return TEST_EXIT();
}
