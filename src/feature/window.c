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
 *   struct held_hdr, then struct rts_win_held e[exact]   if exact
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
 * difference of a >= b is exact. Times are compared the same way.
 *
 * Held events of an exact window: a circular array of capacity N, event i
 * (0 = the least in (time, value) order) at e[(head + i) mod N], so that
 * dropping the least is head + 1 and an event in time order is appended
 * without moving the others.
 */
#include "feature/window.h"

#include <math.h>
#include <string.h>

struct win_offs {
    size_t count, sum, min, max; /* byte offsets; 0 = aggregate not kept */
    size_t held;                 /* struct held_hdr; 0 = not exact */
    size_t size;
};

struct held_hdr {
    uint32_t head, count;
};

struct win_mut {
    uint32_t *count;
    double *sum, *min, *max; /* NULL if not kept */
};

struct win_view {
    const uint32_t *count;
    const double *sum, *min, *max; /* NULL if not kept */
};

static size_t align8(size_t n)
{
    return (n + 7) & ~(size_t)7;
}

static void win_offsets(const struct rts_win_spec *w, struct win_offs *o)
{
    size_t n = w->nbuckets;
    size_t off = sizeof(int64_t);

    o->count = off;
    off += align8(n * sizeof(uint32_t));
    o->sum = o->min = o->max = 0;
    if (w->aggs & RTS_WIN_SUM) {
        o->sum = off;
        off += n * sizeof(double);
    }
    if (w->aggs & RTS_WIN_MIN) {
        o->min = off;
        off += n * sizeof(double);
    }
    if (w->aggs & RTS_WIN_MAX) {
        o->max = off;
        off += n * sizeof(double);
    }
    o->held = 0;
    if (w->exact) {
        o->held = off;
        off += sizeof(struct held_hdr) + (size_t)w->exact * sizeof(struct rts_win_held);
    }
    o->size = off;
}

static void win_mut(const struct rts_win_spec *w, void *st, struct win_mut *l)
{
    unsigned char *b = st;
    struct win_offs o;

    win_offsets(w, &o);
    l->count = (uint32_t *)(b + o.count);
    l->sum = o.sum ? (double *)(b + o.sum) : NULL;
    l->min = o.min ? (double *)(b + o.min) : NULL;
    l->max = o.max ? (double *)(b + o.max) : NULL;
}

static void win_view(const struct rts_win_spec *w, const void *st, struct win_view *l)
{
    const unsigned char *b = st;
    struct win_offs o;

    win_offsets(w, &o);
    l->count = (const uint32_t *)(b + o.count);
    l->sum = o.sum ? (const double *)(b + o.sum) : NULL;
    l->min = o.min ? (const double *)(b + o.min) : NULL;
    l->max = o.max ? (const double *)(b + o.max) : NULL;
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
static void clear_slots(const struct win_mut *l, uint32_t a, uint32_t k)
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
        return rts_errf(eb, RTS_ERR_INVAL, 0, 0, "unknown window aggregate flags 0x%x", w->aggs);
    }
    if (w->exact > RTS_WIN_MAX_EXACT) {
        return rts_errf(eb, RTS_ERR_INVAL, 0, 0, "window exact must be in 0..%u, got %u",
                        RTS_WIN_MAX_EXACT, w->exact);
    }
    return RTS_ERR_OK;
}

size_t rts_win_size(const struct rts_win_spec *w)
{
    struct win_offs o;

    win_offsets(w, &o);
    return o.size;
}

int64_t rts_win_resolution_ms(const struct rts_win_spec *w)
{
    int64_t n = w->nbuckets;

    if ((n & (n - 1)) == 0) { /* the usual case, without a division */
        int k = __builtin_ctzll((unsigned long long)n);

        return (w->width_ms >> k) + ((w->width_ms & (n - 1)) != 0);
    }
    return w->width_ms / n + (w->width_ms % n != 0);
}

/* ---- the ring ---- */

