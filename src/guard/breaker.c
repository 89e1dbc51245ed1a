/*
 * breaker.c - the circuit breaker: one atomic control word for the state,
 * one atomic word per window bucket for the counts. No locks, no allocation
 * after rts_breaker_new().
 *
 * The control word packs everything a transition decides on, so that a
 * transition is one compare-and-swap from the exact word it was decided on,
 * and only the winner counts it and runs the callback:
 *   bits 0-1 state, bits 2-7 backoff level (open time = open_ns << level,
 *   capped), bits 8-63 a 56-bit payload:
 *     CLOSED     a close sequence number (unique per close, so a CLOSED word
 *                seen before a whole trip/probe/close cycle never matches the
 *                CLOSED word after it: no ABA on the trip)
 *     OPEN       the deadline in microseconds (2^56 us is 2284 years)
 *     HALF_OPEN  probes admitted (bits 8-23) and probe successes (bits 24-39);
 *                successes < admitted <= probe_calls while a probe is out.
 *
 * A bucket word packs tag (bits 40-63: the bucket's period, i.e. now / width,
 * modulo 2^24), calls (bits 20-39) and failures (bits 0-19). Period p lives in
 * slot p % n; a read counts a slot only if its tag is that of the period the
 * window expects there. hw is the highest period seen; the thread that raises
 * it re-tags (empties) the slots of the periods it skipped over, so no slot
 * keeps counts old enough for their tag to alias a current period (see
 * window_advance). A slot is written for period p only while p is within n
 * periods of hw, and every re-tag re-checks hw between its load and its CAS,
 * so an old period never overwrites a newer one. A counter about to overflow
 * halves both counts of its bucket (the ratio stays).
 */
#include "guard/breaker.h"

#include <limits.h>
#include <math.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"

#define BRK_LINE 64

#define CTL_STATE_MASK UINT64_C(0x3)
#define CTL_LEVEL_SHIFT 2
#define CTL_LEVEL_MASK UINT64_C(0x3f)
#define CTL_PAY_SHIFT 8
#define CTL_PAY_MASK ((UINT64_C(1) << 56) - 1)
#define HO_ADMIT_SHIFT 8
#define HO_SUCC_SHIFT 24
#define HO_CNT_MASK UINT64_C(0xffff)

#define BKT_CNT_BITS 20
#define BKT_CNT_MASK ((UINT64_C(1) << BKT_CNT_BITS) - 1)
#define BKT_TAG_SHIFT 40
#define BKT_TAG_MASK ((UINT64_C(1) << 24) - 1)

#define MS_NS UINT64_C(1000000)

struct rts_breaker {
    alignas(BRK_LINE) _Atomic uint64_t ctl;
    _Atomic uint64_t close_seq;

    /* immutable after creation */
    uint64_t width_ns; /* one bucket */
    uint32_t n;        /* buckets */
    uint32_t min_calls;
    uint32_t consecutive; /* 0: no run rule */
    uint64_t ratio_ppm;   /* failure_ratio * 1e6 */
    uint64_t timeout_ns;
    uint64_t open_ns;
    uint64_t max_open_ns;
    uint32_t probe_calls;
    void (*on_transition)(void *arg, const struct rts_breaker *b, enum rts_breaker_state from,
                          enum rts_breaker_state to, uint64_t now_ns);
    void *cb_arg;
    char name[RTS_BREAKER_NAME_MAX];

    alignas(BRK_LINE) _Atomic uint64_t calls;
    _Atomic uint64_t failures;
    _Atomic uint64_t slow;
    _Atomic uint64_t refused;
    _Atomic uint64_t probes;
    _Atomic uint64_t transitions[RTS_BREAKER__TRANSITIONS];

    _Atomic uint64_t run; /* failures recorded in a row while CLOSED */

    alignas(BRK_LINE) _Atomic uint64_t hw; /* highest period seen */
    _Atomic uint64_t bucket[];
};

/* ---- words ---- */

static enum rts_breaker_state ctl_state(uint64_t w)
{
    return (enum rts_breaker_state)(w & CTL_STATE_MASK);
}

static unsigned ctl_level(uint64_t w)
{
    return (unsigned)((w >> CTL_LEVEL_SHIFT) & CTL_LEVEL_MASK);
}

static uint64_t ctl_pay(uint64_t w)
{
    return (w >> CTL_PAY_SHIFT) & CTL_PAY_MASK;
}

static uint64_t ctl_make(enum rts_breaker_state s, unsigned level, uint64_t pay)
{
    return (uint64_t)s | ((uint64_t)level << CTL_LEVEL_SHIFT) |
           ((pay & CTL_PAY_MASK) << CTL_PAY_SHIFT);
}

