/*
 * hll.c - sparse entries, pooled pane sketches and the estimator of hll.h.
 *
 * Inline state: struct dhdr (24 bytes), uint32_t hash[cap] (padded to 8),
 * int64_t time[cap]. In inline mode entries [0, nsparse) are used. In list
 * and dense mode the inline entries are unused and dhdr names a block of the
 * pool by index and by the generation it had when taken: a block taken back
 * by the pool (or released) has another generation, and the key then reads
 * as empty inline.
 *
 * A list block is one page: struct blk_link, then hash[LIST_CAP] and
 * time[LIST_CAP] as inline; entries [0, nsparse) are used. Its expire_ts is
 * the newest value's time + width + one resolution, moved (and the block
 * relinked) when the newest value passes it by the resolution: once per
 * bucket at most, like a sketch.
 *
 * A sketch is a block of the pool's mapping, in 4 KiB pages:
 *   pane s (s < n)   4096 registers of the bucket ordinal pane_ord[s], valid
 *                    if pane_valid[s]; pane_nz[s] of them are non-zero. A pane
 *                    holding another ordinal is reset when written.
 *   merged (page n)  the max of the live panes of the window (newest - n,
 *                    newest], kept current by every add, with hist[] its
 *                    histogram: a query at the newest bucket costs O(1);
 *   owner (page n+1) for each merged register, the slot of the newest live
 *                    pane holding its value (0xFF if zero);
 *   meta (page n+2)  struct hll_meta and the per-pane arrays.
 * When the window moves on, only the registers owned by the panes leaving it
 * are recomputed (from the remaining panes), so a key with few values per
 * bucket pays little; if the leaving panes hold more than EXPIRE_MAX non-zero
 * registers, the merged copy is rebuilt from the panes instead (vectorized).
 * A query for a later bucket (the query before the add that moves the window)
 * does the same on a copy of the histogram, without writing.
 *
 * The pool's used sketches form a list by last window advance (head = most
 * recent), so the tail is the one most likely to have expired; free sketches
 * form a stack; sketches never used are taken in address order, so the pool
 * commits memory only as keys go dense.
 */
#include "feature/hll.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "core/populate.h"
#include "feature/window.h"

#define PAGE 4096u
#define HIST_N 64 /* ranks 0..53 */
#define RANK_MAX 53
#define LC_THRESHOLD 3100.0 /* HLL++ (Heule et al. 2013), p = 12 */
#define NO_OWNER 0xFF       /* so nbuckets <= 255 */
#define EXPIRE_MAX 256      /* registers recomputed one by one before a full rebuild */

_Static_assert(64 - RTS_HLL_P + 1 == RANK_MAX, "ranks are 1 + leading zeros of 64 - p bits");
_Static_assert(RTS_HLL_MAX_BUCKETS <= NO_OWNER, "slots 0..n-1 are bytes below NO_OWNER");

#define MODE_INLINE 0 /* exact, entries in the key's state */
#define MODE_LIST 1   /* exact, entries in a list block of the pool */
#define MODE_DENSE 2  /* a sketch of the pool */

struct dhdr {
    int64_t newest_ts; /* newest event time applied; valid when seen */
    uint64_t gen;      /* list or dense: generation of the block */
    uint32_t block;    /* list or dense: block index + 1 */
    uint16_t nsparse;  /* exact entries in use (inline or list) */
    uint8_t seen;      /* an event was applied */
    uint8_t mode;      /* MODE_* */
};

/* The head of a pooled block, list or sketch. */
struct blk_link {
    uint64_t gen;        /* generation of the owner; 0 when free */
    int64_t expire_ts;   /* every value has expired for events at or after this */
    uint32_t prev, next; /* used list, or free stack (next), index + 1 */
};

struct hll_meta {
    struct blk_link l;
    int64_t newest; /* newest pane ordinal: merged[] is for (newest - n, newest] */
    uint16_t hist[HIST_N];
    int64_t pane_ord[]; /* n; then uint16_t pane_nz[n]; then uint8_t pane_valid[n] */
};

/* A list block: one page, the link then LIST_CAP entries as inline. */
#define LIST_CAP RTS_HLL_LIST_CAP
#define LIST_HASH_OFF sizeof(struct blk_link)
#define LIST_TIME_OFF ((LIST_HASH_OFF + LIST_CAP * 4 + 7) & ~(size_t)7)
_Static_assert(LIST_TIME_OFF + LIST_CAP * 8 <= PAGE, "a list block is one page");

/* The blocks of one kind: reserved at once, handed out in address order,
 * returned to a free stack; the used ones in a list by last advance (head =
 * most recent), so the tail is the one most likely to have expired. */
struct region {
    unsigned char *base;
    size_t map_bytes, block_bytes, link_off; /* a block's blk_link is at link_off */
    uint32_t free_head;                      /* index + 1, 0 = none */
    uint32_t used_head, used_tail;           /* index + 1, 0 = none */
    uint64_t fresh;                          /* blocks [fresh, max) never used */
    uint64_t max;
    uint64_t in_use, reclaimed; /* written by the worker only */
    struct rts_populate ready;  /* rts_hll_pool_prefault's progress */
};

