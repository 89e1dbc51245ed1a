/*
 * offsets.c - the offset tracker: per-slot rings of (holds, tag) words.
 *
 * A slot's messages are numbered by a 64-bit sequence that only grows, also
 * across revoke and assign. Message seq lives in ring entry seq & mask; the
 * entry's word holds the message's holds (low 24 bits) and its tag (high 40
 * bits: the lap, (seq48 >> cap_bits), so two messages sharing an entry never
 * share a tag within 2^40 laps). [head, tail) are the tracked messages not yet
 * committable; base is the first sequence number of the current assignment.
 *
 * Only the source thread writes head, tail, base, the offsets and an entry's
 * first word (track); other threads change words by compare-and-swap after
 * checking the tag, so an entry that was overwritten by a newer message is
 * never touched by an old token. The source thread reads a word with acquire
 * order, pairing with the release of the CAS that dropped its last hold:
 * whatever a thread did before releasing is visible before the commit.
 */
#include "source/offsets.h"

#include <stdatomic.h>
#include <stdlib.h>

#define HOLD_BITS 24
#define HOLD_MASK ((UINT64_C(1) << HOLD_BITS) - 1)
#define TAG_MASK ((UINT64_C(1) << 40) - 1)
#define SEQ_BITS 48
#define SEQ_MASK ((UINT64_C(1) << SEQ_BITS) - 1)

struct slot {
    _Atomic(_Atomic uint64_t *) words; /* set once, at the slot's first assign */
    _Atomic uint64_t base;             /* first seq of the current assignment */
    int64_t *offs;                     /* message offsets, source thread only */
    uint64_t head, tail;               /* seqs: [head, tail) tracked, not committable */
    int64_t pos;                       /* committable position, -1 none */
    int assigned;
};

struct rts_offsets {
    uint32_t nslots;
    uint32_t max_inflight;
    uint32_t cap_bits; /* ring entries = 1 << cap_bits >= max_inflight */
    uint64_t mask;
    struct slot *slots;
    _Atomic uint64_t stale, invalid;
};

struct rts_offsets *rts_offsets_new(uint32_t max_slots, uint32_t max_inflight,
                                    struct rts_errbuf *eb)
{
    struct rts_offsets *o;

    if (max_slots < 1 || max_slots > RTS_OFFSETS_MAX_SLOTS) {
        rts_errf(eb, RTS_ERR_INVAL, 0, 0, "offsets: partitions must be 1..%u, got %u",
                 RTS_OFFSETS_MAX_SLOTS, max_slots);
        return NULL;
    }
    if (max_inflight < 1 || max_inflight > RTS_OFFSETS_MAX_INFLIGHT) {
        rts_errf(eb, RTS_ERR_INVAL, 0, 0, "offsets: max_inflight must be 1..%u, got %u",
                 RTS_OFFSETS_MAX_INFLIGHT, max_inflight);
        return NULL;
    }
    o = calloc(1, sizeof(*o));
    if (!o || !(o->slots = calloc(max_slots, sizeof(*o->slots)))) {
        free(o);
        rts_errf(eb, RTS_ERR_NOMEM, 0, 0, "offsets: out of memory");
        return NULL;
    }
    o->nslots = max_slots;
    o->max_inflight = max_inflight;
    while ((UINT64_C(1) << o->cap_bits) < max_inflight) {
        o->cap_bits++;
    }
    o->mask = (UINT64_C(1) << o->cap_bits) - 1;
    for (uint32_t i = 0; i < max_slots; i++) {
        atomic_init(&o->slots[i].words, NULL);
        atomic_init(&o->slots[i].base, 0);
        o->slots[i].pos = -1;
    }
    atomic_init(&o->stale, 0);
    atomic_init(&o->invalid, 0);
    return o;
}

