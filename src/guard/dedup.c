/*
 * dedup.c - the event id set of one worker (dedup.h): a FIFO of the ids in
 * arrival order and an open-addressing index over it.
 *
 * The FIFO is a ring of max_ids entries, split into two arrays: the id hash
 * (8 bytes) and the arrival time in milliseconds truncated to 32 bits (4
 * bytes). Arrival order is time order (times are clamped to the latest seen),
 * so expiry and eviction both pop the head. A 32-bit time is enough: every id
 * held is younger than the horizon (< 2^31 ms) at the previous call, and a
 * gap between calls of a whole horizon or more empties the set outright, so
 * an age computed modulo 2^32 is exact.
 *
 * The index is a power-of-two table of id hashes with linear probing, 0 for
 * an empty slot, at most 3/4 full (from 3/8 up, after rounding). A hash's
 * home slot is the top bits of hash * 2^64/phi, so a weak hash still spreads.
 * Removing an id (from the FIFO head) shifts the rest of its probe run back
 * into the hole, so there are no tombstones and lookups stay short however
 * long the set runs. Each id is in the index at most once: a repeat is never
 * recorded again.
 *
 * Invariants between calls: count <= cap; the ring entries head .. head +
 * count - 1 (mod cap) are exactly the ids in the index, oldest first, with
 * times in [last_ms - horizon_ms + 1, last_ms].
 */
#include "guard/dedup.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "core/buf.h"

#define GOLDEN UINT64_C(0x9E3779B97F4A7C15)
#define SAVE_MAGIC "RTSDEDUP"
#define SAVE_VERSION 1u
#define SAVE_HEADER 32
#define SAVE_ENTRY 16
#define HUGE_PAGE (UINT64_C(2) << 20)

struct rts_dedup {
    uint64_t *index; /* nslots id hashes, 0 = empty */
    uint64_t mask;   /* nslots - 1 */
    unsigned shift;  /* 64 - log2(nslots) */

    uint64_t *ring_hash; /* cap ids in arrival order from head */
    uint32_t *ring_t;    /* their arrival times, ms mod 2^32 */
    uint64_t cap, head, count;

    int64_t horizon_ms;
    int64_t last_ms; /* latest time seen; times below it are raised to it */
    int started;     /* last_ms is set */

    /* written by the owner only, read by anyone */
    _Atomic uint64_t checks, duplicates, expired, evicted, held;
};

/* A counter only its owner writes: a plain add, published atomically. */
static void bump(_Atomic uint64_t *c, uint64_t n)
{
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + n,
                          memory_order_relaxed);
}

/* @n bytes, zeroed and written through (no page fault is left for the
 * per-event path). Large arrays are aligned to 2 MiB and offered to the
 * kernel for transparent huge pages: at random access over hundreds of MB,
 * TLB misses cost as much as the cache misses. */
static void *alloc_table(size_t n)
{
    void *p;

    if (n >= HUGE_PAGE) {
        n = (n + HUGE_PAGE - 1) / HUGE_PAGE * HUGE_PAGE;
        p = aligned_alloc(HUGE_PAGE, n);
        if (p) {
            madvise(p, n, MADV_HUGEPAGE); /* advice only: ignore failure */
        }
    } else {
        p = malloc(n ? n : 1);
    }
    if (p) {
        memset(p, 0, n);
    }
    return p;
}

static uint64_t index_slots(uint64_t max_ids)
{
    uint64_t need = max_ids + max_ids / 3 + 1, n = 8;

    while (n < need) {
        n <<= 1;
    }
    return n;
}

size_t rts_dedup_bytes(uint64_t max_ids)
{
    return sizeof(struct rts_dedup) + (size_t)index_slots(max_ids) * sizeof(uint64_t) +
           (size_t)max_ids * (sizeof(uint64_t) + sizeof(uint32_t));
}

struct rts_dedup *rts_dedup_new(int64_t horizon_us, uint64_t max_ids, struct rts_errbuf *eb)
{
    struct rts_dedup *d;
    uint64_t nslots;
    unsigned bits = 0;