struct rts_hll_pool {
    struct region sk, ls; /* sketches, list blocks */
    uint32_t nbuckets;
    uint64_t gen;
    uint64_t exhausted; /* written by the worker only */
};

/* One sketch, resolved. */
struct sk {
    unsigned char *panes; /* pane s at s * 4096 */
    uint8_t *merged, *owner;
    struct hll_meta *m;
    uint16_t *nz;
    uint8_t *valid;
    uint32_t n, idx1;
};

/* The exact entries of a key: inline or in its list block. */
struct ents {
    uint32_t *hash;
    int64_t *time;
    uint32_t cap;
};

static size_t align8(size_t n)
{
    return (n + 7) & ~(size_t)7;
}

static int64_t dres(const struct rts_distinct_spec *d)
{
    struct rts_win_spec w = {d->width_ms, d->nbuckets, 0, 0};

    return rts_win_resolution_ms(&w);
}

/* ---- inline state ---- */

static size_t sp_time_off(const struct rts_distinct_spec *d)
{
    return sizeof(struct dhdr) + align8(d->sparse_cap * sizeof(uint32_t));
}

static uint32_t *sp_hash(void *st)
{
    return (uint32_t *)((unsigned char *)st + sizeof(struct dhdr));
}

static int64_t *sp_time(const struct rts_distinct_spec *d, void *st)
{
    return (int64_t *)((unsigned char *)st + sp_time_off(d));
}

/* ---- pooled blocks ---- */

static unsigned char *blk_at(const struct region *r, uint32_t idx1)
{
    return r->base + (size_t)(idx1 - 1) * r->block_bytes;
}

static struct blk_link *blk_link(const struct region *r, uint32_t idx1)
{
    return (struct blk_link *)(blk_at(r, idx1) + r->link_off);
}

/* Block @idx1 of @r if @h holds it in @mode, generation and all (not taken
 * back by the pool meanwhile), else NULL. */
static unsigned char *blk_of(const struct region *r, const struct dhdr *h, int mode)
{
    if (h->mode != mode || !h->block || h->block > r->max || blk_link(r, h->block)->gen != h->gen) {
        return NULL;
    }
    return blk_at(r, h->block);
}

static void used_unlink(struct region *r, uint32_t idx1)
{
    struct blk_link *m = blk_link(r, idx1);

    if (m->prev) {
        blk_link(r, m->prev)->next = m->next;
    } else {
        r->used_head = m->next;
    }
    if (m->next) {
        blk_link(r, m->next)->prev = m->prev;
    } else {
        r->used_tail = m->prev;
    }
    m->prev = m->next = 0;
}

static void used_push(struct region *r, uint32_t idx1)
{
    struct blk_link *m = blk_link(r, idx1);

    m->prev = 0;
    m->next = r->used_head;
    if (r->used_head) {
        blk_link(r, r->used_head)->prev = idx1;
    } else {
        r->used_tail = idx1;
    }
    r->used_head = idx1;
}

/* Block @idx1 was advanced: to the head of the used list. */
static void used_touch(struct region *r, uint32_t idx1)
{
    if (r->used_head != idx1) {
        used_unlink(r, idx1);
        used_push(r, idx1);
    }
}

static void count_inc(uint64_t *c)
{
    __atomic_store_n(c, *c + 1, __ATOMIC_RELAXED);
}

static void count_dec(uint64_t *c)
{
    __atomic_store_n(c, *c - 1, __ATOMIC_RELAXED);
}

/* Take a block of @r for an event at @ts_ms: a released one, a never used
 * one, or the least recently advanced one if it has expired by @ts_ms. Its
 * link has a new generation of @p, @expire_ts, and is at the head of the used
 * list. Returns index + 1, or 0. */
static uint32_t region_take(struct rts_hll_pool *p, struct region *r, int64_t ts_ms,
                            int64_t expire_ts)
{
    struct blk_link *m;
    uint32_t idx1;

    if (r->free_head) {
        idx1 = r->free_head;
        r->free_head = blk_link(r, idx1)->next;
    } else if (r->fresh < r->max) {
        idx1 = (uint32_t)(r->fresh + 1);
        __atomic_store_n(&r->fresh, r->fresh + 1, __ATOMIC_RELAXED); /* read by prefault */
    } else if (r->used_tail && blk_link(r, r->used_tail)->expire_ts <= ts_ms) {
        idx1 = r->used_tail;
        used_unlink(r, idx1);
        count_inc(&r->reclaimed);
        count_dec(&r->in_use);
    } else {
        return 0;
    }
    m = blk_link(r, idx1);
    m->gen = ++p->gen;
    m->expire_ts = expire_ts;
    used_push(r, idx1);
    count_inc(&r->in_use);
    return idx1;
}

static void region_put(struct region *r, uint32_t idx1)
{
    struct blk_link *m = blk_link(r, idx1);

    used_unlink(r, idx1);
    m->gen = 0;
    m->next = r->free_head;
    r->free_head = idx1;
    count_dec(&r->in_use);
}

