/*
 * state.c - the index, slab and LRU list behind state.h.
 *
 * Index slot (uint64_t): high 32 bits a tag, low 32 bits the entry number + 1;
 * 0 is an empty slot. The tag is the top half of the caller's hash multiplied
 * by a 64-bit odd constant (Fibonacci hashing), so keys spread over the index
 * even when the caller's hash has fixed bits (the routing hash of a worker's
 * keys shares its low bits when routing is hash % nworkers). A key's home slot
 * is the top bits of its tag, so probing and backward shifts compute homes
 * without touching entries, and a probe touches an entry only on a tag match.
 *
 * Entry (entry_bytes apart in the slab): struct entry, then max_key_len key
 * bytes (rounded to 8), then the value block: the hash, length and a short
 * key share the entry's first cache line. Entries never used are taken in
 * slab order (the slab commits as it fills); dropped ones go on a free stack.
 */
#include "feature/state.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "core/populate.h"

#define PAGE 4096u
#define FIB 0x9E3779B97F4A7C15ULL

struct entry {
    uint64_t hash;       /* the caller's hash */
    int64_t last_ts;     /* newest event time the key was seen at */
    uint32_t prev, next; /* LRU list (head = most recent), entry + 1; next links the free stack */
    uint32_t key_len;
    uint32_t pad;
};

struct rts_state_table {
    unsigned char *slab;
    uint64_t *index;
    size_t slab_bytes, index_bytes, entry_bytes, value_size, value_off;
    uint64_t mask;  /* index slots - 1 */
    unsigned shift; /* home slot = tag >> shift */
    uint32_t max_keys, max_key_len;
    uint32_t head, tail; /* LRU, entry + 1, 0 = none */
    uint32_t free_head;  /* entry + 1, 0 = none */
    uint32_t fresh;      /* entries [fresh, max_keys) never used */
    int64_t ttl, newest;
    int seen; /* newest is valid */
    void (*drop)(void *ctx, void *value);
    void *drop_ctx;
    uint64_t keys, evicted, expired;             /* written by the owner thread only */
    struct rts_populate slab_ready, index_ready; /* rts_state_prefault's progress */
};

static size_t align8(size_t n)
{
    return (n + 7) & ~(size_t)7;
}

static size_t page_round(size_t n)
{
    return (n + PAGE - 1) & ~(size_t)(PAGE - 1);
}

static void count_add(uint64_t *c, int64_t d)
{
    __atomic_store_n(c, *c + (uint64_t)d, __ATOMIC_RELAXED);
}

static struct entry *ent(const struct rts_state_table *t, uint32_t e1)
{
    return (struct entry *)(t->slab + (size_t)(e1 - 1) * t->entry_bytes);
}

static void *ent_value(const struct rts_state_table *t, struct entry *e)
{
    return (unsigned char *)e + t->value_off;
}

static unsigned char *ent_key(struct entry *e)
{
    return (unsigned char *)e + sizeof(struct entry);
}

static uint32_t tag_of(uint64_t hash)
{
    return (uint32_t)((hash * FIB) >> 32);
}

static uint64_t home_of(const struct rts_state_table *t, uint32_t tag)
{
    return (uint64_t)(tag >> t->shift);
}

/* ---- LRU ---- */

static void lru_unlink(struct rts_state_table *t, uint32_t e1)
{
    struct entry *e = ent(t, e1);

    if (e->prev) {
        ent(t, e->prev)->next = e->next;
    } else {
        t->head = e->next;
    }
    if (e->next) {
        ent(t, e->next)->prev = e->prev;
    } else {
        t->tail = e->prev;
    }
    e->prev = e->next = 0;
}

static void lru_push(struct rts_state_table *t, uint32_t e1)
{
    struct entry *e = ent(t, e1);

    e->prev = 0;
    e->next = t->head;
    if (t->head) {
        ent(t, t->head)->prev = e1;
    } else {
        t->tail = e1;
    }
    t->head = e1;
}

/* ---- index ---- */

/* Remove entry @e1 from the index: backward-shift deletion. Every element
 * after the hole, up to the next empty slot, moves back into the hole unless
 * its home lies cyclically in (hole, its slot]. */
static void index_remove(struct rts_state_table *t, uint32_t e1)
{
    uint32_t tag = tag_of(ent(t, e1)->hash);
    uint64_t i = home_of(t, tag), j;

    while ((uint32_t)t->index[i] != e1) {
        i = (i + 1) & t->mask;
    }
    for (j = (i + 1) & t->mask; t->index[j]; j = (j + 1) & t->mask) {
        uint64_t h = home_of(t, (uint32_t)(t->index[j] >> 32));

        if (((j - h) & t->mask) >= ((j - i) & t->mask)) {
            t->index[i] = t->index[j];
            i = j;
        }
    }
    t->index[i] = 0;
}