void rts_offsets_free(struct rts_offsets *o)
{
    if (!o) {
        return;
    }
    for (uint32_t i = 0; i < o->nslots; i++) {
        free((void *)atomic_load_explicit(&o->slots[i].words, memory_order_relaxed));
        free(o->slots[i].offs);
    }
    free(o->slots);
    free(o);
}

static struct slot *slot_of(struct rts_offsets *o, int slot)
{
    if (slot < 0 || (uint32_t)slot >= o->nslots || !o->slots[slot].assigned) {
        return NULL;
    }
    return &o->slots[slot];
}

int rts_offsets_assign(struct rts_offsets *o, struct rts_errbuf *eb)
{
    struct slot *s = NULL;
    size_t n = (size_t)o->mask + 1;

    /* a slot with a ring already is preferred: no allocation */
    for (uint32_t pass = 0; pass < 2 && !s; pass++) {
        for (uint32_t i = 0; i < o->nslots && !s; i++) {
            struct slot *c = &o->slots[i];
            if (!c->assigned &&
                (pass == 1 || atomic_load_explicit(&c->words, memory_order_relaxed))) {
                s = c;
            }
        }
    }
    if (!s) {
        rts_errf(eb, RTS_ERR_LIMIT, 0, 0, "offsets: more than %u partitions assigned at once",
                 o->nslots);
        return -1;
    }
    if (!atomic_load_explicit(&s->words, memory_order_relaxed)) {
        _Atomic uint64_t *w = malloc(n * sizeof(*w));
        int64_t *offs = malloc(n * sizeof(*offs));

        if (!w || !offs) {
            free((void *)w);
            free(offs);
            rts_errf(eb, RTS_ERR_NOMEM, 0, 0, "offsets: out of memory for %zu messages", n);
            return -1;
        }
        for (size_t i = 0; i < n; i++) {
            atomic_init(&w[i], 0);
        }
        s->offs = offs;
        atomic_store_explicit(&s->words, w, memory_order_release);
    }
    s->assigned = 1;
    s->head = s->tail;
    s->pos = -1;
    atomic_store_explicit(&s->base, s->tail, memory_order_release);
    return (int)(s - o->slots);
}

void rts_offsets_revoke(struct rts_offsets *o, int slot)
{
    struct slot *s = slot_of(o, slot);

    if (!s) {
        return;
    }
    s->assigned = 0;
    s->head = s->tail;
    s->pos = -1;
    /* every token issued so far is now older than base: stale */
    atomic_store_explicit(&s->base, s->tail, memory_order_release);
}

/* Move head over finished messages. */
static void advance(struct rts_offsets *o, struct slot *s)
{
    _Atomic uint64_t *w = atomic_load_explicit(&s->words, memory_order_relaxed);

    while (s->head != s->tail) {
        uint64_t i = s->head & o->mask;
        if (atomic_load_explicit(&w[i], memory_order_acquire) & HOLD_MASK) {
            break;
        }
        s->pos = s->offs[i] + 1;
        s->head++;
    }
}

static uint64_t tag_of(const struct rts_offsets *o, uint64_t seq48)
{
    return (seq48 >> o->cap_bits) & TAG_MASK;
}

uint64_t rts_offsets_track(struct rts_offsets *o, int slot, int64_t offset)
{
    struct slot *s = slot_of(o, slot);
    _Atomic uint64_t *w;
    uint64_t seq, i;

    if (!s) {
        return 0;
    }
    if (s->tail - s->head >= o->max_inflight) {
        advance(o, s);
        if (s->tail - s->head >= o->max_inflight) {
            return 0;
        }
    }
    w = atomic_load_explicit(&s->words, memory_order_relaxed);
    seq = s->tail & SEQ_MASK;
    i = seq & o->mask;
    s->offs[i] = offset;
    atomic_store_explicit(&w[i], (tag_of(o, seq) << HOLD_BITS) | 1, memory_order_release);
    s->tail++;
    return ((uint64_t)(slot + 1) << SEQ_BITS) | seq;
}