/* The key holds no block any more (returned, or taken back): empty inline. */
static void to_inline(struct dhdr *h)
{
    h->mode = MODE_INLINE;
    h->block = 0;
    h->gen = 0;
    h->nsparse = 0;
}

/* ---- sketches ---- */

static void sk_get(const struct rts_hll_pool *p, uint32_t idx1, struct sk *k)
{
    unsigned char *b = blk_at(&p->sk, idx1);

    k->n = p->nbuckets;
    k->idx1 = idx1;
    k->panes = b;
    k->merged = b + (size_t)k->n * RTS_HLL_M;
    k->owner = k->merged + RTS_HLL_M;
    k->m = (struct hll_meta *)(k->owner + RTS_HLL_M);
    k->nz = (uint16_t *)(k->m->pane_ord + k->n);
    k->valid = (uint8_t *)(k->nz + k->n);
}

static uint8_t *sk_pane(const struct sk *k, uint32_t s)
{
    return k->panes + (size_t)s * RTS_HLL_M;
}

/* The sketch of @h, or 0 if not dense or taken back meanwhile. */
static int dense_sk(const struct rts_hll_pool *p, const struct dhdr *h, struct sk *k)
{
    if (!p || !blk_of(&p->sk, h, MODE_DENSE)) {
        return 0;
    }
    sk_get(p, h->block, k);
    return 1;
}

/* First event time at which every pane up to ordinal @newest has expired. */
static int64_t expire_ts_of(const struct rts_distinct_spec *d, int64_t newest)
{
    int64_t r = dres(d);

    if (newest > INT64_MAX / r - (int64_t)d->nbuckets) {
        return INT64_MAX;
    }
    return (newest + (int64_t)d->nbuckets) * r;
}

/* Take a sketch for an event at @ts_ms, empty, its window ending at @top.
 * Returns index + 1, or 0. */
static uint32_t pool_take(struct rts_hll_pool *p, const struct rts_distinct_spec *d, int64_t ts_ms,
                          int64_t top)
{
    uint32_t idx1 = region_take(p, &p->sk, ts_ms, expire_ts_of(d, top));
    struct sk k;

    if (!idx1) {
        return 0;
    }
    sk_get(p, idx1, &k);
    k.m->newest = top;
    memset(k.m->hist, 0, sizeof(k.m->hist));
    k.m->hist[0] = RTS_HLL_M;
    memset(k.merged, 0, RTS_HLL_M);
    memset(k.owner, NO_OWNER, RTS_HLL_M);
    memset(k.valid, 0, k.n);
    return idx1;
}

/* ---- exact entries: inline or in a list block ---- */

/* The entries of @h, or 0 if its list block was taken back meanwhile. */
static int ents_of(const struct rts_distinct_spec *d, const struct dhdr *h,
                   const struct rts_hll_pool *p, struct ents *e)
{
    unsigned char *b;

    if (h->mode == MODE_INLINE) {
        e->hash = sp_hash((void *)(uintptr_t)h);
        e->time = sp_time(d, (void *)(uintptr_t)h);
        e->cap = d->sparse_cap;
        return 1;
    }
    if (!p || !(b = blk_of(&p->ls, h, MODE_LIST))) {
        return 0;
    }
    e->hash = (uint32_t *)(b + LIST_HASH_OFF);
    e->time = (int64_t *)(b + LIST_TIME_OFF);
    e->cap = LIST_CAP;
    return 1;
}

/* When a list's values have all expired, for a list whose newest value is
 * at @newest_ts: a window later than exact, so that it moves (and the block
 * is relinked) once per resolution at most. */
static int64_t list_expire_ts(const struct rts_distinct_spec *d, int64_t newest_ts)
{
    int64_t r = dres(d);
    int64_t slack = d->width_ms > INT64_MAX - r ? INT64_MAX : d->width_ms + r;

    return newest_ts > INT64_MAX - slack ? INT64_MAX : newest_ts + slack;
}

static void hll_split64(uint64_t h, uint32_t *idx, uint8_t *rank)
{
    uint64_t w = h << RTS_HLL_P;

    *idx = (uint32_t)(h >> (64 - RTS_HLL_P));
    *rank = (uint8_t)(w ? __builtin_clzll(w) + 1 : RANK_MAX);
}

/* From the top 32 bits of the hash: the same index, the same rank up to 20. */
static void hll_split32(uint32_t h, uint32_t *idx, uint8_t *rank)
{
    uint32_t w = h << RTS_HLL_P;

    *idx = h >> (32 - RTS_HLL_P);
    *rank = (uint8_t)(w ? __builtin_clz(w) + 1 : 32 - RTS_HLL_P + 1);
}

/* Is ordinal @o in (@top - n, @top]? Overflow-free. */
static int in_ring(int64_t o, int64_t top, uint32_t n)
{
    return o <= top && (uint64_t)top - (uint64_t)o < n;
}

static int pane_live(const struct sk *k, uint32_t s, int64_t top)
{
    return k->valid[s] && in_ring(k->m->pane_ord[s], top, k->n);
}