static uint64_t ho_admitted(uint64_t w)
{
    return (w >> HO_ADMIT_SHIFT) & HO_CNT_MASK;
}

static uint64_t ho_successes(uint64_t w)
{
    return (w >> HO_SUCC_SHIFT) & HO_CNT_MASK;
}

static uint64_t ho_make(unsigned level, uint64_t admitted, uint64_t successes)
{
    return ctl_make(RTS_BREAKER_HALF_OPEN, level, admitted | (successes << (HO_SUCC_SHIFT - 8)));
}

static uint64_t bkt_tag(uint64_t period)
{
    return period & BKT_TAG_MASK;
}

static uint64_t bkt_make(uint64_t period, uint64_t calls, uint64_t fails)
{
    return (bkt_tag(period) << BKT_TAG_SHIFT) | (calls << BKT_CNT_BITS) | fails;
}

static uint64_t bkt_calls(uint64_t w)
{
    return (w >> BKT_CNT_BITS) & BKT_CNT_MASK;
}

static uint64_t bkt_fails(uint64_t w)
{
    return w & BKT_CNT_MASK;
}

static int bkt_is(uint64_t w, uint64_t period)
{
    return (w >> BKT_TAG_SHIFT) == bkt_tag(period);
}

/* ---- creation ---- */

static const struct rts_breaker_opts default_opts = {
    .window_ms = 10000,
    .buckets = 10,
    .min_calls = 20,
    .failure_ratio = 0.5,
    .timeout_ns = 0,
    .open_ms = 5000,
    .probe_calls = 3,
    .max_open_ms = 60000,
};

struct rts_breaker *rts_breaker_new(const char *name, const struct rts_breaker_opts *o,
                                    struct rts_errbuf *eb)
{
    struct rts_breaker_opts d = o ? *o : default_opts;
    struct rts_breaker *b;
    size_t size, len;
    uint32_t i;

    if (!name) {
        name = "";
    }
    if (d.window_ms == 0) {
        d.window_ms = default_opts.window_ms;
    }
    if (d.buckets == 0) {
        d.buckets = default_opts.buckets;
    }
    if (d.min_calls == 0) {
        d.min_calls = default_opts.min_calls;
    }
    if (d.failure_ratio == 0) {
        d.failure_ratio = default_opts.failure_ratio;
    }
    if (d.open_ms == 0) {
        d.open_ms = default_opts.open_ms;
    }
    if (d.probe_calls == 0) {
        d.probe_calls = default_opts.probe_calls;
    }
    if (d.max_open_ms == 0) {
        d.max_open_ms = d.open_ms > default_opts.max_open_ms ? d.open_ms : default_opts.max_open_ms;
    }
    if (d.buckets > RTS_BREAKER_MAX_BUCKETS) {
        rts_errf(eb, RTS_ERR_INVAL, 0, 0, "breaker %s: buckets: %u is more than %d", name,
                 d.buckets, RTS_BREAKER_MAX_BUCKETS);
        return NULL;
    }
    if (d.window_ms / d.buckets == 0) {
        rts_errf(eb, RTS_ERR_INVAL, 0, 0,
                 "breaker %s: window_ms: %u ms in %u buckets is less than 1 ms a bucket", name,
                 d.window_ms, d.buckets);
        return NULL;
    }
    if (d.min_calls > RTS_BREAKER_MAX_MIN_CALLS) {
        rts_errf(eb, RTS_ERR_INVAL, 0, 0, "breaker %s: min_calls: %u is more than %u", name,
                 d.min_calls, RTS_BREAKER_MAX_MIN_CALLS);
        return NULL;
    }
    if (!(d.failure_ratio > 0 && d.failure_ratio <= 1)) {
        rts_errf(eb, RTS_ERR_INVAL, 0, 0, "breaker %s: failure_ratio: %g is not in (0, 1]", name,
                 d.failure_ratio);
        return NULL;
    }
    if (d.probe_calls > RTS_BREAKER_MAX_PROBES) {
        rts_errf(eb, RTS_ERR_INVAL, 0, 0, "breaker %s: probe_calls: %u is more than %d", name,
                 d.probe_calls, RTS_BREAKER_MAX_PROBES);
        return NULL;
    }
    if (d.max_open_ms < d.open_ms) {
        rts_errf(eb, RTS_ERR_INVAL, 0, 0, "breaker %s: max_open_ms: %u is less than open_ms %u",
                 name, d.max_open_ms, d.open_ms);
        return NULL;
    }

