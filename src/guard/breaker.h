/*
 * breaker.h - a circuit breaker in front of one dependency (the model stage;
 * online stores later), shared by every worker thread that calls it.
 *
 * States (the circuit_state metric uses these values):
 *   CLOSED (0)    calls go through. Each recorded outcome lands in a rolling
 *                 window of window_ms split into `buckets` buckets of
 *                 window_ms / buckets; a bucket is forgotten whole once it
 *                 leaves the window. A failure is an error (ok == 0) or a call
 *                 slower than timeout_ns (duration > timeout_ns; 0 disables
 *                 the rule). When an outcome leaves the window holding
 *                 calls >= min_calls and failures / calls >= failure_ratio
 *                 (both inclusive, the ratio resolved to 1e-6), it trips:
 *                 CLOSED -> OPEN. It trips too, whatever the window holds,
 *                 when `consecutive` outcomes in a row are failures (in the
 *                 order the threads record them; 0 disables the rule): a
 *                 dependency that dies after a long healthy spell opens the
 *                 circuit after a few failed calls, not after the window's
 *                 successes have been outweighed. The window and the run
 *                 restart empty at each trip.
 *   OPEN (2)      every call is refused (use the fallback) until open_ms has
 *                 passed; the first rts_breaker_allow() at or after that time
 *                 moves it to HALF_OPEN and is itself the first probe.
 *   HALF_OPEN (1) at most probe_calls trial calls are let through in all
 *                 (others are refused as if open). probe_calls successes in a
 *                 row close it (HALF_OPEN -> CLOSED, backoff reset); any probe
 *                 failure reopens it (HALF_OPEN -> OPEN) for twice the
 *                 previous open time, capped at max_open_ms.
 * The OPEN -> HALF_OPEN move is lazy: rts_breaker_state() reports OPEN past
 * the deadline until the next rts_breaker_allow().
 *
 * Contract: every rts_breaker_allow() that returns 1 is followed by exactly
 * one rts_breaker_record() of that call. Outcomes recorded while OPEN are
 * ignored (calls admitted before the trip), and so are outcomes recorded in
 * HALF_OPEN when no probe is outstanding; otherwise a HALF_OPEN outcome is
 * taken as a probe's outcome.
 *
 * Time is always passed in (monotonic nanoseconds, below 2^62), never read,
 * so tests are deterministic. Threads may pass slightly different times; an
 * outcome older than the window is dropped from it.
 *
 * Threads: allow/record/state/stats are lock free and never allocate; any
 * number of threads may call them at once. The state is one atomic word and
 * every transition is one compare-and-swap, so each transition happens once
 * and is reported once: its counter is bumped and the optional callback runs
 * on the thread that won it, right after it (never under a lock, never twice).
 */
#ifndef RTS_GUARD_BREAKER_H
#define RTS_GUARD_BREAKER_H

#include <stdint.h>

#include "core/err.h"

#define RTS_BREAKER_MAX_BUCKETS 1024
#define RTS_BREAKER_MAX_MIN_CALLS (1u << 19) /* half a bucket's counter range */
#define RTS_BREAKER_MAX_PROBES 65535
#define RTS_BREAKER_NAME_MAX 64 /* longer names are truncated */

struct rts_breaker;

enum rts_breaker_state { RTS_BREAKER_CLOSED = 0, RTS_BREAKER_HALF_OPEN = 1, RTS_BREAKER_OPEN = 2 };

enum rts_breaker_transition {
    RTS_BREAKER_CLOSED_OPEN,      /* tripped */
    RTS_BREAKER_OPEN_HALF_OPEN,   /* open time over, probing */
    RTS_BREAKER_HALF_OPEN_CLOSED, /* probes succeeded */
    RTS_BREAKER_HALF_OPEN_OPEN,   /* a probe failed */
    RTS_BREAKER__TRANSITIONS
};

