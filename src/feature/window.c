/*
 * window.c - the bucket ring behind window.h.
 *
 * State layout (structure of arrays, so a count-only window costs 4 bytes a
 * bucket and sum+max 20):
 *   int64_t  newest;           newest bucket ordinal N seen
 *   uint32_t count[n];         padded to 8 bytes
 *   double   sum[n];           if RTS_WIN_SUM
 *   double   min[n];           if RTS_WIN_MIN
 *   double   max[n];           if RTS_WIN_MAX
 * Slot s holds the ordinal of (N - n, N] congruent to s mod n. An empty slot
 * holds the identities count 0, sum 0, min +inf, max -inf, so adds and
 * queries need no test for emptiness: an add folds its value in, a query
 * reduces its slot range (with four accumulators, in a fixed order, so the
 * same state gives bit-identical results).
 * The window is empty iff count[N mod n] == 0: every add leaves the slot of N
 * non-empty and counts never return to zero except when N moves past them.
 * A zeroed block is thus empty, though its slots hold min = max = 0, not the
 * identities: the first add to an empty window resets every slot.
 *
 * Ordinals may be anywhere in int64 (r = 1 ms with ts = INT64_MIN); the code
 * only subtracts two ordinals after comparing them, in uint64, where the
 * difference of a >= b is exact.
 */
#include "feature/window.h"

#include <math.h>
#include <string.h>

struct win_layout {
    uint32_t n;
    uint32_t *count;
    double *sum, *min, *max; /* NULL if not kept */
};

static size_t align8(size_t n)
{
    return (n + 7) & ~(size_t)7;
}

/* Pointers into the state @st of @w (also used for const states). */
static size_t win_layout(const struct rts_win_spec *w, const void *st, struct win_layout *l)
{
    unsigned char *base = (unsigned char *)(uintptr_t)st;
    size_t n = w->nbuckets;
    size_t off = sizeof(int64_t);

    l->n = w->nbuckets;
    l->count = (uint32_t *)(base + off);
    off += align8(n * sizeof(uint32_t));
    l->sum = l->min = l->max = NULL;
    if (w->aggs & RTS_WIN_SUM) {
        l->sum = (double *)(base + off);
        off += n * sizeof(double);
    }
    if (w->aggs & RTS_WIN_MIN) {
        l->min = (double *)(base + off);
        off += n * sizeof(double);
    }
    if (w->aggs & RTS_WIN_MAX) {
        l->max = (double *)(base + off);
        off += n * sizeof(double);
    }
    return off;
}

/* floor(a mod n); a mask for the usual power-of-two bucket counts */
static uint32_t slot_of(int64_t a, uint32_t n)
{
    if ((n & (n - 1)) == 0) {
        return (uint32_t)((uint64_t)a & (n - 1));
    }
    return rts_floor_mod(a, n);
}

/* Empty slots [a, a + k), k <= n - a. */
static void clear_slots(const struct win_layout *l, uint32_t a, uint32_t k)
{
    uint32_t i;

    memset(l->count + a, 0, k * sizeof(uint32_t));
    for (i = a; i < a + k; i++) {
        if (l->sum) {
            l->sum[i] = 0.0;
        }
        if (l->min) {
            l->min[i] = INFINITY;
        }
        if (l->max) {
            l->max[i] = -INFINITY;
        }
    }
}

enum rts_err rts_win_check(const struct rts_win_spec *w, struct rts_errbuf *eb)
{
    if (w->width_ms < 1) {
        return rts_errf(eb, RTS_ERR_INVAL, 0, 0, "window width must be >= 1 ms, got %lld",
                        (long long)w->width_ms);
    }
    if (w->nbuckets < 1 || w->nbuckets > RTS_WIN_MAX_BUCKETS) {
        return rts_errf(eb, RTS_ERR_INVAL, 0, 0, "window buckets must be in 1..%u, got %u",
                        RTS_WIN_MAX_BUCKETS, w->nbuckets);
    }
    if (w->aggs & ~(unsigned)(RTS_WIN_SUM | RTS_WIN_MIN | RTS_WIN_MAX)) {
        return rts_errf(eb, RTS_ERR_INVAL, 0, 0, "unknown window aggregate flags 0x%x",
                        w->aggs);
    }
    return RTS_ERR_OK;
}

size_t rts_win_size(const struct rts_win_spec *w)
{
    struct win_layout l;

    return win_layout(w, NULL, &l);
}

int64_t rts_win_resolution_ms(const struct rts_win_spec *w)
{
    int64_t n = w->nbuckets;

    return w->width_ms / n + (w->width_ms % n != 0);
}