    size = sizeof(*b) + (size_t)d.buckets * sizeof(b->bucket[0]);
    size = (size + BRK_LINE - 1) / BRK_LINE * BRK_LINE;
    b = aligned_alloc(BRK_LINE, size);
    if (!b) {
        rts_errf(eb, RTS_ERR_NOMEM, 0, 0, "breaker %s: out of memory", name);
        return NULL;
    }
    memset(b, 0, size);
    atomic_init(&b->ctl, ctl_make(RTS_BREAKER_CLOSED, 0, 0));
    atomic_init(&b->close_seq, 0);
    b->width_ns = (uint64_t)d.window_ms * MS_NS / d.buckets;
    b->n = d.buckets;
    b->min_calls = d.min_calls;
    b->consecutive = d.consecutive;
    b->ratio_ppm = (uint64_t)llround(d.failure_ratio * 1e6);
    if (b->ratio_ppm == 0) {
        b->ratio_ppm = 1;
    }
    b->timeout_ns = d.timeout_ns;
    b->open_ns = (uint64_t)d.open_ms * MS_NS;
    b->max_open_ns = (uint64_t)d.max_open_ms * MS_NS;
    b->probe_calls = d.probe_calls;
    b->on_transition = d.on_transition;
    b->cb_arg = d.cb_arg;
    len = strlen(name);
    if (len >= sizeof(b->name)) {
        len = sizeof(b->name) - 1;
    }
    memcpy(b->name, name, len);
    b->name[len] = '\0';
    atomic_init(&b->calls, 0);
    atomic_init(&b->failures, 0);
    atomic_init(&b->slow, 0);
    atomic_init(&b->refused, 0);
    atomic_init(&b->probes, 0);
    for (i = 0; i < RTS_BREAKER__TRANSITIONS; i++) {
        atomic_init(&b->transitions[i], 0);
    }
    atomic_init(&b->run, 0);
    atomic_init(&b->hw, 0);
    for (i = 0; i < b->n; i++) {
        atomic_init(&b->bucket[i], 0);
    }
    return b;
}

void rts_breaker_free(struct rts_breaker *b)
{
    free(b);
}

/* ---- transitions ---- */

/* The open time at backoff @level: open_ns doubled @level times, capped. */
static uint64_t open_time(const struct rts_breaker *b, unsigned level)
{
    if (level >= 40 || (b->open_ns << level) > b->max_open_ns) {
        return b->max_open_ns;
    }
    return b->open_ns << level;
}

static uint64_t open_word(const struct rts_breaker *b, unsigned level, uint64_t now_ns)
{
    uint64_t until_us = (now_ns + open_time(b, level) + 999) / 1000;

    return ctl_make(RTS_BREAKER_OPEN, level, until_us);
}

/* Count and report a transition the caller just won. */
static void transitioned(struct rts_breaker *b, enum rts_breaker_transition t,
                         enum rts_breaker_state from, enum rts_breaker_state to, uint64_t now_ns)
{
    atomic_fetch_add_explicit(&b->transitions[t], 1, memory_order_relaxed);
    if (b->on_transition) {
        b->on_transition(b->cb_arg, b, from, to, now_ns);
    }
}

/* ---- the window ---- */

/* Re-tag slot of @period (empty) unless it already holds it or a later
 * advance has claimed the slot for a newer period. */
static void sweep_slot(struct rts_breaker *b, uint64_t period)
{
    _Atomic uint64_t *slot = &b->bucket[period % b->n];
    uint64_t w = atomic_load(slot);

    for (;;) {
        if (bkt_is(w, period) || atomic_load(&b->hw) >= period + b->n) {
            return;
        }
        if (atomic_compare_exchange_weak(slot, &w, bkt_make(period, 0, 0))) {
            return;
        }
    }
}

/* Raise hw to @period; the winner empties the slots of the periods skipped.
 * By induction every slot then holds a period within n of hw, so a tag can
 * only alias across a jump of nearly 2^24 periods: such a jump (an idle of
 * hours) empties every slot outright, at the cost of losing a concurrent
 * outcome or two. */
static void window_advance(struct rts_breaker *b, uint64_t period)
{
    uint64_t hw = atomic_load(&b->hw);
    uint64_t p;

    while (hw < period) {
        if (atomic_compare_exchange_weak(&b->hw, &hw, period)) {
            p = period - hw > b->n ? period - b->n + 1 : hw + 1;
            for (; p <= period; p++) {
                if (period - hw > BKT_TAG_MASK / 2) {
                    atomic_store(&b->bucket[p % b->n], bkt_make(p, 0, 0));
                } else {
                    sweep_slot(b, p);
                }
            }
            return;
        }
    }
}