/* Options; a zero field takes its default. */
struct rts_breaker_opts {
    uint32_t window_ms;   /* rolling window; default 10000 */
    uint32_t buckets;     /* 1..RTS_BREAKER_MAX_BUCKETS, each >= 1 ms; default 10 */
    uint32_t min_calls;   /* outcomes in the window before it may trip; default 20 */
    uint32_t consecutive; /* failures in a row that trip it; 0: no such rule */
    double failure_ratio; /* (0, 1]; default 0.5 */
    uint64_t timeout_ns;  /* slower calls count as failures; 0: no such rule */
    uint32_t open_ms;     /* first open time; default 5000 */
    uint32_t probe_calls; /* 1..RTS_BREAKER_MAX_PROBES; default 3 */
    uint32_t max_open_ms; /* backoff cap, >= open_ms (== open_ms: no backoff);
                             default max(60000, open_ms) */
    /* Optional. Called by the thread that made a transition, once per
     * transition, with the time passed to the call that made it. It must not
     * call @b's allow/record (reading state and stats is fine). Callbacks of
     * two quick transitions on two threads may run concurrently and out of
     * order; the counters in struct rts_breaker_stats are bumped first. */
    void (*on_transition)(void *arg, const struct rts_breaker *b, enum rts_breaker_state from,
                          enum rts_breaker_state to, uint64_t now_ns);
    void *cb_arg;
};

/* Counters since creation; each read is atomic, the set is not a snapshot. */
struct rts_breaker_stats {
    uint64_t calls;    /* outcomes recorded */
    uint64_t failures; /* of those, failures (errors and slow calls) */
    uint64_t slow;     /* of the failures, ok but slower than timeout_ns */
    uint64_t refused;  /* allow() returned 0 */
    uint64_t probes;   /* allow() returned 1 in HALF_OPEN */
    uint64_t transitions[RTS_BREAKER__TRANSITIONS];
};

/* A closed breaker called @name (copied) for @o (NULL: all defaults). Returns
 * NULL with @eb filled (RTS_ERR_INVAL naming the bad option, RTS_ERR_NOMEM).
 * The caller owns it. Thread: any, before the workers use it. */
struct rts_breaker *rts_breaker_new(const char *name, const struct rts_breaker_opts *o,
                                    struct rts_errbuf *eb) __attribute__((warn_unused_result));
void rts_breaker_free(struct rts_breaker *b); /* NULL is a no-op; no caller may remain */

/* Before a call at @now_ns: 1 = go ahead (closed, or this is a half-open
 * probe), 0 = refused (use the fallback). May make OPEN -> HALF_OPEN.
 * Lock free; CLOSED costs one atomic load. Thread: any. */
int rts_breaker_allow(struct rts_breaker *b, uint64_t now_ns);

/* After an allowed call: it ended at @now_ns, @ok or not, after @duration_ns.
 * May make CLOSED -> OPEN, HALF_OPEN -> CLOSED or HALF_OPEN -> OPEN.
 * Lock free. Thread: any. */
void rts_breaker_record(struct rts_breaker *b, uint64_t now_ns, int ok, uint64_t duration_ns);

/* rts_breaker_record() from an error code: RTS_ERR_OK and the non-retriable
 * codes (the dependency answered; the request was bad) count as ok, the
 * retriable ones (rts_err_is_retriable: TIMEOUT, UNAVAIL, IO, ...) as
 * failures. */
void rts_breaker_record_err(struct rts_breaker *b, uint64_t now_ns, enum rts_err e,
                            uint64_t duration_ns);

/* An on_transition callback that logs each transition (warn on opening,
 * info otherwise) with the breaker's name; @arg is unused. */
void rts_breaker_log_transition(void *arg, const struct rts_breaker *b, enum rts_breaker_state from,
                                enum rts_breaker_state to, uint64_t now_ns);

enum rts_breaker_state rts_breaker_state(const struct rts_breaker *b); /* Thread: any */
const char *rts_breaker_state_name(enum rts_breaker_state s); /* "closed" "half_open" "open" */
const char *rts_breaker_name(const struct rts_breaker *b);
void rts_breaker_stats(const struct rts_breaker *b, struct rts_breaker_stats *out);

#endif /* RTS_GUARD_BREAKER_H */