static uint64_t index_free_slot(const struct rts_state_table *t, uint32_t tag)
{
    uint64_t i = home_of(t, tag);

    while (t->index[i]) {
        i = (i + 1) & t->mask;
    }
    return i;
}

/* ---- drop ---- */

static int expired(const struct rts_state_table *t, const struct entry *e)
{
    return t->ttl > 0 && e->last_ts < t->newest &&
           (uint64_t)t->newest - (uint64_t)e->last_ts > (uint64_t)t->ttl;
}

/* Drop entry @e1: callback, index, LRU, counters. The caller reuses or frees it. */
static void unlink_entry(struct rts_state_table *t, uint32_t e1, uint64_t *counter)
{
    struct entry *e = ent(t, e1);

    if (t->drop) {
        t->drop(t->drop_ctx, ent_value(t, e));
    }
    index_remove(t, e1);
    lru_unlink(t, e1);
    count_add(&t->keys, -1);
    count_add(counter, 1);
}

/* ---- public ---- */

struct rts_state_table *rts_state_new(uint64_t max_keys, uint32_t max_key_len, size_t value_size,
                                      int64_t ttl_ms, struct rts_errbuf *eb)
{
    struct rts_state_table *t;
    uint64_t slots = 2;
    unsigned bits = 1;
    void *m;

    if (max_keys < 1 || max_keys > RTS_STATE_MAX_KEYS) {
        rts_errf(eb, RTS_ERR_INVAL, 0, 0, "state: max_keys must be in 1..%llu, got %llu",
                 (unsigned long long)RTS_STATE_MAX_KEYS, (unsigned long long)max_keys);
        return NULL;
    }
    if (max_key_len < 1 || max_key_len > RTS_STATE_MAX_KEY_LEN) {
        rts_errf(eb, RTS_ERR_INVAL, 0, 0, "state: max_key_len must be in 1..%u, got %u",
                 RTS_STATE_MAX_KEY_LEN, max_key_len);
        return NULL;
    }
    if (value_size > RTS_STATE_MAX_VALUE) {
        rts_errf(eb, RTS_ERR_INVAL, 0, 0, "state: value_size must be <= %u, got %zu",
                 RTS_STATE_MAX_VALUE, value_size);
        return NULL;
    }
    if (ttl_ms < 0) {
        rts_errf(eb, RTS_ERR_INVAL, 0, 0, "state: ttl must be >= 0, got %lld", (long long)ttl_ms);
        return NULL;
    }
    t = calloc(1, sizeof(*t));
    if (!t) {
        rts_errf(eb, RTS_ERR_NOMEM, 0, 0, "state: out of memory");
        return NULL;
    }
    while (slots < 2 * max_keys) {
        slots <<= 1;
        bits++;
    }
    t->mask = slots - 1;
    t->shift = 32 - bits;
    t->max_keys = (uint32_t)max_keys;
    t->max_key_len = max_key_len;
    t->value_size = align8(value_size);
    t->value_off = sizeof(struct entry) + align8(max_key_len);
    t->entry_bytes = t->value_off + t->value_size;
    t->ttl = ttl_ms;
    if (max_keys > SIZE_MAX / t->entry_bytes) {
        rts_errf(eb, RTS_ERR_INVAL, 0, 0, "state: %llu keys of %zu bytes overflow",
                 (unsigned long long)max_keys, t->entry_bytes);
        goto free_t;
    }
    t->slab_bytes = page_round((size_t)max_keys * t->entry_bytes);
    t->index_bytes = page_round((size_t)slots * sizeof(uint64_t));
    m = mmap(NULL, t->index_bytes, PROT_READ | PROT_WRITE,
             MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (m == MAP_FAILED) {
        rts_errf(eb, RTS_ERR_NOMEM, 0, 0, "state: cannot reserve %zu bytes for the index",
                 t->index_bytes);
        goto free_t;
    }
    t->index = m;
    m = mmap(NULL, t->slab_bytes, PROT_READ | PROT_WRITE,
             MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (m == MAP_FAILED) {
        rts_errf(eb, RTS_ERR_NOMEM, 0, 0, "state: cannot reserve %zu bytes for %llu keys",
                 t->slab_bytes, (unsigned long long)max_keys);
        goto unmap_index;
    }
    t->slab = m;
    return t;

unmap_index:
    munmap(t->index, t->index_bytes);
free_t:
    free(t);
    return NULL;
}

void rts_state_set_drop(struct rts_state_table *t, void (*fn)(void *ctx, void *value), void *ctx)
{
    t->drop = fn;
    t->drop_ctx = ctx;
}

static void prefetch_lines(const unsigned char *p, size_t from, size_t to)
{
    for (size_t o = from; o < to; o += 64) {
        __builtin_prefetch(p + o, 1, 3);
    }
}

int rts_state_prefault(struct rts_state_table *t, size_t ahead, size_t chunk)
{
    size_t fresh = __atomic_load_n(&t->fresh, __ATOMIC_RELAXED);
    size_t want = (fresh + ahead < t->max_keys ? fresh + ahead : t->max_keys) * t->entry_bytes;

    return rts_populate_step(&t->slab_ready, t->slab, want, chunk) ||
           rts_populate_step(&t->index_ready, (unsigned char *)t->index, t->index_bytes, chunk);
}

void rts_state_prefetch(const struct rts_state_table *t, uint64_t hash, int stage)
{
    uint32_t tag = tag_of(hash);
    uint64_t s = t->index[home_of(t, tag)];
    const struct entry *e;
    size_t half;

    if (stage == 0) {
        __builtin_prefetch(&t->index[home_of(t, tag)], 0, 3);
        return;
    }
    if (s == 0 || (uint32_t)(s >> 32) != tag) {
        return; /* a new key, or not in its home slot: not worth chasing */
    }
    e = ent(t, (uint32_t)s);
    half = t->value_off + (t->entry_bytes - t->value_off) / 2;
    if (stage == 1) {
        prefetch_lines((const unsigned char *)e, 0, half);
        return;
    }
    if (e->prev) {
        __builtin_prefetch(ent(t, e->prev), 1, 3);
    }
    if (e->next) {
        __builtin_prefetch(ent(t, e->next), 1, 3);
    }
    prefetch_lines((const unsigned char *)e, half, t->entry_bytes);
}

void *rts_state_get(struct rts_state_table *t, const char *key, uint32_t len, uint64_t hash,
                    int64_t ts_ms, int *is_new)
{
    uint32_t tag = tag_of(hash), e1;
    uint64_t i, s;
    struct entry *e;
    int k;

    if (len > t->max_key_len) {
        return NULL;
    }
    if (!t->seen || ts_ms > t->newest) {
        t->newest = ts_ms;
        t->seen = 1;
    }
    for (k = 0; k < 2 && t->tail && expired(t, ent(t, t->tail)); k++) {
        e1 = t->tail;
        unlink_entry(t, e1, &t->expired);
        ent(t, e1)->next = t->free_head;
        t->free_head = e1;
    }

    for (i = home_of(t, tag); (s = t->index[i]) != 0; i = (i + 1) & t->mask) {
        if ((uint32_t)(s >> 32) != tag) {
            continue;
        }
        e1 = (uint32_t)s;
        e = ent(t, e1);
        if (e->hash != hash || e->key_len != len || (len && memcmp(ent_key(e), key, len) != 0)) {
            continue;
        }
        if (expired(t, e)) {
            /* expired but not reaped yet: drop the old value, keep the slot */
            if (t->drop) {
                t->drop(t->drop_ctx, ent_value(t, e));
            }
            count_add(&t->expired, 1);
            memset(ent_value(t, e), 0, t->value_size);
            e->last_ts = ts_ms;
            *is_new = 1;
        } else {
            if (ts_ms > e->last_ts) {
                e->last_ts = ts_ms;
            }
            *is_new = 0;
        }
        if (t->head != e1) {
            lru_unlink(t, e1);
            lru_push(t, e1);
        }
        return ent_value(t, e);
    }

    /* a new key; i is a free slot on its probe path unless an eviction moves things */
    if (t->free_head) {
        e1 = t->free_head;
        t->free_head = ent(t, e1)->next;
    } else if (t->fresh < t->max_keys) {
        e1 = t->fresh + 1;
        __atomic_store_n(&t->fresh, e1, __ATOMIC_RELAXED);
    } else {
        e1 = t->tail; /* full: evict the least recently seen key */
        unlink_entry(t, e1, &t->evicted);
        i = index_free_slot(t, tag);
    }
    e = ent(t, e1);
    e->hash = hash;
    e->last_ts = ts_ms;
    e->key_len = len;
    if (len) {
        memcpy(ent_key(e), key, len);
    }
    memset(ent_value(t, e), 0, t->value_size);
    t->index[i] = ((uint64_t)tag << 32) | e1;
    lru_push(t, e1);
    count_add(&t->keys, 1);
    *is_new = 1;
    return ent_value(t, e);
}

void rts_state_stats(const struct rts_state_table *t, struct rts_state_stats *out)
{
    uint32_t fresh = __atomic_load_n(&t->fresh, __ATOMIC_RELAXED);

    out->keys = __atomic_load_n(&t->keys, __ATOMIC_RELAXED);
    out->evicted = __atomic_load_n(&t->evicted, __ATOMIC_RELAXED);
    out->expired = __atomic_load_n(&t->expired, __ATOMIC_RELAXED);
    out->entry_bytes = t->entry_bytes;
    out->bytes_committed = sizeof(*t) + t->index_bytes + page_round((size_t)fresh * t->entry_bytes);
}

void rts_state_free(struct rts_state_table *t)
{
    if (!t) {
        return;
    }
    munmap(t->slab, t->slab_bytes);
    munmap(t->index, t->index_bytes);
    free(t);
}