    if (horizon_us < 1000 || horizon_us > RTS_DEDUP_MAX_HORIZON_US) {
        rts_errf(eb, RTS_ERR_INVAL, 0, 0, "dedup.horizon: %lld us is not within 1ms..24d",
                 (long long)horizon_us);
        return NULL;
    }
    if (max_ids < 1 || max_ids > RTS_DEDUP_MAX_IDS) {
        rts_errf(eb, RTS_ERR_INVAL, 0, 0, "dedup.max_ids: %llu is not within 1..%llu",
                 (unsigned long long)max_ids, (unsigned long long)RTS_DEDUP_MAX_IDS);
        return NULL;
    }
    nslots = index_slots(max_ids);
    while ((UINT64_C(1) << bits) < nslots) {
        bits++;
    }
    d = calloc(1, sizeof(*d));
    if (!d) {
        goto nomem;
    }
    d->index = alloc_table((size_t)nslots * sizeof(*d->index));
    d->ring_hash = alloc_table((size_t)max_ids * sizeof(*d->ring_hash));
    d->ring_t = alloc_table((size_t)max_ids * sizeof(*d->ring_t));
    if (!d->index || !d->ring_hash || !d->ring_t) {
        goto nomem;
    }
    d->mask = nslots - 1;
    d->shift = 64 - bits;
    d->cap = max_ids;
    d->horizon_ms = horizon_us / 1000;
    atomic_init(&d->checks, 0);
    atomic_init(&d->duplicates, 0);
    atomic_init(&d->expired, 0);
    atomic_init(&d->evicted, 0);
    atomic_init(&d->held, 0);
    return d;
nomem:
    rts_dedup_free(d);
    rts_errf(eb, RTS_ERR_NOMEM, 0, 0, "dedup: out of memory for %llu ids (%zu bytes)",
             (unsigned long long)max_ids, rts_dedup_bytes(max_ids));
    return NULL;
}

void rts_dedup_free(struct rts_dedup *d)
{
    if (!d) {
        return;
    }
    free(d->index);
    free(d->ring_hash);
    free(d->ring_t);
    free(d);
}

/* ---- the index ---- */

static uint64_t home(const struct rts_dedup *d, uint64_t h)
{
    return (h * GOLDEN) >> d->shift;
}

/* The slot holding @h, or the empty slot where its probe run ends. */
static uint64_t probe(const struct rts_dedup *d, uint64_t h)
{
    uint64_t i = home(d, h);

    while (d->index[i] != 0 && d->index[i] != h) {
        i = (i + 1) & d->mask;
    }
    return i;
}

/* Empty slot @i and shift back each later entry of the run that may move
 * (its home is not cyclically within (i, j]). */
static void index_remove_at(struct rts_dedup *d, uint64_t i)
{
    uint64_t j = i, k;

    for (;;) {
        j = (j + 1) & d->mask;
        if (d->index[j] == 0) {
            break;
        }
        k = home(d, d->index[j]);
        if (i <= j ? (i < k && k <= j) : (i < k || k <= j)) {
            continue;
        }
        d->index[i] = d->index[j];
        i = j;
    }
    d->index[i] = 0;
}

/* ---- the FIFO ---- */

/* Drop the oldest id from ring and index. */
static void pop_head(struct rts_dedup *d)
{
    uint64_t slot = probe(d, d->ring_hash[d->head]);

    index_remove_at(d, slot);
    d->head = d->head + 1 == d->cap ? 0 : d->head + 1;
    d->count--;
}

static void push_tail(struct rts_dedup *d, uint64_t h, int64_t ms)
{
    uint64_t tail = d->head + d->count;

    if (tail >= d->cap) {
        tail -= d->cap;
    }
    d->ring_hash[tail] = h;
    d->ring_t[tail] = (uint32_t)ms;
    d->count++;
    d->index[probe(d, h)] = h;
}

static void forget_all(struct rts_dedup *d)
{
    memset(d->index, 0, (size_t)(d->mask + 1) * sizeof(*d->index));
    d->head = 0;
    d->count = 0;
}

/* Move the clock to @now_us (never back) and expire what it passed. */
static int64_t advance(struct rts_dedup *d, int64_t now_us)
{
    int64_t ms = now_us / 1000;
    uint64_t n = 0;

    if (!d->started) {
        d->started = 1;
        d->last_ms = ms;
    }
    if (ms <= d->last_ms) {
        ms = d->last_ms;
    } else if (ms - d->last_ms >= d->horizon_ms) {
        /* everything held is from last_ms or before: all expired */
        n = d->count;
        forget_all(d);
    }
    d->last_ms = ms;
    while (d->count > 0 && (int64_t)(uint32_t)((uint32_t)ms - d->ring_t[d->head]) >= d->horizon_ms) {
        pop_head(d);
        n++;
    }
    if (n) {
        bump(&d->expired, n);
        atomic_store_explicit(&d->held, d->count, memory_order_relaxed);
    }
    return ms;
}

int rts_dedup_seen(struct rts_dedup *d, uint64_t id_hash, int64_t now_us)
{
    uint64_t h = id_hash ? id_hash : 1;
    int64_t ms = advance(d, now_us);

    bump(&d->checks, 1);
    if (d->index[probe(d, h)] == h) {
        bump(&d->duplicates, 1);
        return 1;
    }
    if (d->count == d->cap) {
        pop_head(d);
        bump(&d->evicted, 1);
    }
    push_tail(d, h, ms);
    atomic_store_explicit(&d->held, d->count, memory_order_relaxed);
    if (d->count == d->cap) {
        /* the next new id evicts the head: fetch its slot meanwhile */
        __builtin_prefetch(&d->index[home(d, d->ring_hash[d->head])], 1, 3);
    }
    return 0;
}