static int ring_add(const struct rts_win_spec *w, void *st, int64_t ts_ms, double v)
{
    struct win_mut l;
    int64_t *newest = st;
    uint32_t n = w->nbuckets;
    int64_t e = rts_floor_div(ts_ms, rts_win_resolution_ms(w));
    uint32_t s = slot_of(e, n);

    win_mut(w, st, &l);
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

/* Reductions over slots [a, b), four independent accumulators each, kept in
 * locals (through a pointer they could alias the state and be reloaded). */
struct win_acc {
    uint64_t count;
    double sum[4], lo[4], hi[4];
};

static uint64_t count_range(const uint32_t *v, uint32_t a, uint32_t b)
{
    uint64_t c0 = 0, c1 = 0, c2 = 0, c3 = 0;
    uint32_t i;

    for (i = a; i + 4 <= b; i += 4) {
        c0 += v[i];
        c1 += v[i + 1];
        c2 += v[i + 2];
        c3 += v[i + 3];
    }
    for (; i < b; i++) {
        c0 += v[i];
    }
    return (c0 + c1) + (c2 + c3);
}

static void sum_range(const double *v, uint32_t a, uint32_t b, double *acc)
{
    double s0 = acc[0], s1 = acc[1], s2 = acc[2], s3 = acc[3];
    uint32_t i;

    for (i = a; i + 4 <= b; i += 4) {
        s0 += v[i];
        s1 += v[i + 1];
        s2 += v[i + 2];
        s3 += v[i + 3];
    }
    for (; i < b; i++) {
        s0 += v[i];
    }
    acc[0] = s0;
    acc[1] = s1;
    acc[2] = s2;
    acc[3] = s3;
}

static void min_range(const double *v, uint32_t a, uint32_t b, double *acc)
{
    double m0 = acc[0], m1 = acc[1], m2 = acc[2], m3 = acc[3];
    uint32_t i;

    for (i = a; i + 4 <= b; i += 4) {
        m0 = v[i] < m0 ? v[i] : m0;
        m1 = v[i + 1] < m1 ? v[i + 1] : m1;
        m2 = v[i + 2] < m2 ? v[i + 2] : m2;
        m3 = v[i + 3] < m3 ? v[i + 3] : m3;
    }
    for (; i < b; i++) {
        m0 = v[i] < m0 ? v[i] : m0;
    }
    acc[0] = m0;
    acc[1] = m1;
    acc[2] = m2;
    acc[3] = m3;
}

static void max_range(const double *v, uint32_t a, uint32_t b, double *acc)
{
    double m0 = acc[0], m1 = acc[1], m2 = acc[2], m3 = acc[3];
    uint32_t i;

    for (i = a; i + 4 <= b; i += 4) {
        m0 = v[i] > m0 ? v[i] : m0;
        m1 = v[i + 1] > m1 ? v[i + 1] : m1;
        m2 = v[i + 2] > m2 ? v[i + 2] : m2;
        m3 = v[i + 3] > m3 ? v[i + 3] : m3;
    }
    for (; i < b; i++) {
        m0 = v[i] > m0 ? v[i] : m0;
    }
    acc[0] = m0;
    acc[1] = m1;
    acc[2] = m2;
    acc[3] = m3;
}

static void acc_range(const struct win_view *l, uint32_t a, uint32_t b, struct win_acc *x)
{
    x->count += count_range(l->count, a, b);
    if (l->sum) {
        sum_range(l->sum, a, b, x->sum);
    }
    if (l->min) {
        min_range(l->min, a, b, x->lo);
    }
    if (l->max) {
        max_range(l->max, a, b, x->hi);
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

static void ring_query(const struct rts_win_spec *w, const void *st, int64_t ts_ms,
                       struct rts_win_agg *out)
{
    struct win_view l;
    struct win_acc x = {0,
                        {0, 0, 0, 0},
                        {INFINITY, INFINITY, INFINITY, INFINITY},
                        {-INFINITY, -INFINITY, -INFINITY, -INFINITY}};
    int64_t newest = *(const int64_t *)st;
    uint32_t n = w->nbuckets;
    int64_t q = rts_floor_div(ts_ms, rts_win_resolution_ms(w));
    uint32_t sn = slot_of(newest, n);
    uint32_t dlo, dhi, a, len;

    win_view(w, st, &l);
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

/* ---- the held events of an exact window ---- */

/* t <= ts - d, without overflow */
static int at_or_before(int64_t t, int64_t ts, uint64_t d)
{
    return t <= ts && (uint64_t)ts - (uint64_t)t >= d;
}

/* S = n r, the span of the ring */
static uint64_t ring_span(const struct rts_win_spec *w)
{
    return (uint64_t)w->nbuckets * (uint64_t)rts_win_resolution_ms(w);
}

static int held_less(const struct rts_win_held *a, int64_t t, double v)
{
    return a->t < t || (a->t == t && a->v < v);
}

static int held_greater(const struct rts_win_held *a, int64_t t, double v)
{
    return a->t > t || (a->t == t && a->v > v);
}

struct held {
    struct held_hdr *h;
    struct rts_win_held *e;
    uint32_t n; /* capacity */
};

static void held_of(const struct rts_win_spec *w, const void *st, struct held *x)
{
    struct win_offs o;

    win_offsets(w, &o);
    x->h = (struct held_hdr *)((uintptr_t)st + o.held);
    x->e = (struct rts_win_held *)(x->h + 1);
    x->n = w->exact;
}

/* Held event @i, 0 = the least. */
static struct rts_win_held *held_at(const struct held *x, uint32_t i)
{
    uint32_t k = x->h->head + i; /* both < n <= RTS_WIN_MAX_EXACT */

    return &x->e[k >= x->n ? k - x->n : k];
}

static void held_add(const struct rts_win_spec *w, void *st, int64_t ts, double v)
{
    struct held x;
    uint64_t keep = (uint64_t)w->width_ms + ring_span(w); /* W + S */
    uint32_t i;

    if (keep < (uint64_t)w->width_ms) {
        keep = UINT64_MAX; /* overflowed: nothing is ever that old */
    }
    held_of(w, st, &x);
    v = rts_win_held_value(v);
    if (x.h->count == x.n) {
        if (!held_less(held_at(&x, 0), ts, v)) {
            return; /* not above the least: not kept (and nothing held is old enough to drop) */
        }
        x.h->head = x.h->head + 1 == x.n ? 0 : x.h->head + 1;
        x.h->count--;
    }
    for (i = x.h->count; i > 0 && held_greater(held_at(&x, i - 1), ts, v); i--) {
        *held_at(&x, i) = *held_at(&x, i - 1);
    }
    held_at(&x, i)->t = ts;
    held_at(&x, i)->v = v;
    x.h->count++;
    while (at_or_before(held_at(&x, 0)->t, ts, keep)) { /* never the event just added */
        x.h->head = x.h->head + 1 == x.n ? 0 : x.h->head + 1;
        x.h->count--;
    }
}

static enum rts_win_answer held_query(const struct rts_win_spec *w, const void *st, int64_t ts,
                                      struct rts_win_agg *out)
{
    struct held x;
    uint64_t width = (uint64_t)w->width_ms;
    uint32_t c, i, hi;
    double sum = 0.0, lo = INFINITY, up = -INFINITY;

    held_of(w, st, &x);
    c = x.h->count;
    if (c > 0) {
        /* dropped for age: at or before newest - W - S, so all of them before
         * ts - W iff ts >= newest - S */
        if (at_or_before(ts, held_at(&x, c - 1)->t, ring_span(w) + 1)) {
            return RTS_WIN_OVERFLOW;
        }
        /* dropped for room: at or before the oldest held */
        if (c == x.n && !at_or_before(held_at(&x, 0)->t, ts, width)) {
            return RTS_WIN_OVERFLOW;
        }
    }
    for (i = c; i > 0 && held_at(&x, i - 1)->t > ts; i--) {
    }
    hi = i;
    for (; i > 0 && !at_or_before(held_at(&x, i - 1)->t, ts, width); i--) {
    }
    /* events [i, hi): at most two runs of the circular array, summed in order */
    for (uint32_t k = i, len; k < hi; k += len) {
        const struct rts_win_held *e = held_at(&x, k);
        uint32_t to_end = x.n - (uint32_t)(e - x.e);

        len = hi - k < to_end ? hi - k : to_end;
        for (uint32_t j = 0; j < len; j++) {
            sum += e[j].v;
        }
        if (w->aggs & (RTS_WIN_MIN | RTS_WIN_MAX)) {
            for (uint32_t j = 0; j < len; j++) {
                lo = e[j].v < lo ? e[j].v : lo;
                up = e[j].v > up ? e[j].v : up;
            }
        }
    }
    out->count = (double)(hi - i);
    out->sum = hi > i && (w->aggs & RTS_WIN_SUM) ? sum : 0.0;
    out->min = hi > i && (w->aggs & RTS_WIN_MIN) ? lo : NAN;
    out->max = hi > i && (w->aggs & RTS_WIN_MAX) ? up : NAN;
    return RTS_WIN_EXACT;
}

/* ---- public ---- */

int rts_win_add(const struct rts_win_spec *w, void *st, int64_t ts_ms, double v)
{
    int late = ring_add(w, st, ts_ms, v);

    if (w->exact) {
        held_add(w, st, ts_ms, v);
    }
    return late;
}

enum rts_win_answer rts_win_query(const struct rts_win_spec *w, const void *st, int64_t ts_ms,
                                  struct rts_win_agg *out)
{
    if (w->exact && held_query(w, st, ts_ms, out) == RTS_WIN_EXACT) {
        return RTS_WIN_EXACT;
    }
    ring_query(w, st, ts_ms, out);
    return w->exact ? RTS_WIN_OVERFLOW : RTS_WIN_RING;
}

void rts_win_load_init(const struct rts_win_spec *w, void *st, int64_t newest)
{
    struct win_mut l;

    win_mut(w, st, &l);
    clear_slots(&l, 0, w->nbuckets);
    *(int64_t *)st = newest;
    l.count[slot_of(newest, w->nbuckets)] = 1;
    if (w->exact) {
        struct held x;

        held_of(w, st, &x);
        x.h->head = x.h->count = 0;
    }
}

void rts_win_load_bucket(const struct rts_win_spec *w, void *st, int64_t ord, uint32_t count,
                         double sum, double min, double max)
{
    struct win_mut l;
    int64_t newest = *(const int64_t *)st;
    uint32_t s = slot_of(ord, w->nbuckets);

    if (ord > newest || (uint64_t)newest - (uint64_t)ord >= w->nbuckets) {
        return;
    }
    win_mut(w, st, &l);
    l.count[s] = count;
    if (l.sum) {
        l.sum[s] = sum;
    }
    if (l.min) {
        l.min[s] = min;
    }
    if (l.max) {
        l.max[s] = max;
    }
}

void rts_win_load_held(const struct rts_win_spec *w, void *st, uint32_t held, int64_t oldest,
                       const struct rts_win_held *e, size_t k)
{
    struct held x;
    uint32_t below;

    if (!w->exact) {
        return;
    }
    held_of(w, st, &x);
    if (k > x.n) { /* more than are held (another writer between reads): the greatest */
        e += k - x.n;
        k = x.n;
    }
    held = held > x.n ? x.n : held < k ? (uint32_t)k : held;
    if (k && oldest > e[0].t) {
        oldest = e[0].t; /* a torn read: keep the order */
    }
    below = held - (uint32_t)k;
    for (uint32_t i = 0; i < below; i++) {
        x.e[i].t = oldest;
        x.e[i].v = 0.0;
    }
    if (k) {
        memcpy(x.e + below, e, k * sizeof(*e));
    }
    x.h->head = 0;
    x.h->count = held;
}