/* ---- register arrays (loops the compiler vectorizes) ---- */

static void regs_max(uint8_t *restrict dst, const uint8_t *restrict src)
{
    size_t i;

    for (i = 0; i < RTS_HLL_M; i++) {
        dst[i] = src[i] > dst[i] ? src[i] : dst[i];
    }
}

/* dst = max(dst, src); where src is non-zero and >= dst, owner = s */
static void regs_max_owned(uint8_t *restrict dst, uint8_t *restrict own,
                           const uint8_t *restrict src, uint8_t s)
{
    size_t i;

    for (i = 0; i < RTS_HLL_M; i++) {
        uint8_t take = (uint8_t)((src[i] >= dst[i]) & (src[i] != 0));

        dst[i] = take ? src[i] : dst[i];
        own[i] = take ? s : own[i];
    }
}

static void regs_hist(const uint8_t *regs, uint16_t *hist)
{
    uint16_t h[4][HIST_N];
    size_t i, j;

    memset(h, 0, sizeof(h));
    for (i = 0; i < RTS_HLL_M; i += 4) {
        h[0][regs[i]]++;
        h[1][regs[i + 1]]++;
        h[2][regs[i + 2]]++;
        h[3][regs[i + 3]]++;
    }
    for (j = 0; j < HIST_N; j++) {
        hist[j] = (uint16_t)(h[0][j] + h[1][j] + h[2][j] + h[3][j]);
    }
}

/* Slots of the live panes of (top - n, top], oldest first. */
static uint32_t live_slots(const struct sk *k, int64_t lo_top, int64_t top, uint8_t *out)
{
    uint32_t sn = rts_floor_mod(top, k->n), d, cnt = 0;

    for (d = k->n; d-- > 0;) {
        uint32_t s = sn >= d ? sn - d : sn + k->n - d;

        if (pane_live(k, s, top) && pane_live(k, s, lo_top)) {
            out[cnt++] = (uint8_t)s;
        }
    }
    return cnt;
}

/* Merge into @out the live panes of both (q - n, q] and (top - n, top].
 * Returns the number of panes merged. */
static uint32_t merge_panes(const struct sk *k, int64_t q, int64_t top, uint8_t *out)
{
    uint8_t slots[RTS_HLL_MAX_BUCKETS];
    uint32_t cnt = live_slots(k, q, top, slots), i;

    if (cnt == 0) {
        return 0;
    }
    memcpy(out, sk_pane(k, slots[0]), RTS_HLL_M);
    for (i = 1; i < cnt; i++) {
        regs_max(out, sk_pane(k, slots[i]));
    }
    return cnt;
}

/* Rebuild merged, owner and hist for the window (top - n, top]. */
static void cache_rebuild(const struct sk *k, int64_t top)
{
    uint8_t slots[RTS_HLL_MAX_BUCKETS];
    uint32_t cnt = live_slots(k, top, top, slots), i;

    memset(k->merged, 0, RTS_HLL_M);
    memset(k->owner, NO_OWNER, RTS_HLL_M);
    for (i = 0; i < cnt; i++) { /* oldest first: ties go to the newest pane */
        regs_max_owned(k->merged, k->owner, sk_pane(k, slots[i]), slots[i]);
    }
    regs_hist(k->merged, k->m->hist);
}

/* The window moves from (old - n, old] to (top - n, top], top > old, and no
 * pane is newer than old. Panes leaving: live in old's window, not in top's.
 * Returns their non-zero registers (an upper bound of the work below). */
static uint32_t leaving_load(const struct sk *k, int64_t old, int64_t top, uint8_t *slots,
                             uint32_t *nslots)
{
    uint32_t s, load = 0;

    *nslots = 0;
    for (s = 0; s < k->n; s++) {
        if (pane_live(k, s, old) && !in_ring(k->m->pane_ord[s], top, k->n)) {
            slots[(*nslots)++] = (uint8_t)s;
            load += k->nz[s];
        }
    }
    return load;
}

/* For every register owned by a leaving pane, its value from the panes that
 * stay: applied to @hist, and to merged/owner if @write. */
static void expire_regs(const struct sk *k, int64_t old, int64_t top, const uint8_t *leaving,
                        uint32_t nleaving, uint16_t *hist, int write)
{
    uint8_t stay[RTS_HLL_MAX_BUCKETS];
    uint32_t nstay = live_slots(k, old, top, stay), j;

    for (j = 0; j < nleaving; j++) {
        const uint8_t s = leaving[j];
        const uint8_t *pane = sk_pane(k, s);
        uint32_t i, b, left = k->nz[s];

        for (i = 0; i < RTS_HLL_M && left; i += 8) {
            uint64_t w;

            memcpy(&w, pane + i, sizeof(w));
            if (!w) {
                continue;
            }
            for (b = i; b < i + 8; b++) {
                uint8_t v = 0, o = NO_OWNER;
                uint32_t t;

                if (!pane[b]) {
                    continue;
                }
                left--;
                if (k->owner[b] != s) {
                    continue;
                }
                for (t = 0; t < nstay; t++) { /* oldest first: ties go to the newest */
                    uint8_t x = sk_pane(k, stay[t])[b];

                    if (x && x >= v) {
                        v = x;
                        o = stay[t];
                    }
                }
                hist[k->merged[b]]--;
                hist[v]++;
                if (write) {
                    k->merged[b] = v;
                    k->owner[b] = o;
                }
            }
        }
    }
}