int rts_win_add(const struct rts_win_spec *w, void *st, int64_t ts_ms, double v)
{
    struct win_layout l;
    int64_t *newest = st;
    uint32_t n = w->nbuckets;
    int64_t e = rts_floor_div(ts_ms, rts_win_resolution_ms(w));
    uint32_t s = slot_of(e, n);

    win_layout(w, st, &l);
    if (l.count[slot_of(*newest, n)] == 0) {
        clear_slots(&l, 0, n); /* the first add: zeroed slots become identities */
        *newest = e;
    } else if (e > *newest) {
        uint64_t gap = (uint64_t)e - (uint64_t)*newest;

        /* empty the slots of the ordinals (N, e]: they held ordinals <= e - n */
        if (gap >= n) {
            clear_slots(&l, 0, n);
        } else if (gap <= s + 1) {
            clear_slots(&l, s + 1 - (uint32_t)gap, (uint32_t)gap);
        } else {
            clear_slots(&l, 0, s + 1);
            clear_slots(&l, n - ((uint32_t)gap - s - 1), (uint32_t)gap - s - 1);
        }
        *newest = e;
    } else if ((uint64_t)*newest - (uint64_t)e >= n) {
        return 1;
    }
    if (l.count[s] != UINT32_MAX) {
        l.count[s]++;
    }
    if (l.sum) {
        l.sum[s] += v;
    }
    if (l.min && v < l.min[s]) {
        l.min[s] = v;
    }
    if (l.max && v > l.max[s]) {
        l.max[s] = v;
    }
    return 0;
}

/* Reductions over slots [a, b), four independent accumulators each. */
struct win_acc {
    uint64_t count;
    double sum[4], lo[4], hi[4];
};

static void acc_range(const struct win_layout *l, uint32_t a, uint32_t b, struct win_acc *x)
{
    uint32_t i;

    for (i = a; i < b; i++) {
        x->count += l->count[i];
    }
    if (l->sum) {
        for (i = a; i + 4 <= b; i += 4) {
            x->sum[0] += l->sum[i];
            x->sum[1] += l->sum[i + 1];
            x->sum[2] += l->sum[i + 2];
            x->sum[3] += l->sum[i + 3];
        }
        for (; i < b; i++) {
            x->sum[0] += l->sum[i];
        }
    }
    if (l->min) {
        for (i = a; i + 4 <= b; i += 4) {
            x->lo[0] = l->min[i] < x->lo[0] ? l->min[i] : x->lo[0];
            x->lo[1] = l->min[i + 1] < x->lo[1] ? l->min[i + 1] : x->lo[1];
            x->lo[2] = l->min[i + 2] < x->lo[2] ? l->min[i + 2] : x->lo[2];
            x->lo[3] = l->min[i + 3] < x->lo[3] ? l->min[i + 3] : x->lo[3];
        }
        for (; i < b; i++) {
            x->lo[0] = l->min[i] < x->lo[0] ? l->min[i] : x->lo[0];
        }
    }
    if (l->max) {
        for (i = a; i + 4 <= b; i += 4) {
            x->hi[0] = l->max[i] > x->hi[0] ? l->max[i] : x->hi[0];
            x->hi[1] = l->max[i + 1] > x->hi[1] ? l->max[i + 1] : x->hi[1];
            x->hi[2] = l->max[i + 2] > x->hi[2] ? l->max[i + 2] : x->hi[2];
            x->hi[3] = l->max[i + 3] > x->hi[3] ? l->max[i + 3] : x->hi[3];
        }
        for (; i < b; i++) {
            x->hi[0] = l->max[i] > x->hi[0] ? l->max[i] : x->hi[0];
        }
    }
}

static double min2(double a, double b)
{
    return b < a ? b : a;
}

static double max2(double a, double b)
{
    return b > a ? b : a;
}

void rts_win_query(const struct rts_win_spec *w, const void *st, int64_t ts_ms,
                   struct rts_win_agg *out)
{
    struct win_layout l;
    struct win_acc x = {0, {0, 0, 0, 0}, {INFINITY, INFINITY, INFINITY, INFINITY},
                        {-INFINITY, -INFINITY, -INFINITY, -INFINITY}};
    int64_t newest = *(const int64_t *)st;
    uint32_t n = w->nbuckets;
    int64_t q = rts_floor_div(ts_ms, rts_win_resolution_ms(w));
    uint32_t sn = slot_of(newest, n);
    uint32_t dlo, dhi, a, len;

    win_layout(w, st, &l);
    out->count = 0.0;
    out->sum = 0.0;
    out->min = out->max = NAN;
    if (l.count[sn] == 0) {
        return;
    }
    /* The slot at age d (ordinal N - d) is in the window iff 0 <= q - (N - d) < n. */
    if (q >= newest) {
        uint64_t ahead = (uint64_t)q - (uint64_t)newest;

        if (ahead >= n) {
            return;
        }
        dlo = 0;
        dhi = n - (uint32_t)ahead;
    } else {
        uint64_t behind = (uint64_t)newest - (uint64_t)q;

        if (behind >= n) {
            return;
        }
        dlo = (uint32_t)behind;
        dhi = n;
    }
    /* ages [dlo, dhi) are the slots [a, a + len) mod n */
    len = dhi - dlo;
    a = sn >= dhi - 1 ? sn - (dhi - 1) : sn + n - (dhi - 1);
    if (a + len <= n) {
        acc_range(&l, a, a + len, &x);
    } else {
        acc_range(&l, a, n, &x);
        acc_range(&l, 0, a + len - n, &x);
    }
    if (x.count == 0) {
        return;
    }
    out->count = (double)x.count;
    out->sum = (x.sum[0] + x.sum[1]) + (x.sum[2] + x.sum[3]);
    out->min = l.min ? min2(min2(x.lo[0], x.lo[1]), min2(x.lo[2], x.lo[3])) : NAN;
    out->max = l.max ? max2(max2(x.hi[0], x.hi[1]), max2(x.hi[2], x.hi[3])) : NAN;
}
