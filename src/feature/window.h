/*
 * window.h - sliding event-time windows (count, sum, min, max) over a ring of
 * buckets, stored inline in a key's value block.
 *
 * A window of width W ms split in n buckets has the resolution r = ceil(W/n)
 * ms; event time t falls in bucket ordinal b(t) = floor(t / r) (floor, so
 * negative times work). The state remembers the newest ordinal N it has seen
 * and one slot per ordinal of (N - n, N]: slot b mod n. Only the ordinals of
 * that range can be stored, so a slot's ordinal is implied by N and its index;
 * when N advances, the slots of the ordinals skipped over are emptied (at most
 * n of them), so a slot never holds another ordinal's data. A zeroed state
 * block is an empty window.
 *
 * Resolution rule. The window seen at ts holds the buckets (b(ts) - n, b(ts)],
 * i.e. the events with t in [(b(ts) - n + 1) r, (b(ts) + 1) r): a span of n r
 * ms, which is W when n divides W (the usual case: 5m, 24h, 30d all divide by
 * 32) and at most n - 1 ms more otherwise. For an event of age a = ts - t:
 *   a <= (n - 1) r : always counted;
 *   a >= n r       : never counted;
 *   in between     : counted iff it is in the oldest bucket (within one bucket
 *                    of the edge: the approximation of a bucketed window);
 *   a < 0          : an event seen out of order with t > ts is counted iff it
 *                    shares ts's bucket; events of newer buckets are not.
 * Results are thus exact when no event lies within one bucket of the window's
 * edges. An event whose bucket has already left the ring (b(t) <= N - n) is
 * too old: it is refused and not applied.
 *
 * Counts are 32 bit per bucket (saturating at 2^32 - 1 events per bucket per
 * key); sums are doubles added in a fixed bucket order, so the same event
 * sequence gives bit-identical results (backfill == live). Values must not
 * be NaN: a missing value is the caller's to skip (or to add to a count-only
 * window, which counts events, not values).
 *
 * Exact windows (spec.exact = N > 0). Beside the ring, the state holds the
 * N events of greatest (time, value) order seen (ties in time broken by value
 * ascending, -0 stored as 0, so which events are held never depends on
 * arrival order), sorted by that order. Every event goes in, late ones too: a
 * late event is too old for the ring, not for the N newest. When full, the
 * least is dropped (an event less than every held one is not kept); then the
 * events at or before t - W - S are dropped (t the event's time, S = n r the
 * ring's span: no window of an event the ring accepts reaches them).
 * The window at ts is exact, computed over the held events with time in
 * (ts - W, ts], when the held events cover it: none held, or
 *   (fewer than N held, or the oldest held time <= ts - W)  - nothing dropped
 *                                                             for room is in it
 *   and ts >= newest held time - S                          - nor dropped for age.
 * Otherwise the ring answers (an overflow). Exact sums add the values in
 * ascending (time, value) order, one accumulator; count, min and max are
 * exact; an empty window is count 0, sum 0, min and max NaN, as the ring's.
 * Cost: 8 + 16 N bytes more per window; an add inserts in place (at the end
 * for events in time order), a query walks the held events from the newest
 * to the window's edge.
 *
 * Thread: a state block belongs to the worker that owns its key; these
 * functions never allocate, lock or call the system.
 */
#ifndef RTS_FEATURE_WINDOW_H
#define RTS_FEATURE_WINDOW_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

enum { RTS_WIN_SUM = 1, RTS_WIN_MIN = 2, RTS_WIN_MAX = 4 }; /* count is always kept */

#define RTS_WIN_MAX_BUCKETS 65536u /* bounds the state of one window (rts_win_check) */
#define RTS_WIN_MAX_EXACT 4096u    /* events an exact window holds at most */

struct rts_win_spec {
    int64_t width_ms;  /* >= 1 */
    uint32_t nbuckets; /* 1 .. RTS_WIN_MAX_BUCKETS */
    unsigned aggs;     /* RTS_WIN_SUM | RTS_WIN_MIN | RTS_WIN_MAX, or 0 for count only */
    uint32_t exact;    /* events held exactly, 0 .. RTS_WIN_MAX_EXACT (0 = ring only) */
};