/* Add one outcome to the bucket of @period; returns 0 if it is too old for
 * the window (dropped). */
static int window_add(struct rts_breaker *b, uint64_t period, int fail)
{
    _Atomic uint64_t *slot = &b->bucket[period % b->n];
    uint64_t w, nw, calls, fails;

    if (period > atomic_load(&b->hw)) {
        window_advance(b, period);
    }
    w = atomic_load(slot);
    for (;;) {
        if (bkt_is(w, period)) {
            calls = bkt_calls(w);
            fails = bkt_fails(w);
            if (calls == BKT_CNT_MASK) {
                calls /= 2;
                fails /= 2;
            }
            nw = bkt_make(period, calls + 1, fails + (fail != 0));
        } else {
            /* The slot holds an older period (not swept yet, or emptied by a
             * trip) unless hw has moved a window past ours. */
            if (atomic_load(&b->hw) >= period + b->n) {
                return 0;
            }
            nw = bkt_make(period, 1, fail != 0);
        }
        if (atomic_compare_exchange_weak(slot, &w, nw)) {
            return 1;
        }
    }
}

/* Does the window ending at @period call for a trip? */
static int window_trips(const struct rts_breaker *b, uint64_t period)
{
    uint64_t calls = 0, fails = 0, w, p;
    uint32_t i;

    for (i = 0; i < b->n && i <= period; i++) {
        p = period - i;
        w = atomic_load(&b->bucket[p % b->n]);
        if (bkt_is(w, p)) {
            calls += bkt_calls(w);
            fails += bkt_fails(w);
        }
    }
    return calls >= b->min_calls && fails * 1000000 >= b->ratio_ppm * calls;
}

static void window_clear(struct rts_breaker *b)
{
    uint32_t i;

    for (i = 0; i < b->n; i++) {
        atomic_store(&b->bucket[i], 0);
    }
}

/* ---- the calls ---- */

int rts_breaker_allow(struct rts_breaker *b, uint64_t now_ns)
{
    uint64_t w = atomic_load_explicit(&b->ctl, memory_order_acquire);
    uint64_t nw;

    for (;;) {
        switch (ctl_state(w)) {
        case RTS_BREAKER_CLOSED:
            return 1;
        case RTS_BREAKER_OPEN:
            if (now_ns / 1000 < ctl_pay(w)) {
                goto refused;
            }
            nw = ho_make(ctl_level(w), 1, 0);
            if (atomic_compare_exchange_weak(&b->ctl, &w, nw)) {
                atomic_fetch_add_explicit(&b->probes, 1, memory_order_relaxed);
                transitioned(b, RTS_BREAKER_OPEN_HALF_OPEN, RTS_BREAKER_OPEN, RTS_BREAKER_HALF_OPEN,
                             now_ns);
                return 1;
            }
            break;
        case RTS_BREAKER_HALF_OPEN:
        default:
            if (ho_admitted(w) >= b->probe_calls) {
                goto refused;
            }
            nw = ho_make(ctl_level(w), ho_admitted(w) + 1, ho_successes(w));
            if (atomic_compare_exchange_weak(&b->ctl, &w, nw)) {
                atomic_fetch_add_explicit(&b->probes, 1, memory_order_relaxed);
                return 1;
            }
            break;
        }
    }
refused:
    atomic_fetch_add_explicit(&b->refused, 1, memory_order_relaxed);
    return 0;
}