/* Move the merged copy to the window ending at @top > newest. */
static void cache_advance(const struct sk *k, int64_t top)
{
    uint8_t leaving[RTS_HLL_MAX_BUCKETS];
    uint32_t nleaving;

    if (leaving_load(k, k->m->newest, top, leaving, &nleaving) > EXPIRE_MAX) {
        cache_rebuild(k, top);
    } else {
        expire_regs(k, k->m->newest, top, leaving, nleaving, k->m->hist, 1);
    }
    k->m->newest = top;
}

/* Raise register @idx of the pane of ordinal @e (in the window) to @rank. */
static void dense_set(const struct sk *k, int64_t e, uint32_t idx, uint8_t rank)
{
    uint32_t s = rts_floor_mod(e, k->n);
    uint8_t *pane = sk_pane(k, s);
    uint8_t mv;

    if (!k->valid[s] || k->m->pane_ord[s] != e) {
        /* the old pane has left the window: it owns no merged register */
        memset(pane, 0, RTS_HLL_M);
        k->m->pane_ord[s] = e;
        k->nz[s] = 0;
        k->valid[s] = 1;
    }
    if (pane[idx] >= rank) {
        return;
    }
    k->nz[s] += pane[idx] == 0;
    pane[idx] = rank;
    mv = k->merged[idx];
    if (rank > mv) {
        k->m->hist[mv]--;
        k->m->hist[rank]++;
        k->merged[idx] = rank;
        k->owner[idx] = (uint8_t)s;
    } else if (rank == mv && k->m->pane_ord[k->owner[idx]] < e) {
        k->owner[idx] = (uint8_t)s;
    }
}

/* ---- estimator ---- */

/* sigma(x) = x + sum_{k>=1} x^(2^k) 2^(k-1) */
static double hll_sigma(double x)
{
    double y = 1.0, z = x, zp;

    if (x == 1.0) {
        return INFINITY;
    }
    do {
        x *= x;
        zp = z;
        z += x * y;
        y += y;
    } while (z != zp);
    return z;
}

/* tau(x) = (1 - x - sum_{k>=1} (1 - x^(2^-k))^2 2^-k) / 3 */
static double hll_tau(double x)
{
    double y = 1.0, z, zp;

    if (x == 0.0 || x == 1.0) {
        return 0.0;
    }
    z = 1.0 - x;
    do {
        x = sqrt(x);
        zp = z;
        y *= 0.5;
        z -= (1.0 - x) * (1.0 - x) * y;
    } while (z != zp);
    return z / 3.0;
}

static double hll_estimate(const uint16_t *c)
{
    const double m = RTS_HLL_M;
    const int q = 64 - RTS_HLL_P;
    uint64_t acc = 0;
    double z;
    int k;

    if (c[0] == RTS_HLL_M) {
        return 0.0;
    }
    if (c[0] > 0) {
        double lc = m * log(m / c[0]);

        if (lc <= LC_THRESHOLD) {
            return lc;
        }
    }
    /* z = m tau(1 - C[q+1]/m) 2^-q + sum_{k=1..q} C[k] 2^-k + m sigma(C[0]/m); the
     * middle sum in integers (exact, independent terms): <= 4096 * 2^(q-1) = 2^63 */
    for (k = 1; k <= q; k++) {
        acc += (uint64_t)c[k] << (q - k);
    }
    z = ((double)acc + m * hll_tau((m - c[q + 1]) / m)) * 0x1p-52; /* 2^-q */
    z += m * hll_sigma(c[0] / m);
    return m * m / (2.0 * log(2.0)) / z;
}

/* ---- public ---- */

enum rts_err rts_distinct_check(const struct rts_distinct_spec *d, struct rts_errbuf *eb)
{
    if (d->width_ms < 1) {
        return rts_errf(eb, RTS_ERR_INVAL, 0, 0, "distinct window width must be >= 1 ms, got %lld",
                        (long long)d->width_ms);
    }
    if (d->nbuckets < 1 || d->nbuckets > RTS_HLL_MAX_BUCKETS) {
        return rts_errf(eb, RTS_ERR_INVAL, 0, 0, "distinct buckets must be in 1..%u, got %u",
                        RTS_HLL_MAX_BUCKETS, d->nbuckets);
    }
    if (d->sparse_cap < 1 || d->sparse_cap > RTS_HLL_MAX_SPARSE) {
        return rts_errf(eb, RTS_ERR_INVAL, 0, 0, "distinct sparse_cap must be in 1..%u, got %u",
                        RTS_HLL_MAX_SPARSE, d->sparse_cap);
    }
    return RTS_ERR_OK;
}

size_t rts_distinct_size(const struct rts_distinct_spec *d)
{
    return sp_time_off(d) + d->sparse_cap * sizeof(int64_t);
}

