/*
 * test_breaker.c - unit tests of guard/breaker with injected time: option
 * checks; every transition at its exact threshold (min_calls, failure ratio
 * at and just below, slow calls as failures, the window rolling old failures
 * out at the bucket edge); the open time, half-open probe limits (also with
 * four threads racing for the probes), reopen with doubling open time capped
 * at max_open_ms and reset on close; outcomes that arrive late; stats and
 * callback counts; and a stress test of four threads hammering allow/record
 * over a shared injected clock while the dependency goes up and down: every
 * transition is legal, reported once by the callback, and the transition
 * counts balance as a state machine starting CLOSED must. Run it under ASan
 * and TSan. RTS_BREAKER_STRESS_N overrides the per-thread iteration count.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>

#include "guard/breaker.h"
#include "test.h"

#define MS UINT64_C(1000000)
#define SEC (1000 * MS)

/* ---- a callback that counts and checks ---- */

struct cb_log {
    _Atomic uint64_t n[3][3]; /* [from][to] */
    _Atomic uint64_t illegal;
    _Atomic uint64_t last_now;
};

static void cb_count(void *arg, const struct rts_breaker *b, enum rts_breaker_state from,
                     enum rts_breaker_state to, uint64_t now_ns)
{
    struct cb_log *log = arg;
    int legal = (from == RTS_BREAKER_CLOSED && to == RTS_BREAKER_OPEN) ||
                (from == RTS_BREAKER_OPEN && to == RTS_BREAKER_HALF_OPEN) ||
                (from == RTS_BREAKER_HALF_OPEN && to == RTS_BREAKER_CLOSED) ||
                (from == RTS_BREAKER_HALF_OPEN && to == RTS_BREAKER_OPEN);

    if (!legal || (unsigned)from > 2 || (unsigned)to > 2) {
        atomic_fetch_add(&log->illegal, 1);
        return;
    }
    atomic_fetch_add(&log->n[from][to], 1);
    atomic_store(&log->last_now, now_ns);
}

static uint64_t cb_n(struct cb_log *log, enum rts_breaker_state from, enum rts_breaker_state to)
{
    return atomic_load(&log->n[from][to]);
}

/* Window 10 s in 10 buckets, 10 calls, ratio 0.5, open 1 s (max 8 s), 2 probes. */
static struct rts_breaker_opts base_opts(struct cb_log *log)
{
    struct rts_breaker_opts o = {
        .window_ms = 10000,
        .buckets = 10,
        .min_calls = 10,
        .failure_ratio = 0.5,
        .open_ms = 1000,
        .probe_calls = 2,
        .max_open_ms = 8000,
        .on_transition = log ? cb_count : NULL,
        .cb_arg = log,
    };
    return o;
}

static void record_n(struct rts_breaker *b, uint64_t now, int ok, int n)
{
    int i;

    for (i = 0; i < n; i++) {
        rts_breaker_record(b, now, ok, 0);
    }
}

/* Trip a closed breaker made from base_opts at @now. */
static void trip(struct rts_breaker *b, uint64_t now)
{
    record_n(b, now, 0, 10);
}

/* ---- options ---- */