void rts_breaker_record(struct rts_breaker *b, uint64_t now_ns, int ok, uint64_t duration_ns)
{
    int slow = ok && b->timeout_ns && duration_ns > b->timeout_ns;
    int fail = !ok || slow;
    uint64_t period = now_ns / b->width_ns;
    uint64_t w, nw, seq, run = 0;
    unsigned level;
    int added = 0;

    atomic_fetch_add_explicit(&b->calls, 1, memory_order_relaxed);
    if (fail) {
        atomic_fetch_add_explicit(&b->failures, 1, memory_order_relaxed);
    }
    if (slow) {
        atomic_fetch_add_explicit(&b->slow, 1, memory_order_relaxed);
    }
    w = atomic_load_explicit(&b->ctl, memory_order_acquire);
    for (;;) {
        switch (ctl_state(w)) {
        case RTS_BREAKER_CLOSED:
            if (!added) {
                if (fail) {
                    run = atomic_fetch_add_explicit(&b->run, 1, memory_order_relaxed) + 1;
                } else if (atomic_load_explicit(&b->run, memory_order_relaxed)) {
                    atomic_store_explicit(&b->run, 0, memory_order_relaxed);
                }
                if (!window_add(b, period, fail) && !run) {
                    return;
                }
                added = 1;
            }
            if (!(b->consecutive && run >= b->consecutive) && !window_trips(b, period)) {
                return;
            }
            /* The CAS fails if anything moved since @w was read, including a
             * whole cycle back to CLOSED (new close sequence): re-decide. */
            if (atomic_compare_exchange_strong(&b->ctl, &w, open_word(b, 0, now_ns))) {
                window_clear(b);
                atomic_store_explicit(&b->run, 0, memory_order_relaxed);
                transitioned(b, RTS_BREAKER_CLOSED_OPEN, RTS_BREAKER_CLOSED, RTS_BREAKER_OPEN,
                             now_ns);
                return;
            }
            break;
        case RTS_BREAKER_OPEN:
            return; /* admitted before the trip */
        case RTS_BREAKER_HALF_OPEN:
        default:
            if (ho_successes(w) >= ho_admitted(w)) {
                return; /* no probe out: admitted before the trip */
            }
            level = ctl_level(w);
            if (fail) {
                if (level < CTL_LEVEL_MASK && open_time(b, level) < b->max_open_ns) {
                    level++;
                }
                if (atomic_compare_exchange_weak(&b->ctl, &w, open_word(b, level, now_ns))) {
                    transitioned(b, RTS_BREAKER_HALF_OPEN_OPEN, RTS_BREAKER_HALF_OPEN,
                                 RTS_BREAKER_OPEN, now_ns);
                    return;
                }
            } else if (ho_successes(w) + 1 >= b->probe_calls) {
                seq = atomic_fetch_add(&b->close_seq, 1) + 1;
                nw = ctl_make(RTS_BREAKER_CLOSED, 0, seq);
                if (atomic_compare_exchange_weak(&b->ctl, &w, nw)) {
                    transitioned(b, RTS_BREAKER_HALF_OPEN_CLOSED, RTS_BREAKER_HALF_OPEN,
                                 RTS_BREAKER_CLOSED, now_ns);
                    return;
                }
            } else {
                nw = ho_make(level, ho_admitted(w), ho_successes(w) + 1);
                if (atomic_compare_exchange_weak(&b->ctl, &w, nw)) {
                    return;
                }
            }
            break;
        }
    }
}

void rts_breaker_record_err(struct rts_breaker *b, uint64_t now_ns, enum rts_err e,
                            uint64_t duration_ns)
{
    rts_breaker_record(b, now_ns, e == RTS_ERR_OK || !rts_err_is_retriable(e), duration_ns);
}

/* ---- reading ---- */

enum rts_breaker_state rts_breaker_state(const struct rts_breaker *b)
{
    return ctl_state(atomic_load_explicit(&b->ctl, memory_order_acquire));
}

const char *rts_breaker_state_name(enum rts_breaker_state s)
{
    switch (s) {
    case RTS_BREAKER_CLOSED:
        return "closed";
    case RTS_BREAKER_HALF_OPEN:
        return "half_open";
    case RTS_BREAKER_OPEN:
        return "open";
    }
    return "unknown";
}

const char *rts_breaker_name(const struct rts_breaker *b)
{
    return b->name;
}

void rts_breaker_stats(const struct rts_breaker *b, struct rts_breaker_stats *out)
{
    const struct rts_breaker *m = b;
    int i;

    out->calls = atomic_load_explicit(&m->calls, memory_order_relaxed);
    out->failures = atomic_load_explicit(&m->failures, memory_order_relaxed);
    out->slow = atomic_load_explicit(&m->slow, memory_order_relaxed);
    out->refused = atomic_load_explicit(&m->refused, memory_order_relaxed);
    out->probes = atomic_load_explicit(&m->probes, memory_order_relaxed);
    for (i = 0; i < RTS_BREAKER__TRANSITIONS; i++) {
        out->transitions[i] = atomic_load_explicit(&m->transitions[i], memory_order_relaxed);
    }
}

void rts_breaker_log_transition(void *arg, const struct rts_breaker *b, enum rts_breaker_state from,
                                enum rts_breaker_state to, uint64_t now_ns)
{
    (void)arg;
    (void)now_ns;
    rts_log(to == RTS_BREAKER_OPEN ? RTS_LOG_WARN : RTS_LOG_INFO, "circuit breaker",
            "dependency=%s from=%s to=%s", rts_breaker_name(b), rts_breaker_state_name(from),
            rts_breaker_state_name(to));
}