int64_t rts_offsets_committable(struct rts_offsets *o, int slot)
{
    struct slot *s = slot_of(o, slot);

    if (!s) {
        return -1;
    }
    advance(o, s);
    return s->pos;
}

uint32_t rts_offsets_inflight(struct rts_offsets *o, int slot)
{
    struct slot *s = slot_of(o, slot);

    if (!s) {
        return 0;
    }
    advance(o, s);
    return (uint32_t)(s->tail - s->head);
}

int rts_offsets_full(struct rts_offsets *o, int slot)
{
    return slot_of(o, slot) && rts_offsets_inflight(o, slot) >= o->max_inflight;
}

int rts_offsets_token_slot(uint64_t token)
{
    uint64_t s = token >> SEQ_BITS;

    return s == 0 ? -1 : (int)(s - 1);
}

static enum rts_offsets_result ignored(struct rts_offsets *o, enum rts_offsets_result r)
{
    atomic_fetch_add_explicit(r == RTS_OFFSETS_STALE ? &o->stale : &o->invalid, 1,
                              memory_order_relaxed);
    return r;
}

/* Add @delta (> 0: holds; -1: a release) to @token's entry. */
static enum rts_offsets_result change(struct rts_offsets *o, uint64_t token, int64_t delta)
{
    int slot = rts_offsets_token_slot(token);
    uint64_t seq = token & SEQ_MASK, tag, word, base;
    _Atomic uint64_t *w, *e;
    struct slot *s;

    if (slot < 0 || (uint32_t)slot >= o->nslots) {
        return ignored(o, RTS_OFFSETS_INVALID);
    }
    s = &o->slots[slot];
    w = atomic_load_explicit(&s->words, memory_order_acquire);
    if (!w) {
        return ignored(o, RTS_OFFSETS_INVALID);
    }
    base = atomic_load_explicit(&s->base, memory_order_acquire) & SEQ_MASK;
    if (((seq - base) & SEQ_MASK) >= (UINT64_C(1) << (SEQ_BITS - 1))) {
        return ignored(o, RTS_OFFSETS_STALE); /* issued before the current assignment */
    }
    tag = tag_of(o, seq);
    e = &w[seq & o->mask];
    word = atomic_load_explicit(e, memory_order_relaxed);
    for (;;) {
        uint64_t holds = word & HOLD_MASK, next;

        if ((word >> HOLD_BITS) != tag) {
            /* the entry holds a newer message: this one was revoked and its
             * entry reused, or the token was never issued */
            return ignored(o, RTS_OFFSETS_STALE);
        }
        if (holds == 0 || (delta > 0 && holds + (uint64_t)delta > RTS_OFFSETS_MAX_HOLDS)) {
            return ignored(o, RTS_OFFSETS_INVALID);
        }
        next = delta > 0 ? word + (uint64_t)delta : word - 1;
        if (atomic_compare_exchange_weak_explicit(e, &word, next, memory_order_acq_rel,
                                                  memory_order_relaxed)) {
            return RTS_OFFSETS_DONE;
        }
    }
}

enum rts_offsets_result rts_offsets_hold(struct rts_offsets *o, uint64_t token, unsigned n)
{
    if (n == 0) {
        return RTS_OFFSETS_DONE;
    }
    if (n > RTS_OFFSETS_MAX_HOLDS) {
        return ignored(o, RTS_OFFSETS_INVALID);
    }
    return change(o, token, (int64_t)n);
}

enum rts_offsets_result rts_offsets_release(struct rts_offsets *o, uint64_t token)
{
    return change(o, token, -1);
}

void rts_offsets_stats(const struct rts_offsets *o, struct rts_offsets_stats *st)
{
    st->stale = atomic_load_explicit(&o->stale, memory_order_relaxed);
    st->invalid = atomic_load_explicit(&o->invalid, memory_order_relaxed);
}