void rts_dedup_prefetch(const struct rts_dedup *d, uint64_t id_hash)
{
    __builtin_prefetch(&d->index[home(d, id_hash ? id_hash : 1)], 1, 3);
}

void rts_dedup_clear(struct rts_dedup *d)
{
    forget_all(d);
    atomic_store_explicit(&d->held, 0, memory_order_relaxed);
}

void rts_dedup_stats(const struct rts_dedup *d, struct rts_dedup_stats *out)
{
    out->checks = atomic_load_explicit(&d->checks, memory_order_relaxed);
    out->duplicates = atomic_load_explicit(&d->duplicates, memory_order_relaxed);
    out->expired = atomic_load_explicit(&d->expired, memory_order_relaxed);
    out->evicted = atomic_load_explicit(&d->evicted, memory_order_relaxed);
    out->held = atomic_load_explicit(&d->held, memory_order_relaxed);
    out->capacity = d->cap;
}

/* ---- save and restore ---- */

static void put64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++) {
        p[i] = (unsigned char)(v >> (8 * i));
    }
}

static uint64_t get64(const unsigned char *p)
{
    uint64_t v = 0;

    for (int i = 7; i >= 0; i--) {
        v = (v << 8) | p[i];
    }
    return v;
}

/* Header: magic (8), version (8), latest time in ms (8), ids (8). */
enum rts_err rts_dedup_save(const struct rts_dedup *d, struct rts_buf *out)
{
    unsigned char rec[SAVE_HEADER];
    uint64_t i, at;
    uint32_t last32 = (uint32_t)d->last_ms;
    enum rts_err rc;

    memcpy(rec, SAVE_MAGIC, 8);
    put64(rec + 8, SAVE_VERSION);
    put64(rec + 16, (uint64_t)d->last_ms);
    put64(rec + 24, d->count);
    rc = rts_buf_append(out, rec, SAVE_HEADER);
    for (i = 0; !rc && i < d->count; i++) {
        at = d->head + i >= d->cap ? d->head + i - d->cap : d->head + i;
        put64(rec, d->ring_hash[at]);
        put64(rec + 8, (uint64_t)(d->last_ms - (int64_t)(uint32_t)(last32 - d->ring_t[at])));
        rc = rts_buf_append(out, rec, SAVE_ENTRY);
    }
    return rc;
}

enum rts_err rts_dedup_restore(struct rts_dedup *d, const void *data, size_t len,
                               struct rts_errbuf *eb)
{
    const unsigned char *p = data;
    uint64_t n, i, skip, h;
    int64_t last, t, prev;

    rts_dedup_clear(d);
    if (len < SAVE_HEADER || memcmp(p, SAVE_MAGIC, 8) != 0 || get64(p + 8) != SAVE_VERSION) {
        return rts_errf(eb, RTS_ERR_PARSE, 0, 0, "dedup: not a saved id set (version %u)",
                        SAVE_VERSION);
    }
    last = (int64_t)get64(p + 16);
    n = get64(p + 24);
    if (n > (len - SAVE_HEADER) / SAVE_ENTRY || len != SAVE_HEADER + n * SAVE_ENTRY) {
        return rts_errf(eb, RTS_ERR_PARSE, 0, 0, "dedup: %zu bytes for %llu saved ids", len,
                        (unsigned long long)n);
    }
    /* check everything before touching the set, so a bad save leaves it empty */
    prev = INT64_MIN;
    for (i = 0; i < n; i++) {
        t = (int64_t)get64(p + SAVE_HEADER + i * SAVE_ENTRY + 8);
        h = get64(p + SAVE_HEADER + i * SAVE_ENTRY);
        if (t < prev || t > last || h == 0) {
            return rts_errf(eb, RTS_ERR_PARSE, 0, 0,
                            "dedup: saved id %llu is out of order, in the future or 0",
                            (unsigned long long)i);
        }
        prev = t;
    }
    skip = n > d->cap ? n - d->cap : 0;
    d->started = 1;
    d->last_ms = last;
    for (i = skip; i < n; i++) {
        h = get64(p + SAVE_HEADER + i * SAVE_ENTRY);
        t = (int64_t)get64(p + SAVE_HEADER + i * SAVE_ENTRY + 8);
        if (last - t >= d->horizon_ms) {
            bump(&d->expired, 1); /* saved under a longer horizon */
        } else if (d->index[probe(d, h)] != h) {
            push_tail(d, h, t);
        }
    }
    bump(&d->evicted, skip);
    atomic_store_explicit(&d->held, d->count, memory_order_relaxed);
    return RTS_ERR_OK;
}