/* Reserve @max blocks of @block_bytes for @r (none if @max is 0). */
static enum rts_err region_init(struct region *r, size_t max, size_t block_bytes, size_t link_off,
                                const char *what, struct rts_errbuf *eb)
{
    r->max = max;
    r->block_bytes = block_bytes;
    r->link_off = link_off;
    if (max > SIZE_MAX / block_bytes) {
        return rts_errf(eb, RTS_ERR_INVAL, 0, 0, "distinct: %zu %s of %zu bytes overflow", max,
                        what, block_bytes);
    }
    r->map_bytes = max * block_bytes;
    if (r->map_bytes) {
        void *m = mmap(NULL, r->map_bytes, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);

        if (m == MAP_FAILED) {
            r->map_bytes = 0;
            return rts_errf(eb, RTS_ERR_NOMEM, 0, 0,
                            "distinct: cannot reserve %zu bytes for %zu %s", max * block_bytes, max,
                            what);
        }
        r->base = m;
    }
    return RTS_ERR_OK;
}

static int region_prefault(struct region *r, size_t ahead, size_t chunk)
{
    uint64_t fresh = __atomic_load_n(&r->fresh, __ATOMIC_RELAXED);

    return rts_populate_step(
        &r->ready, r->base,
        (size_t)(fresh + ahead < r->max ? fresh + ahead : r->max) * r->block_bytes, chunk);
}

/* Bytes of one sketch block: its panes, merged and owner registers, then its
 * meta data rounded up to a page. */
static size_t sketch_bytes(const struct rts_distinct_spec *d)
{
    size_t meta = sizeof(struct hll_meta) + d->nbuckets * (sizeof(int64_t) + sizeof(uint16_t) + 1);

    return (size_t)(d->nbuckets + 2) * RTS_HLL_M + ((meta + PAGE - 1) & ~(size_t)(PAGE - 1));
}

size_t rts_hll_lists_like_sketches(const struct rts_distinct_spec *d, size_t max_sketches)
{
    return max_sketches * (sketch_bytes(d) / PAGE);
}

struct rts_hll_pool *rts_hll_pool_new(const struct rts_distinct_spec *d, size_t max_sketches,
                                      size_t max_lists, struct rts_errbuf *eb)
{
    struct rts_hll_pool *p;

    if (rts_distinct_check(d, eb) != RTS_ERR_OK) {
        return NULL;
    }
    if (max_sketches > RTS_HLL_MAX_SKETCHES || max_lists > RTS_HLL_MAX_SKETCHES) {
        rts_errf(eb, RTS_ERR_INVAL, 0, 0,
                 "distinct max_sketches and list blocks must be <= %u, got %zu and %zu",
                 RTS_HLL_MAX_SKETCHES, max_sketches, max_lists);
        return NULL;
    }
    p = calloc(1, sizeof(*p));
    if (!p) {
        rts_errf(eb, RTS_ERR_NOMEM, 0, 0, "distinct: out of memory for the sketch pool");
        return NULL;
    }
    p->nbuckets = d->nbuckets;
    if (region_init(&p->sk, max_sketches, sketch_bytes(d), (size_t)(d->nbuckets + 2) * RTS_HLL_M,
                    "sketches", eb) != RTS_ERR_OK ||
        region_init(&p->ls, d->sparse_cap < LIST_CAP ? max_lists : 0, PAGE, 0, "list blocks", eb) !=
            RTS_ERR_OK) {
        rts_hll_pool_free(p);
        return NULL;
    }
    return p;
}

int rts_hll_pool_prefault(struct rts_hll_pool *p, size_t ahead, size_t chunk)
{
    return region_prefault(&p->ls, ahead, chunk) || region_prefault(&p->sk, ahead, chunk);
}

void rts_hll_pool_free(struct rts_hll_pool *p)
{
    if (!p) {
        return;
    }
    if (p->sk.base) {
        munmap(p->sk.base, p->sk.map_bytes);
    }
    if (p->ls.base) {
        munmap(p->ls.base, p->ls.map_bytes);
    }
    free(p);
}

void rts_hll_pool_stats(const struct rts_hll_pool *p, struct rts_hll_pool_stats *out)
{
    out->in_use = __atomic_load_n(&p->sk.in_use, __ATOMIC_RELAXED);
    out->max = p->sk.max;
    out->exhausted = __atomic_load_n(&p->exhausted, __ATOMIC_RELAXED);
    out->reclaimed = __atomic_load_n(&p->sk.reclaimed, __ATOMIC_RELAXED) +
                     __atomic_load_n(&p->ls.reclaimed, __ATOMIC_RELAXED);
    out->bytes_per_sketch = p->sk.block_bytes;
    out->lists_in_use = __atomic_load_n(&p->ls.in_use, __ATOMIC_RELAXED);
    out->lists_max = p->ls.max;
    out->bytes_per_list = p->ls.block_bytes;
}