struct rts_win_agg {
    double count, sum, min, max; /* min/max NaN and sum 0 when count == 0 */
};

/* One held event of an exact window. */
struct rts_win_held {
    int64_t t;
    double v;
};

/* Which state answered a query. */
enum rts_win_answer {
    RTS_WIN_RING = 0,    /* the ring: the window has no held events */
    RTS_WIN_EXACT = 1,   /* the held events (they cover the window) */
    RTS_WIN_OVERFLOW = 2 /* the ring, because the held events do not cover it */
};

/* floor(a / b) and the matching non-negative remainder, for b > 0. */
static inline int64_t rts_floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;

    if (a % b < 0) {
        q--;
    }
    return q;
}

static inline uint32_t rts_floor_mod(int64_t a, uint32_t n)
{
    int64_t m = a % (int64_t)n;

    return (uint32_t)(m < 0 ? m + (int64_t)n : m);
}

/* RTS_ERR_OK if @w is usable by the functions below, else RTS_ERR_INVAL with
 * @eb naming the field. The other functions assume a checked spec.
 * Thread: any. */
enum rts_err rts_win_check(const struct rts_win_spec *w, struct rts_errbuf *eb);

/* Bytes of state for @w, a multiple of 8; the block must be 8-aligned. */
size_t rts_win_size(const struct rts_win_spec *w);

/* The bucket width r = ceil(width / nbuckets), >= 1. */
int64_t rts_win_resolution_ms(const struct rts_win_spec *w);

/* Apply value @v (ignored if aggs == 0) at event time @ts_ms. Returns 0 if
 * applied, 1 if the event is too old for the ring (its bucket ordinal <=
 * newest ordinal seen - nbuckets): not applied to it (an exact window still
 * holds it, as said above). O(1) amortized, O(nbuckets) worst case when the
 * window jumps forward; an exact window's insert moves the held events newer
 * than @ts_ms. */
int rts_win_add(const struct rts_win_spec *w, void *st, int64_t ts_ms, double v);

/* The window as seen at @ts_ms into @out: an exact window's held events when
 * they cover it, else the ring (see the resolution rule above): buckets
 * newer than b(ts) (later events seen out of order) are excluded; when ts is
 * older than the newest event, the buckets that already left the ring
 * (ordinal <= N - n) are missing too. Returns which answered. O(nbuckets),
 * or O(held events newer than ts - W); does not modify @st. */
enum rts_win_answer rts_win_query(const struct rts_win_spec *w, const void *st, int64_t ts_ms,
                                  struct rts_win_agg *out);

/* A ring rebuilt from buckets kept elsewhere (the Redis window state,
 * feature/rstate.h), so that rts_win_query() answers over them with this
 * file's rules and summation order. rts_win_load_init() makes @st the ring
 * whose newest ordinal is @newest with every slot empty but the newest one,
 * which reads as non-empty (one event, no value) until loaded: the query's
 * test for an empty window reads that slot, and a query at a time before
 * @newest's bucket never reads it. rts_win_load_bucket() sets the slot of
 * ordinal @ord (newest - n < ord <= newest; others are ignored) to @count
 * events of sum @sum, min @min and max @max (kept as the spec says). */
void rts_win_load_init(const struct rts_win_spec *w, void *st, int64_t newest);
void rts_win_load_bucket(const struct rts_win_spec *w, void *st, int64_t ord, uint32_t count,
                         double sum, double min, double max);

/* The held events of an exact window rebuilt from a partial copy: @held
 * events in all, the oldest at time @oldest, and @e[0 .. @k) the newest of
 * them in ascending (time, value) order - every held event newer than the
 * edge of the window to be queried. The others are stood in for by copies of
 * the oldest time, which a query reads only as "older than the window". More
 * than spec.exact events keep the greatest. After rts_win_load_init (which
 * empties the held events). */
void rts_win_load_held(const struct rts_win_spec *w, void *st, uint32_t held, int64_t oldest,
                       const struct rts_win_held *e, size_t k);

/* Exact windows keep -0 as 0: the values as held, so that their order is the
 * order of their bits (feature/rstate.c encodes them so). */
static inline double rts_win_held_value(double v)
{
    return v == 0 ? 0.0 : v;
}

#endif /* RTS_FEATURE_WINDOW_H */