TEST(opts)
{
    struct rts_errbuf eb = {0};
    struct rts_breaker_opts o;
    struct rts_breaker *b;
    struct rts_breaker_stats st;
    char longname[200];

    b = rts_breaker_new("model", NULL, &eb);
    CHECK(b != NULL);
    CHECK_STR(rts_breaker_name(b), "model");
    CHECK_INT(rts_breaker_state(b), RTS_BREAKER_CLOSED);
    rts_breaker_stats(b, &st);
    CHECK_INT(st.calls + st.failures + st.refused + st.probes + st.transitions[0], 0);
    rts_breaker_free(b);

    memset(&o, 0, sizeof(o)); /* all defaults */
    memset(longname, 'x', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = '\0';
    b = rts_breaker_new(longname, &o, &eb);
    CHECK(b != NULL);
    CHECK_INT(strlen(rts_breaker_name(b)), RTS_BREAKER_NAME_MAX - 1);
    /* defaults: min_calls 20, ratio 0.5 */
    record_n(b, SEC, 0, 19);
    CHECK_INT(rts_breaker_state(b), RTS_BREAKER_CLOSED);
    record_n(b, SEC, 0, 1);
    CHECK_INT(rts_breaker_state(b), RTS_BREAKER_OPEN);
    /* default open 5 s */
    CHECK_INT(rts_breaker_allow(b, 6 * SEC - 1), 0);
    CHECK_INT(rts_breaker_allow(b, 6 * SEC), 1);
    rts_breaker_free(b);
    rts_breaker_free(NULL);

    o = base_opts(NULL);
    o.buckets = RTS_BREAKER_MAX_BUCKETS + 1;
    o.window_ms = 100000;
    CHECK(rts_breaker_new("m", &o, &eb) == NULL);
    CHECK_INT(eb.code, RTS_ERR_INVAL);
    CHECK(strstr(eb.msg, "buckets") != NULL);

    o = base_opts(NULL);
    o.window_ms = 5;
    o.buckets = 10;
    CHECK(rts_breaker_new("m", &o, &eb) == NULL);
    CHECK(strstr(eb.msg, "window_ms") != NULL);

    o = base_opts(NULL);
    o.failure_ratio = 1.5;
    CHECK(rts_breaker_new("m", &o, &eb) == NULL);
    CHECK(strstr(eb.msg, "failure_ratio") != NULL);
    o.failure_ratio = -0.1;
    CHECK(rts_breaker_new("m", &o, &eb) == NULL);
    o.failure_ratio = NAN;
    CHECK(rts_breaker_new("m", &o, &eb) == NULL);

    o = base_opts(NULL);
    o.max_open_ms = 500;
    CHECK(rts_breaker_new("m", &o, &eb) == NULL);
    CHECK(strstr(eb.msg, "max_open_ms") != NULL);

    o = base_opts(NULL);
    o.probe_calls = RTS_BREAKER_MAX_PROBES + 1;
    CHECK(rts_breaker_new("m", &o, &eb) == NULL);
    CHECK(strstr(eb.msg, "probe_calls") != NULL);

    o = base_opts(NULL);
    o.min_calls = RTS_BREAKER_MAX_MIN_CALLS + 1;
    CHECK(rts_breaker_new("m", &o, &eb) == NULL);
    CHECK(strstr(eb.msg, "min_calls") != NULL);

    CHECK_STR(rts_breaker_state_name(RTS_BREAKER_CLOSED), "closed");
    CHECK_STR(rts_breaker_state_name(RTS_BREAKER_HALF_OPEN), "half_open");
    CHECK_STR(rts_breaker_state_name(RTS_BREAKER_OPEN), "open");
}

/* ---- CLOSED -> OPEN ---- */

TEST(min_calls)
{
    struct cb_log log = {0};
    struct rts_breaker_opts o = base_opts(&log);
    struct rts_breaker *b = rts_breaker_new("m", &o, NULL);
    struct rts_breaker_stats st;

    record_n(b, SEC, 0, 9); /* 9 of 9 failed, but fewer than min_calls */
    CHECK_INT(rts_breaker_state(b), RTS_BREAKER_CLOSED);
    CHECK_INT(rts_breaker_allow(b, SEC), 1);
    CHECK_INT(cb_n(&log, RTS_BREAKER_CLOSED, RTS_BREAKER_OPEN), 0);
    rts_breaker_record(b, SEC + 5 * MS, 0, 0);
    CHECK_INT(rts_breaker_state(b), RTS_BREAKER_OPEN);
    CHECK_INT(cb_n(&log, RTS_BREAKER_CLOSED, RTS_BREAKER_OPEN), 1);
    CHECK_INT(atomic_load(&log.last_now), SEC + 5 * MS);
    CHECK_INT(rts_breaker_allow(b, SEC + 5 * MS), 0);
    rts_breaker_stats(b, &st);
    CHECK_INT(st.calls, 10);
    CHECK_INT(st.failures, 10);
    CHECK_INT(st.refused, 1);
    CHECK_INT(st.transitions[RTS_BREAKER_CLOSED_OPEN], 1);
    rts_breaker_free(b);

    /* A success can trip it too: the 10th call brings calls to min_calls
     * with 9/10 failed. */
    b = rts_breaker_new("m", &o, NULL);
    record_n(b, SEC, 0, 9);
    rts_breaker_record(b, SEC, 1, 0);
    CHECK_INT(rts_breaker_state(b), RTS_BREAKER_OPEN);
    rts_breaker_free(b);
    CHECK_INT(atomic_load(&log.illegal), 0);
}

/* A run of failures trips it whatever the window holds: after a long
 * healthy spell the ratio rule would need as many failures as the window
 * holds successes. A success breaks the run; a trip starts a new one. */
TEST(consecutive)
{
    struct cb_log log = {0};
    struct rts_breaker_opts o = base_opts(&log);
    struct rts_breaker *b;

    o.consecutive = 5;
    b = rts_breaker_new("c", &o, NULL);
    record_n(b, SEC, 1, 1000); /* healthy */
    record_n(b, 2 * SEC, 0, 4);
    rts_breaker_record(b, 2 * SEC, 1, 0); /* breaks the run */
    record_n(b, 2 * SEC, 0, 4);
    CHECK_INT(rts_breaker_state(b), RTS_BREAKER_CLOSED); /* 8 of 1009 failed: no ratio trip */
    rts_breaker_record(b, 2 * SEC + MS, 0, 0);           /* the fifth in a row */
    CHECK_INT(rts_breaker_state(b), RTS_BREAKER_OPEN);
    CHECK_INT(cb_n(&log, RTS_BREAKER_CLOSED, RTS_BREAKER_OPEN), 1);
    CHECK_INT(atomic_load(&log.last_now), 2 * SEC + MS);
    /* outcomes of calls admitted before the trip do not count while open */
    record_n(b, 2 * SEC + MS, 0, 10);
    /* probes close it; then the run starts from zero */
    CHECK_INT(rts_breaker_allow(b, 4 * SEC), 1);
    rts_breaker_record(b, 4 * SEC, 1, 0);
    CHECK_INT(rts_breaker_allow(b, 4 * SEC), 1);
    rts_breaker_record(b, 4 * SEC, 1, 0);
    CHECK_INT(rts_breaker_state(b), RTS_BREAKER_CLOSED);
    record_n(b, 4 * SEC, 1, 100);
    record_n(b, 4 * SEC, 0, 4);
    CHECK_INT(rts_breaker_state(b), RTS_BREAKER_CLOSED);
    rts_breaker_record(b, 4 * SEC, 0, 0);
    CHECK_INT(rts_breaker_state(b), RTS_BREAKER_OPEN);
    rts_breaker_free(b);

    /* slow calls are failures of the run too; 0 disables the rule */
    o.consecutive = 3;
    o.timeout_ns = MS;
    b = rts_breaker_new("c", &o, NULL);
    record_n(b, SEC, 1, 100);
    for (int i = 0; i < 3; i++) {
        rts_breaker_record(b, SEC, 1, 2 * MS);
    }
    CHECK_INT(rts_breaker_state(b), RTS_BREAKER_OPEN);
    rts_breaker_free(b);
    o.consecutive = 0;
    b = rts_breaker_new("c", &o, NULL);
    record_n(b, SEC, 1, 100);
    record_n(b, SEC, 0, 90);
    CHECK_INT(rts_breaker_state(b), RTS_BREAKER_CLOSED);
    rts_breaker_free(b);
    CHECK_INT(atomic_load(&log.illegal), 0);
}

TEST(ratio)
{
    struct rts_breaker_opts o = base_opts(NULL);
    struct rts_breaker *b;

    /* At the ratio: 5 ok then 5 failures, 5/10 = 0.5 trips on the 10th. */
    b = rts_breaker_new("m", &o, NULL);
    record_n(b, SEC, 1, 5);
    record_n(b, SEC, 0, 4);
    CHECK_INT(rts_breaker_state(b), RTS_BREAKER_CLOSED);
    record_n(b, SEC, 0, 1);
    CHECK_INT(rts_breaker_state(b), RTS_BREAKER_OPEN);
    rts_breaker_free(b);

    /* Just below: 6 ok, 4 failed, and every further pair keeps it below. */
    b = rts_breaker_new("m", &o, NULL);
    record_n(b, SEC, 1, 6);
    record_n(b, SEC, 0, 4);
    CHECK_INT(rts_breaker_state(b), RTS_BREAKER_CLOSED);
    rts_breaker_record(b, SEC, 0, 0); /* 5/11 */
    CHECK_INT(rts_breaker_state(b), RTS_BREAKER_CLOSED);
    rts_breaker_record(b, SEC, 0, 0); /* 6/12 */
    CHECK_INT(rts_breaker_state(b), RTS_BREAKER_OPEN);
    rts_breaker_free(b);

    /* 0.3 (not exact in binary): 3/10 is at the ratio, 3/11 below. */
    o.failure_ratio = 0.3;
    b = rts_breaker_new("m", &o, NULL);
    record_n(b, SEC, 1, 7);
    record_n(b, SEC, 0, 3);
    CHECK_INT(rts_breaker_state(b), RTS_BREAKER_OPEN);
    rts_breaker_free(b);
    b = rts_breaker_new("m", &o, NULL);
    record_n(b, SEC, 1, 8);
    record_n(b, SEC, 0, 3); /* 2/10 then 3/11 */
    CHECK_INT(rts_breaker_state(b), RTS_BREAKER_CLOSED);
    rts_breaker_record(b, SEC, 0, 0); /* 4/12 */
    CHECK_INT(rts_breaker_state(b), RTS_BREAKER_OPEN);
    rts_breaker_free(b);

    /* Ratio 1: only all-failed windows trip. */
    o.failure_ratio = 1.0;
    b = rts_breaker_new("m", &o, NULL);
    rts_breaker_record(b, SEC, 1, 0);
    record_n(b, SEC, 0, 30);
    CHECK_INT(rts_breaker_state(b), RTS_BREAKER_CLOSED);
    rts_breaker_free(b);
}

TEST(slow_calls)
{
    struct rts_breaker_opts o = base_opts(NULL);
    struct rts_breaker_stats st;
    struct rts_breaker *b;
    int i;

    o.timeout_ns = 5 * MS;
    b = rts_breaker_new("m", &o, NULL);
    for (i = 0; i < 20; i++) {
        rts_breaker_record(b, SEC, 1, 5 * MS); /* at the timeout: not slower */
    }
    CHECK_INT(rts_breaker_state(b), RTS_BREAKER_CLOSED);
    for (i = 0; i < 19; i++) {
        rts_breaker_record(b, SEC, 1, 5 * MS + 1); /* 19/39 */
    }
    CHECK_INT(rts_breaker_state(b), RTS_BREAKER_CLOSED);
    rts_breaker_record(b, SEC, 1, 5 * MS + 1); /* 20/40 */
    CHECK_INT(rts_breaker_state(b), RTS_BREAKER_OPEN);
    rts_breaker_stats(b, &st);
    CHECK_INT(st.calls, 40);
    CHECK_INT(st.failures, 20);
    CHECK_INT(st.slow, 20);
    rts_breaker_free(b);

    /* timeout 0: duration never matters */
    o.timeout_ns = 0;
    b = rts_breaker_new("m", &o, NULL);
    for (i = 0; i < 20; i++) {
        rts_breaker_record(b, SEC, 1, 100 * SEC);
    }
    CHECK_INT(rts_breaker_state(b), RTS_BREAKER_CLOSED);
    rts_breaker_free(b);

    /* error codes: retriable fail, non-retriable and OK do not */
    b = rts_breaker_new("m", &o, NULL);
    for (i = 0; i < 10; i++) {
        rts_breaker_record_err(b, SEC, i % 2 ? RTS_ERR_INVAL : RTS_ERR_OK, 0);
    }
    for (i = 0; i < 9; i++) {
        rts_breaker_record_err(b, SEC, i % 2 ? RTS_ERR_TIMEOUT : RTS_ERR_UNAVAIL, 0);
    }
    CHECK_INT(rts_breaker_state(b), RTS_BREAKER_CLOSED); /* 9/19 */
    rts_breaker_record_err(b, SEC, RTS_ERR_IO, 0);       /* 10/20 */
    CHECK_INT(rts_breaker_state(b), RTS_BREAKER_OPEN);
    rts_breaker_free(b);
}

TEST(window_rolls)
{
    struct rts_breaker_opts o = base_opts(NULL);
    struct rts_breaker *b;

    /* Buckets of 1 s: failures in [0, 1 s) are in the window up to 9.999 s
     * and gone at 10 s. */
    b = rts_breaker_new("m", &o, NULL);
    record_n(b, 500 * MS, 0, 5);
    record_n(b, 9 * SEC + 500 * MS, 0, 4);
    rts_breaker_record(b, 10 * SEC - 1, 1, 0); /* 9/10 */
    CHECK_INT(rts_breaker_state(b), RTS_BREAKER_OPEN);
    rts_breaker_free(b);

    b = rts_breaker_new("m", &o, NULL);
    record_n(b, 500 * MS, 0, 5);
    record_n(b, 9 * SEC + 500 * MS, 0, 4);
    rts_breaker_record(b, 10 * SEC, 1, 0); /* 4/5: the first 5 rolled out */
    CHECK_INT(rts_breaker_state(b), RTS_BREAKER_CLOSED);
    record_n(b, 10 * SEC, 1, 5); /* 4/10 */
    CHECK_INT(rts_breaker_state(b), RTS_BREAKER_CLOSED);
    /* An outcome from before the window (a lagging thread) is dropped. */
    record_n(b, 200 * MS, 0, 10);
    CHECK_INT(rts_breaker_state(b), RTS_BREAKER_CLOSED);
    /* A long idle forgets everything; counting restarts. */
    record_n(b, 1000 * SEC, 0, 9);
    CHECK_INT(rts_breaker_state(b), RTS_BREAKER_CLOSED);
    rts_breaker_record(b, 1000 * SEC, 0, 0);
    CHECK_INT(rts_breaker_state(b), RTS_BREAKER_OPEN);
    rts_breaker_free(b);

    /* 5 * 2^24 buckets later (same slot, same 24-bit tag) the old bucket's
     * tag aliases; the idle jump must have emptied it. */
    o.window_ms = 10;
    o.buckets = 10;
    b = rts_breaker_new("m", &o, NULL);
    record_n(b, 0, 0, 9);
    rts_breaker_record(b, 5 * (UINT64_C(1) << 24) * MS, 0, 0); /* 1/1, not 10/10 */
    CHECK_INT(rts_breaker_state(b), RTS_BREAKER_CLOSED);
    rts_breaker_free(b);
}

/* ---- OPEN, HALF_OPEN ---- */

TEST(half_open_probes)
{
    struct cb_log log = {0};
    struct rts_breaker_opts o = base_opts(&log);
    struct rts_breaker_stats st;
    struct rts_breaker *b;
    uint64_t t0 = 20 * SEC;

    o.probe_calls = 3;
    b = rts_breaker_new("m", &o, NULL);
    trip(b, t0);
    CHECK_INT(rts_breaker_allow(b, t0), 0);
    CHECK_INT(rts_breaker_allow(b, t0 + SEC - 1), 0);
    CHECK_INT(rts_breaker_state(b), RTS_BREAKER_OPEN);
    CHECK_INT(cb_n(&log, RTS_BREAKER_OPEN, RTS_BREAKER_HALF_OPEN), 0);
    CHECK_INT(rts_breaker_allow(b, t0 + SEC), 1); /* the first probe */
    CHECK_INT(rts_breaker_state(b), RTS_BREAKER_HALF_OPEN);
    CHECK_INT(cb_n(&log, RTS_BREAKER_OPEN, RTS_BREAKER_HALF_OPEN), 1);
    CHECK_INT(rts_breaker_allow(b, t0 + SEC), 1);
    CHECK_INT(rts_breaker_allow(b, t0 + SEC), 1);
    CHECK_INT(rts_breaker_allow(b, t0 + SEC), 0); /* probe_calls = 3 out */
    CHECK_INT(rts_breaker_allow(b, t0 + 100 * SEC), 0);
    rts_breaker_record(b, t0 + SEC, 1, 0);
    rts_breaker_record(b, t0 + SEC, 1, 0);
    CHECK_INT(rts_breaker_state(b), RTS_BREAKER_HALF_OPEN);
    CHECK_INT(rts_breaker_allow(b, t0 + SEC), 0); /* finished probes do not free slots */
    rts_breaker_record(b, t0 + SEC + 7, 1, 0);
    CHECK_INT(rts_breaker_state(b), RTS_BREAKER_CLOSED);
    CHECK_INT(cb_n(&log, RTS_BREAKER_HALF_OPEN, RTS_BREAKER_CLOSED), 1);
    CHECK_INT(atomic_load(&log.last_now), t0 + SEC + 7);
    CHECK_INT(rts_breaker_allow(b, t0 + SEC), 1);

    /* The window restarted empty at the trip: 9 failures do not trip. */
    record_n(b, t0 + SEC, 0, 9);
    CHECK_INT(rts_breaker_state(b), RTS_BREAKER_CLOSED);
    rts_breaker_record(b, t0 + SEC, 0, 0);
    CHECK_INT(rts_breaker_state(b), RTS_BREAKER_OPEN);

    rts_breaker_stats(b, &st);
    CHECK_INT(st.transitions[RTS_BREAKER_CLOSED_OPEN], 2);
    CHECK_INT(st.transitions[RTS_BREAKER_OPEN_HALF_OPEN], 1);
    CHECK_INT(st.transitions[RTS_BREAKER_HALF_OPEN_CLOSED], 1);
    CHECK_INT(st.transitions[RTS_BREAKER_HALF_OPEN_OPEN], 0);
    CHECK_INT(st.probes, 3);
    CHECK_INT(st.refused, 5);
    CHECK_INT(cb_n(&log, RTS_BREAKER_CLOSED, RTS_BREAKER_OPEN), 2);
    CHECK_INT(atomic_load(&log.illegal), 0);
    rts_breaker_free(b);
}

TEST(successes_in_a_row)
{
    struct rts_breaker_opts o = base_opts(NULL);
    struct rts_breaker *b;
    uint64_t t0 = 20 * SEC;

    o.probe_calls = 3;
    b = rts_breaker_new("m", &o, NULL);
    trip(b, t0);
    CHECK_INT(rts_breaker_allow(b, t0 + SEC), 1);
    CHECK_INT(rts_breaker_allow(b, t0 + SEC), 1);
    CHECK_INT(rts_breaker_allow(b, t0 + SEC), 1);
    rts_breaker_record(b, t0 + SEC, 1, 0);
    rts_breaker_record(b, t0 + SEC, 1, 0);
    rts_breaker_record(b, t0 + SEC, 0, 0); /* the 3rd fails: reopen */
    CHECK_INT(rts_breaker_state(b), RTS_BREAKER_OPEN);
    rts_breaker_free(b);

    /* A slow probe is a failed probe. */
    o.timeout_ns = MS;
    b = rts_breaker_new("m", &o, NULL);
    trip(b, t0);
    CHECK_INT(rts_breaker_allow(b, t0 + SEC), 1);
    rts_breaker_record(b, t0 + SEC, 1, 2 * MS);
    CHECK_INT(rts_breaker_state(b), RTS_BREAKER_OPEN);
    rts_breaker_free(b);
}

TEST(backoff)
{
    struct cb_log log = {0};
    struct rts_breaker_opts o = base_opts(&log);
    struct rts_breaker_stats st;
    struct rts_breaker *b;
    uint64_t t = 20 * SEC;
    uint64_t expect[] = {2000, 4000, 5000, 5000}; /* ms, after each probe failure */
    int i;

    o.probe_calls = 1;
    o.max_open_ms = 5000;
    b = rts_breaker_new("m", &o, NULL);
    trip(b, t);
    t += SEC; /* open for open_ms first */
    for (i = 0; i < 4; i++) {
        CHECK_INT(rts_breaker_allow(b, t - 1), 0);
        CHECK_INT(rts_breaker_allow(b, t), 1);
        rts_breaker_record(b, t + 3 * MS, 0, 3 * MS);
        CHECK_INT(rts_breaker_state(b), RTS_BREAKER_OPEN);
        t += 3 * MS + expect[i] * MS;
    }
    CHECK_INT(rts_breaker_allow(b, t - 1), 0);
    CHECK_INT(rts_breaker_allow(b, t), 1);
    rts_breaker_record(b, t, 1, 0);
    CHECK_INT(rts_breaker_state(b), RTS_BREAKER_CLOSED);

    /* Closing reset the backoff: the next trip opens for open_ms again. */
    trip(b, t);
    CHECK_INT(rts_breaker_allow(b, t + SEC - 1), 0);
    CHECK_INT(rts_breaker_allow(b, t + SEC), 1);

    rts_breaker_stats(b, &st);
    CHECK_INT(st.transitions[RTS_BREAKER_CLOSED_OPEN], 2);
    CHECK_INT(st.transitions[RTS_BREAKER_OPEN_HALF_OPEN], 6);
    CHECK_INT(st.transitions[RTS_BREAKER_HALF_OPEN_OPEN], 4);
    CHECK_INT(st.transitions[RTS_BREAKER_HALF_OPEN_CLOSED], 1);
    CHECK_INT(cb_n(&log, RTS_BREAKER_CLOSED, RTS_BREAKER_OPEN), 2);
    CHECK_INT(cb_n(&log, RTS_BREAKER_OPEN, RTS_BREAKER_HALF_OPEN), 6);
    CHECK_INT(cb_n(&log, RTS_BREAKER_HALF_OPEN, RTS_BREAKER_OPEN), 4);
    CHECK_INT(cb_n(&log, RTS_BREAKER_HALF_OPEN, RTS_BREAKER_CLOSED), 1);
    CHECK_INT(atomic_load(&log.illegal), 0);
    rts_breaker_free(b);

    /* max_open_ms == open_ms: no backoff. */
    o.max_open_ms = o.open_ms;
    b = rts_breaker_new("m", &o, NULL);
    t = 20 * SEC;
    trip(b, t);
    for (i = 0; i < 3; i++) {
        t += SEC;
        CHECK_INT(rts_breaker_allow(b, t - 1), 0);
        CHECK_INT(rts_breaker_allow(b, t), 1);
        rts_breaker_record(b, t, 0, 0);
    }
    rts_breaker_free(b);
}

TEST(late_outcomes)
{
    struct rts_breaker_opts o = base_opts(NULL);
    struct rts_breaker_stats st;
    struct rts_breaker *b;
    uint64_t t0 = 20 * SEC;

    b = rts_breaker_new("m", &o, NULL);
    /* 3 calls admitted while closed finish after the trip. */
    CHECK_INT(rts_breaker_allow(b, t0), 1);
    CHECK_INT(rts_breaker_allow(b, t0), 1);
    CHECK_INT(rts_breaker_allow(b, t0), 1);
    trip(b, t0);
    rts_breaker_record(b, t0 + 10 * MS, 0, 0); /* while open: ignored */
    CHECK_INT(rts_breaker_state(b), RTS_BREAKER_OPEN);
    CHECK_INT(rts_breaker_allow(b, t0 + SEC), 1);
    rts_breaker_record(b, t0 + SEC, 1, 0); /* the probe */
    rts_breaker_record(b, t0 + SEC, 0, 0); /* no probe out: ignored */
    CHECK_INT(rts_breaker_state(b), RTS_BREAKER_HALF_OPEN);
    CHECK_INT(rts_breaker_allow(b, t0 + SEC), 1);
    rts_breaker_record(b, t0 + SEC, 1, 0);
    CHECK_INT(rts_breaker_state(b), RTS_BREAKER_CLOSED);
    rts_breaker_stats(b, &st);
    CHECK_INT(st.calls, 14); /* still counted as calls */
    CHECK_INT(st.transitions[RTS_BREAKER_HALF_OPEN_OPEN], 0);
    rts_breaker_free(b);
}

/* ---- threads racing for the probes ---- */

#define RACE_THREADS 4

struct race {
    struct rts_breaker *b;
    _Atomic int go;
    _Atomic int ready;
    _Atomic uint64_t allowed;
    uint64_t now;
};

static void *race_thread(void *arg)
{
    struct race *r = arg;
    int i;

    atomic_fetch_add(&r->ready, 1);
    while (!atomic_load(&r->go)) {
    }
    for (i = 0; i < 1000; i++) {
        if (rts_breaker_allow(r->b, r->now)) {
            atomic_fetch_add(&r->allowed, 1);
        }
    }
    return NULL;
}

TEST(probe_race)
{
    struct cb_log log = {0};
    struct rts_breaker_opts o = base_opts(&log);
    struct rts_breaker_stats st;
    struct race r = {0};
    pthread_t t[RACE_THREADS];
    int round, i;

    o.probe_calls = 5;
    r.b = rts_breaker_new("m", &o, NULL);
    r.now = 20 * SEC;
    trip(r.b, r.now);
    for (round = 0; round < 20; round++) {
        /* Round 0 races the OPEN -> HALF_OPEN move too; the others race a
         * breaker that reopened after a failed probe. */
        r.now += 60 * SEC;
        atomic_store(&r.go, 0);
        atomic_store(&r.ready, 0);
        atomic_store(&r.allowed, 0);
        for (i = 0; i < RACE_THREADS; i++) {
            pthread_create(&t[i], NULL, race_thread, &r);
        }
        while (atomic_load(&r.ready) < RACE_THREADS) {
        }
        atomic_store(&r.go, 1);
        for (i = 0; i < RACE_THREADS; i++) {
            pthread_join(t[i], NULL);
        }
        CHECK_INT(atomic_load(&r.allowed), 5);
        CHECK_INT(rts_breaker_state(r.b), RTS_BREAKER_HALF_OPEN);
        rts_breaker_record(r.b, r.now, 0, 0);
        CHECK_INT(rts_breaker_state(r.b), RTS_BREAKER_OPEN);
    }
    rts_breaker_stats(r.b, &st);
    CHECK_INT(st.probes, 100);
    CHECK_INT(st.refused, 20 * (RACE_THREADS * 1000 - 5));
    CHECK_INT(st.transitions[RTS_BREAKER_OPEN_HALF_OPEN], 20);
    CHECK_INT(cb_n(&log, RTS_BREAKER_OPEN, RTS_BREAKER_HALF_OPEN), 20);
    CHECK_INT(st.transitions[RTS_BREAKER_HALF_OPEN_OPEN], 20);
    rts_breaker_free(r.b);
}

/* ---- stress ---- */

#define STRESS_THREADS 4
#define STEP_NS (20 * 1000)

struct stress {
    struct rts_breaker *b;
    _Atomic uint64_t clock;
    _Atomic int go;
    _Atomic int done;
    int iters;
};

struct stress_thread {
    struct stress *s;
    uint64_t seed;
    uint64_t allowed, refused, recorded, failed;
};

static uint64_t rnd(uint64_t *s)
{
    uint64_t x = *s += UINT64_C(0x9e3779b97f4a7c15);

    x = (x ^ (x >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    x = (x ^ (x >> 27)) * UINT64_C(0x94d049bb133111eb);
    return x ^ (x >> 31);
}

static void *stress_thread(void *arg)
{
    struct stress_thread *st = arg;
    struct stress *s = st->s;
    uint64_t now, dur, pfail;
    int i, ok;

    while (!atomic_load(&s->go)) {
    }
    for (i = 0; i < s->iters; i++) {
        now = atomic_fetch_add(&s->clock, STEP_NS);
        if (!rts_breaker_allow(s->b, now)) {
            st->refused++;
            continue;
        }
        st->allowed++;
        /* The dependency is down 200 ms in every 600: 90% errors; up: 3%. */
        pfail = (now / (200 * MS)) % 3 == 0 ? 90 : 3;
        ok = rnd(&st->seed) % 100 >= pfail;
        dur = rnd(&st->seed) % (1200 * 1000); /* 0 - 1.2 ms; timeout 1 ms */
        st->failed += !ok || dur > 1000000;
        rts_breaker_record(s->b, atomic_load(&s->clock), ok, dur);
        st->recorded++;
    }
    atomic_fetch_add(&s->done, 1);
    return NULL;
}

TEST(stress)
{
    struct cb_log log = {0};
    struct rts_breaker_opts o = {
        .window_ms = 1000,
        .buckets = 10,
        .min_calls = 20,
        .failure_ratio = 0.5,
        .timeout_ns = MS,
        .open_ms = 100,
        .probe_calls = 3,
        .max_open_ms = 800,
        .on_transition = cb_count,
        .cb_arg = &log,
    };
    struct stress s = {0};
    struct stress_thread th[STRESS_THREADS];
    struct rts_breaker_stats st;
    pthread_t t[STRESS_THREADS];
    uint64_t allowed = 0, refused = 0, recorded = 0, failed = 0, samples = 0, bad = 0;
    uint64_t co, oh, hc, ho;
    enum rts_breaker_state end, seen;
    const char *env = getenv("RTS_BREAKER_STRESS_N");
    int i;

    s.iters = env ? (int)strtol(env, NULL, 10) : 200000;
    s.b = rts_breaker_new("stress", &o, NULL);
    atomic_store(&s.clock, 1000 * SEC);
    for (i = 0; i < STRESS_THREADS; i++) {
        memset(&th[i], 0, sizeof(th[i]));
        th[i].s = &s;
        th[i].seed = (uint64_t)i * 7919 + 1;
        pthread_create(&t[i], NULL, stress_thread, &th[i]);
    }
    atomic_store(&s.go, 1);
    /* Watch the state from outside while they run. */
    while (atomic_load(&s.done) < STRESS_THREADS) {
        seen = rts_breaker_state(s.b);
        bad +=
            seen != RTS_BREAKER_CLOSED && seen != RTS_BREAKER_HALF_OPEN && seen != RTS_BREAKER_OPEN;
        samples++;
    }
    CHECK_INT(bad, 0);
    for (i = 0; i < STRESS_THREADS; i++) {
        pthread_join(t[i], NULL);
        allowed += th[i].allowed;
        refused += th[i].refused;
        recorded += th[i].recorded;
        failed += th[i].failed;
    }
    rts_breaker_stats(s.b, &st);
    CHECK_INT(st.calls, recorded);
    CHECK_INT(st.failures, failed);
    CHECK_INT(st.refused, refused);
    CHECK_INT(allowed + refused, (uint64_t)STRESS_THREADS * (uint64_t)s.iters);
    CHECK_INT(atomic_load(&log.illegal), 0);

    co = cb_n(&log, RTS_BREAKER_CLOSED, RTS_BREAKER_OPEN);
    oh = cb_n(&log, RTS_BREAKER_OPEN, RTS_BREAKER_HALF_OPEN);
    hc = cb_n(&log, RTS_BREAKER_HALF_OPEN, RTS_BREAKER_CLOSED);
    ho = cb_n(&log, RTS_BREAKER_HALF_OPEN, RTS_BREAKER_OPEN);
    /* every transition reported once */
    CHECK_INT(co, st.transitions[RTS_BREAKER_CLOSED_OPEN]);
    CHECK_INT(oh, st.transitions[RTS_BREAKER_OPEN_HALF_OPEN]);
    CHECK_INT(hc, st.transitions[RTS_BREAKER_HALF_OPEN_CLOSED]);
    CHECK_INT(ho, st.transitions[RTS_BREAKER_HALF_OPEN_OPEN]);
    /* a walk from CLOSED: entries (the start counts for CLOSED) equal exits,
     * plus one for the state it ends in */
    end = rts_breaker_state(s.b);
    CHECK_INT(hc + 1, co + (end == RTS_BREAKER_CLOSED));
    CHECK_INT(co + ho, oh + (end == RTS_BREAKER_OPEN));
    CHECK_INT(oh, hc + ho + (end == RTS_BREAKER_HALF_OPEN));
    /* probes: at most probe_calls per half-open period */
    CHECK(st.probes <= 3 * oh);
    CHECK(st.probes >= oh);
    /* the run must actually have exercised the machine */
    if (s.iters >= 100000) {
        CHECK(co >= 3);
        CHECK(hc >= 3);
        CHECK(ho >= 3);
    }
    fprintf(stderr,
            "     stress: %llu ops, %llu refused, transitions c>o %llu o>h %llu h>c %llu "
            "h>o %llu, %llu samples\n",
            (unsigned long long)(allowed + refused), (unsigned long long)refused,
            (unsigned long long)co, (unsigned long long)oh, (unsigned long long)hc,
            (unsigned long long)ho, (unsigned long long)samples);
    rts_breaker_free(s.b);
}

int main(void)
{
    RUN(opts);
    RUN(min_calls);
    RUN(consecutive);
    RUN(ratio);
    RUN(slow_calls);
    RUN(window_rolls);
    RUN(half_open_probes);
    RUN(successes_in_a_row);
    RUN(backoff);
    RUN(late_outcomes);
    RUN(probe_race);
    RUN(stress);
    return TEST_EXIT();
}