double rts_hll_estimate(const uint8_t *regs)
{
    uint16_t hist[HIST_N] = {0};
    size_t i;

    for (i = 0; i < RTS_HLL_M; i++) {
        hist[regs[i] < RANK_MAX ? regs[i] : RANK_MAX]++;
    }
    return hll_estimate(hist);
}

int rts_distinct_is_dense(const void *st, const struct rts_hll_pool *p)
{
    struct sk k;

    return dense_sk(p, st, &k);
}

int rts_distinct_is_list(const void *st, const struct rts_hll_pool *p)
{
    return p && blk_of(&p->ls, st, MODE_LIST) != NULL;
}

/* Exact -> dense: fold the live entries @e and the new value into a sketch;
 * a list block goes back. Returns 0 if the pool has no sketch to give. */
static int promote(const struct rts_distinct_spec *d, struct dhdr *h, struct rts_hll_pool *p,
                   const struct ents *e, int64_t ts_ms, uint64_t hash)
{
    int64_t r = dres(d);
    int64_t top = rts_floor_div(h->newest_ts, r);
    uint32_t idx1 = pool_take(p, d, ts_ms, top), i, idx;
    struct sk k;
    uint8_t rank;

    if (!idx1) {
        return 0;
    }
    sk_get(p, idx1, &k);
    for (i = 0; i < h->nsparse; i++) {
        int64_t b = rts_floor_div(e->time[i], r);

        if (in_ring(b, top, d->nbuckets)) {
            hll_split32(e->hash[i], &idx, &rank);
            dense_set(&k, b, idx, rank);
        }
    }
    hll_split64(hash, &idx, &rank);
    dense_set(&k, rts_floor_div(ts_ms, r), idx, rank);
    if (h->mode == MODE_LIST) {
        region_put(&p->ls, h->block);
    }
    h->mode = MODE_DENSE;
    h->block = idx1;
    h->gen = k.m->l.gen;
    h->nsparse = 0;
    return 1;
}

/* Inline -> list: the entries move to a list block and @e to them. Returns
 * 0 if the pool has no list block to give. */
static int to_list(const struct rts_distinct_spec *d, struct dhdr *h, struct rts_hll_pool *p,
                   int64_t ts_ms, struct ents *e)
{
    uint32_t idx1 = region_take(p, &p->ls, ts_ms, list_expire_ts(d, h->newest_ts));
    unsigned char *b;

    if (!idx1) {
        return 0;
    }
    b = blk_at(&p->ls, idx1);
    memcpy(b + LIST_HASH_OFF, e->hash, h->nsparse * sizeof(*e->hash));
    memcpy(b + LIST_TIME_OFF, e->time, h->nsparse * sizeof(*e->time));
    h->mode = MODE_LIST;
    h->block = idx1;
    h->gen = blk_link(&p->ls, idx1)->gen;
    return ents_of(d, h, p, e);
}

/* An entry of @e for a new value: unused, or one that left the window of
 * the newest event; UINT32_MAX if none, with *oldest the least recent. */
static uint32_t ents_slot(const struct rts_distinct_spec *d, struct dhdr *h, const struct ents *e,
                          uint32_t *oldest)
{
    uint32_t i;

    if (h->nsparse < e->cap) {
        return h->nsparse++;
    }
    *oldest = 0;
    for (i = 0; i < h->nsparse; i++) {
        if ((uint64_t)h->newest_ts - (uint64_t)e->time[i] >= (uint64_t)d->width_ms) {
            return i;
        }
        if (e->time[i] < e->time[*oldest]) {
            *oldest = i;
        }
    }
    return UINT32_MAX;
}

/* Add to the exact entries @e of @h; when they are full, move inline ones to
 * a list block, or a list to a sketch; with neither to be had, drop the
 * least recent of the entries and the new value (counted). */
static void exact_add(const struct rts_distinct_spec *d, struct dhdr *h, struct rts_hll_pool *p,
                      struct ents *e, int64_t ts_ms, uint64_t hash)
{
    uint32_t h32 = (uint32_t)(hash >> 32), i, slot, oldest = 0;

    for (i = 0; i < h->nsparse; i++) {
        if (e->hash[i] == h32) {
            if (ts_ms > e->time[i]) {
                e->time[i] = ts_ms;
            }
            return;
        }
    }
    slot = ents_slot(d, h, e, &oldest);
    if (slot == UINT32_MAX && h->mode == MODE_INLINE && p && to_list(d, h, p, ts_ms, e)) {
        slot = h->nsparse++; /* a list holds more than inline (region_init) */
    }
    if (slot == UINT32_MAX) {
        if (p && promote(d, h, p, e, ts_ms, hash)) {
            return;
        }
        if (p) {
            count_inc(&p->exhausted);
        }
        if (ts_ms <= e->time[oldest]) {
            return; /* the new value is the oldest: it is the one dropped */
        }
        slot = oldest;
    }
    e->hash[slot] = h32;
    e->time[slot] = ts_ms;
}

/* Dense mode: apply the value of @hash at bucket ordinal @e, ts_ms. Returns
 * 0 if the sketch was given back or taken back (the key is inline now). */
static int dense_add(const struct rts_distinct_spec *d, struct dhdr *h, struct rts_hll_pool *p,
                     int64_t e, int64_t ts_ms, uint64_t hash)
{
    struct sk k;
    uint32_t idx;
    uint8_t rank;

    if (!dense_sk(p, h, &k)) {
        to_inline(h); /* taken back by the pool: every pane had expired */
        return 0;
    }
    if (e > k.m->newest) {
        if (k.m->l.expire_ts <= ts_ms) {
            region_put(&p->sk, h->block); /* every pane has expired: back to inline */
            to_inline(h);
            return 0;
        }
        cache_advance(&k, e);
        k.m->l.expire_ts = expire_ts_of(d, e);
        used_touch(&p->sk, h->block);
    }
    hll_split64(hash, &idx, &rank);
    dense_set(&k, e, idx, rank);
    return 1;
}

/* List mode, before an add at @ts_ms: the key goes back to inline if its
 * list block was taken back by the pool, or given back here because every
 * value has expired; else the block's expire time follows the newest value. */
static void list_advance(const struct rts_distinct_spec *d, struct dhdr *h, struct rts_hll_pool *p,
                         int64_t ts_ms)
{
    struct blk_link *l;

    if (!p || !blk_of(&p->ls, h, MODE_LIST)) {
        to_inline(h);
        return;
    }
    l = blk_link(&p->ls, h->block);
    if (l->expire_ts <= ts_ms) {
        region_put(&p->ls, h->block);
        to_inline(h);
    } else if (h->newest_ts > INT64_MAX - d->width_ms ||
               h->newest_ts + d->width_ms > l->expire_ts) {
        l->expire_ts = list_expire_ts(d, h->newest_ts);
        used_touch(&p->ls, h->block);
    }
}

int rts_distinct_add(const struct rts_distinct_spec *d, void *st, struct rts_hll_pool *p,
                     int64_t ts_ms, uint64_t hash)
{
    struct dhdr *h = st;
    int64_t r = dres(d);
    int64_t e = rts_floor_div(ts_ms, r);
    int64_t top = rts_floor_div(h->newest_ts, r);
    struct ents x;

    if (h->seen && e < top && (uint64_t)top - (uint64_t)e >= d->nbuckets) {
        return 1;
    }
    if (!h->seen || ts_ms > h->newest_ts) {
        h->newest_ts = ts_ms;
    }
    h->seen = 1;
    if (h->mode == MODE_DENSE && dense_add(d, h, p, e, ts_ms, hash)) {
        return 0;
    }
    if (h->mode == MODE_LIST) {
        list_advance(d, h, p, ts_ms);
    }
    ents_of(d, h, p, &x);
    exact_add(d, h, p, &x, ts_ms, hash);
    return 0;
}

static double dense_query(const struct sk *k, int64_t q)
{
    uint8_t regs[RTS_HLL_M];
    uint16_t hist[HIST_N];
    int64_t top = k->m->newest;

    if (q == top) {
        return hll_estimate(k->m->hist);
    }
    if (q > top) {
        uint8_t leaving[RTS_HLL_MAX_BUCKETS];
        uint32_t nleaving;

        if (!in_ring(top, q, k->n)) {
            return 0.0;
        }
        if (leaving_load(k, top, q, leaving, &nleaving) <= EXPIRE_MAX) {
            memcpy(hist, k->m->hist, sizeof(hist));
            expire_regs(k, top, q, leaving, nleaving, hist, 0);
            return hll_estimate(hist);
        }
    }
    if (!merge_panes(k, q, top, regs)) {
        return 0.0;
    }
    regs_hist(regs, hist);
    return hll_estimate(hist);
}

double rts_distinct_query(const struct rts_distinct_spec *d, const void *st,
                          const struct rts_hll_pool *p, int64_t ts_ms)
{
    const struct dhdr *h = st;
    struct sk k;
    struct ents x;
    const uint64_t width = (uint64_t)d->width_ms;
    uint32_t i, n, count = 0;

    if (!h->seen) {
        return 0.0;
    }
    if (h->mode == MODE_DENSE) {
        if (!dense_sk(p, h, &k)) {
            return 0.0; /* taken back: every pane had expired */
        }
        return dense_query(&k, rts_floor_div(ts_ms, dres(d)));
    }
    if (!ents_of(d, h, p, &x)) {
        return 0.0; /* taken back: every value had expired */
    }
    n = h->nsparse;
    for (i = 0; i < n; i++) { /* on locals only, so that the compiler vectorizes it */
        count += x.time[i] <= ts_ms && (uint64_t)ts_ms - (uint64_t)x.time[i] < width;
    }
    return (double)count;
}

void rts_distinct_release(const struct rts_distinct_spec *d, void *st, struct rts_hll_pool *p)
{
    struct dhdr *h = st;

    if (p && blk_of(&p->sk, h, MODE_DENSE)) {
        region_put(&p->sk, h->block);
    } else if (p && blk_of(&p->ls, h, MODE_LIST)) {
        region_put(&p->ls, h->block);
    }
    memset(st, 0, rts_distinct_size(d));
}
