/*
 * ring.c - the SPSC byte-record ring of ring.h.
 *
 * Indexes are free-running uint64 byte counters (they never wrap in practice:
 * 2^64 bytes); the buffer offset is index & mask. head is written only by the
 * producer, tail only by the consumer; each side keeps a private copy of the
 * other's index and reloads it only when its copy says full (producer) or
 * empty (consumer), so in steady state each record costs one store per side
 * and no cache-line ping-pong. Record counts (nin, nout) follow the same rule.
 *
 * Record layout at offset p: a uint64 header (payload length, or RING_PAD for
 * "skip to the end of the buffer"), then the payload, padded to 8 bytes. A pad
 * header is only ever published together with the record that follows it at
 * offset 0, so the consumer never finds a pad without a record behind it.
 *
 * Sleeping. Each side has a futex word on a third cache line (read-mostly:
 * written only when someone goes to sleep): cons_wait and prod_wait, 1 while
 * that side is (about to be) asleep. The protocol for the consumer, and the
 * same for the producer with tail/nout and its wanted space:
 *
 *   consumer (waiting)                       producer (commit)
 *   C1 cons_wait = 1                         P1 head = new head (release)
 *   C2 fence(seq_cst)                        P2 fence(seq_cst)
 *   C3 if head != tail: cons_wait = 0, done  P3 if cons_wait and
 *   C4 futex_wait(&cons_wait, 1)                  exchange(cons_wait, 0) == 1:
 *   C5 loop to C1                                 futex_wake(&cons_wait)
 *
 * No lost wakeup. The two seq_cst fences are totally ordered. If C2 comes
 * before P2, then P3 (after P2) reads the value stored at C1 (before C2) or a
 * later one, so the producer sees the flag and wakes the consumer. If P2 comes
 * before C2, then C3 (after C2) reads the head stored at P1 (or later) and the
 * consumer does not sleep. Either way a consumer never sleeps through a
 * record. The wake itself cannot be lost either: the producer clears the flag
 * before futex_wake, and futex_wait(&cons_wait, 1) atomically checks the word
 * in the kernel, so if the clear lands before C4 the wait returns at once
 * (EAGAIN), and if after, the consumer is already queued and gets woken. A
 * wake that finds the consumer no longer waiting (it saw the record itself)
 * costs a spurious return and a re-check, nothing more.
 *
 * No syscall unless someone sleeps: P3 is a plain load of a cache line that
 * nobody writes in steady state; only a flag seen set leads to the exchange
 * and the futex_wake. For the producer, the consumer also checks that the
 * space the producer asked for (want_tail, want_nout, published before
 * prod_wait = 1 with release, read after it with acquire) is now free, so a
 * producer waiting for a large record is not woken at every small release.
 * This keeps the proof: the wanted space depends only on head, which does not
 * move while the producer waits, and "fits" is monotonic in tail and nout; a
 * consumer that reads an older want is covered by the case analysis above
 * (it can only read an older flag/want if C2-equivalent came before P2, in
 * which case the producer's re-check sees the space).
 */
#include "core/ring.h"

#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "core/clock.h"

#define RING_LINE 64
#define RING_HDR 8u
#define RING_PAD UINT64_MAX
#define RING_MIN_BYTES 64u
#define RING_MAX_BYTES (UINT64_C(1) << 40)

struct rts_ring {
    /* Read-only after rts_ring_new. */
    unsigned char *buf;
    uint64_t cap, mask;
    uint64_t max_records; /* never 0 */
    uint64_t max_n;       /* cap / 2 */

    /* Producer's line: written by the producer, read by the consumer only
     * when its cached head says empty. */
    alignas(RING_LINE) _Atomic uint64_t head;
    _Atomic uint64_t nin;
    uint64_t tail_seen, nout_seen;     /* producer's copies of tail and nout */
    uint64_t res_at, res_pad, res_max; /* the outstanding reservation */
    int res_ok;

    /* Consumer's line. */
    alignas(RING_LINE) _Atomic uint64_t tail;
    _Atomic uint64_t nout;
    uint64_t head_seen; /* consumer's copy of head */
    uint64_t peek_size; /* bytes (header included) of the peeked record, 0 if none */

    /* Sleep line: read on every commit/release, written only around sleeps. */
    alignas(RING_LINE) atomic_uint cons_wait;
    atomic_uint prod_wait;
    _Atomic uint64_t want_tail, want_nout;
    atomic_int closed;
};

static uint64_t round8(uint64_t n)
{
    return (n + 7u) & ~(uint64_t)7u;
}

static int futex_wait(atomic_uint *word, unsigned val, int64_t timeout_ns)
{
    struct timespec ts, *tp = NULL;

    if (timeout_ns >= 0) {
        ts.tv_sec = (time_t)(timeout_ns / 1000000000);
        ts.tv_nsec = (long)(timeout_ns % 1000000000);
        tp = &ts;
    }
    /* The relative timeout of FUTEX_WAIT runs on CLOCK_MONOTONIC. */
    return (int)syscall(SYS_futex, (unsigned *)(void *)word, FUTEX_WAIT_PRIVATE, val, tp, NULL, 0);
}

static void futex_wake(atomic_uint *word)
{
    syscall(SYS_futex, (unsigned *)(void *)word, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}

/* Remaining time of a wait that ends at @deadline (0: forever): -1 forever,
 * 0 expired, else nanoseconds. */
static int64_t remaining(uint64_t deadline)
{
    uint64_t now;

    if (!deadline) {
        return -1;
    }
    now = rts_now_ns();
    return now >= deadline ? 0 : (int64_t)(deadline - now);
}

static uint64_t deadline_of(int64_t timeout_ns)
{
    return timeout_ns < 0 ? 0 : rts_now_ns() + (uint64_t)timeout_ns + 1;
}

struct rts_ring *rts_ring_new(size_t bytes, size_t max_records, struct rts_errbuf *eb)
{
    struct rts_ring *r;
    uint64_t cap = RING_MIN_BYTES;

    if ((uint64_t)bytes > RING_MAX_BYTES) {
        rts_errf(eb, RTS_ERR_INVAL, 0, 0, "ring of %zu bytes: at most 2^40", bytes);
        return NULL;
    }
    while (cap < bytes) {
        cap <<= 1;
    }
    r = aligned_alloc(RING_LINE, sizeof(*r));
    if (!r) {
        rts_errf(eb, RTS_ERR_NOMEM, 0, 0, "ring: out of memory");
        return NULL;
    }
    memset(r, 0, sizeof(*r));
    r->buf = aligned_alloc(RING_LINE, (size_t)cap);
    if (!r->buf) {
        free(r);
        rts_errf(eb, RTS_ERR_NOMEM, 0, 0, "ring of %llu bytes: out of memory",
                 (unsigned long long)cap);
        return NULL;
    }
    r->cap = cap;
    r->mask = cap - 1;
    r->max_n = cap / 2;
    /* Every record takes at least 8 bytes: cap / 8 never binds. */
    r->max_records = max_records && max_records < cap / RING_HDR ? max_records : cap / RING_HDR;
    atomic_init(&r->head, 0);
    atomic_init(&r->nin, 0);
    atomic_init(&r->tail, 0);
    atomic_init(&r->nout, 0);
    atomic_init(&r->cons_wait, 0);
    atomic_init(&r->prod_wait, 0);
    atomic_init(&r->want_tail, 0);
    atomic_init(&r->want_nout, 0);
    atomic_init(&r->closed, 0);
    return r;
}

void rts_ring_free(struct rts_ring *r)
{
    if (!r) {
        return;
    }
    free(r->buf);
    free(r);
}

size_t rts_ring_capacity(const struct rts_ring *r)
{
    return (size_t)r->cap;
}

/* Producer: where a record of @need bytes (header included) would go from
 * @head: *pad gets the bytes skipped to the end of the buffer; returns the
 * index one past the record. */
static uint64_t prod_place(const struct rts_ring *r, uint64_t head, uint64_t need, uint64_t *pad)
{
    uint64_t to_end = r->cap - (head & r->mask);

    *pad = need <= to_end ? 0 : to_end;
    return head + *pad + need;
}

/* Producer: does a record ending at @end fit, given the consumer's progress
 * as last seen? Reloads tail/nout only if the cached copies say no. */
static int prod_fits(struct rts_ring *r, uint64_t end, uint64_t nin)
{
    if (end - r->tail_seen <= r->cap && nin - r->nout_seen < r->max_records) {
        return 1;
    }
    r->tail_seen = atomic_load_explicit(&r->tail, memory_order_acquire);
    r->nout_seen = atomic_load_explicit(&r->nout, memory_order_acquire);
    return end - r->tail_seen <= r->cap && nin - r->nout_seen < r->max_records;
}

void *rts_ring_reserve(struct rts_ring *r, size_t n)
{
    uint64_t head, nin, pad, end;

    r->res_ok = 0;
    if ((uint64_t)n > r->max_n) {
        return NULL;
    }
    head = atomic_load_explicit(&r->head, memory_order_relaxed);
    nin = atomic_load_explicit(&r->nin, memory_order_relaxed);
    end = prod_place(r, head, RING_HDR + round8(n), &pad);
    if (!prod_fits(r, end, nin)) {
        return NULL;
    }
    r->res_at = head + pad;
    r->res_pad = pad;
    r->res_max = n;
    r->res_ok = 1;
    return r->buf + ((r->res_at + RING_HDR) & r->mask);
}

/* After publishing: wake the consumer if (and only if) it sleeps. */
static void wake_consumer(struct rts_ring *r)
{
    atomic_thread_fence(memory_order_seq_cst);
    if (atomic_load_explicit(&r->cons_wait, memory_order_relaxed) &&
        atomic_exchange_explicit(&r->cons_wait, 0, memory_order_relaxed)) {
        futex_wake(&r->cons_wait);
    }
}

void rts_ring_commit(struct rts_ring *r, size_t n)
{
    uint64_t head, hdr = (uint64_t)n;

    if (!r->res_ok) {
        return;
    }
    r->res_ok = 0;
    if (hdr > r->res_max) {
        hdr = r->res_max;
    }
    if (r->res_pad) {
        uint64_t pad = RING_PAD;

        head = atomic_load_explicit(&r->head, memory_order_relaxed);
        memcpy(r->buf + (head & r->mask), &pad, sizeof(pad));
    }
    memcpy(r->buf + (r->res_at & r->mask), &hdr, sizeof(hdr));
    atomic_store_explicit(&r->nin, atomic_load_explicit(&r->nin, memory_order_relaxed) + 1,
                          memory_order_relaxed);
    /* The release store publishes header, payload and nin together. */
    atomic_store_explicit(&r->head, r->res_at + RING_HDR + round8(hdr), memory_order_release);
    wake_consumer(r);
}

/* After freeing space: wake the producer if it sleeps and what it waits for
 * now fits. @tail and @nout are the values this consumer just stored. */
static void wake_producer(struct rts_ring *r, uint64_t tail, uint64_t nout)
{
    atomic_thread_fence(memory_order_seq_cst);
    if (!atomic_load_explicit(&r->prod_wait, memory_order_acquire)) {
        return;
    }
    if ((int64_t)(tail - atomic_load_explicit(&r->want_tail, memory_order_relaxed)) < 0 ||
        (int64_t)(nout - atomic_load_explicit(&r->want_nout, memory_order_relaxed)) < 0) {
        return; /* still does not fit: a later release will look again */
    }
    if (atomic_exchange_explicit(&r->prod_wait, 0, memory_order_relaxed)) {
        futex_wake(&r->prod_wait);
    }
}

const void *rts_ring_peek(struct rts_ring *r, size_t *n)
{
    uint64_t tail = atomic_load_explicit(&r->tail, memory_order_relaxed);
    uint64_t hdr;

    if (tail == r->head_seen) {
        r->head_seen = atomic_load_explicit(&r->head, memory_order_acquire);
        if (tail == r->head_seen) {
            r->peek_size = 0;
            return NULL;
        }
    }
    memcpy(&hdr, r->buf + (tail & r->mask), sizeof(hdr));
    if (hdr == RING_PAD) {
        /* Skip to the start of the buffer; the record behind the pad was
         * published with it. Free the gap at once. */
        tail += r->cap - (tail & r->mask);
        atomic_store_explicit(&r->tail, tail, memory_order_release);
        wake_producer(r, tail, atomic_load_explicit(&r->nout, memory_order_relaxed));
        memcpy(&hdr, r->buf + (tail & r->mask), sizeof(hdr));
    }
    r->peek_size = RING_HDR + round8(hdr);
    *n = (size_t)hdr;
    return r->buf + ((tail + RING_HDR) & r->mask);
}

const void *rts_ring_peek_next(struct rts_ring *r, const void *prev, size_t *n)
{
    uint64_t tail = atomic_load_explicit(&r->tail, memory_order_relaxed);
    uint64_t off = (uint64_t)((const unsigned char *)prev - r->buf) - RING_HDR, hdr, at;

    /* absolute position of @prev: at or after tail, within one lap */
    at = tail + ((off - (tail & r->mask)) & r->mask);
    memcpy(&hdr, r->buf + (at & r->mask), sizeof(hdr));
    at += RING_HDR + round8(hdr);
    if (at == r->head_seen) {
        r->head_seen = atomic_load_explicit(&r->head, memory_order_acquire);
        if (at == r->head_seen) {
            return NULL;
        }
    }
    memcpy(&hdr, r->buf + (at & r->mask), sizeof(hdr));
    if (hdr == RING_PAD) {
        at += r->cap - (at & r->mask); /* published together with the record after it */
        memcpy(&hdr, r->buf + (at & r->mask), sizeof(hdr));
    }
    *n = (size_t)hdr;
    return r->buf + ((at + RING_HDR) & r->mask);
}

void rts_ring_release(struct rts_ring *r)
{
    uint64_t tail, nout;

    if (!r->peek_size) {
        return;
    }
    tail = atomic_load_explicit(&r->tail, memory_order_relaxed) + r->peek_size;
    nout = atomic_load_explicit(&r->nout, memory_order_relaxed) + 1;
    r->peek_size = 0;
    atomic_store_explicit(&r->nout, nout, memory_order_release);
    atomic_store_explicit(&r->tail, tail, memory_order_release);
    wake_producer(r, tail, nout);
}

size_t rts_ring_count(const struct rts_ring *r)
{
    /* nout first: nin only grows, so the difference is never negative. */
    uint64_t nout = atomic_load_explicit(&r->nout, memory_order_acquire);
    uint64_t nin = atomic_load_explicit(&r->nin, memory_order_acquire);

    return nin >= nout ? (size_t)(nin - nout) : 0;
}

int rts_ring_wait_writable(struct rts_ring *r, size_t n, int64_t timeout_ns)
{
    uint64_t head, nin, pad, end, deadline = 0;
    int64_t left;

    if ((uint64_t)n > r->max_n) {
        return 0;
    }
    head = atomic_load_explicit(&r->head, memory_order_relaxed);
    nin = atomic_load_explicit(&r->nin, memory_order_relaxed);
    end = prod_place(r, head, RING_HDR + round8(n), &pad);
    if (prod_fits(r, end, nin)) {
        return 1;
    }
    if (timeout_ns == 0) {
        return 0;
    }
    deadline = deadline_of(timeout_ns);
    atomic_store_explicit(&r->want_tail, end - r->cap, memory_order_relaxed);
    atomic_store_explicit(&r->want_nout, nin + 1 - r->max_records, memory_order_relaxed);
    for (;;) {
        atomic_store_explicit(&r->prod_wait, 1, memory_order_release);
        atomic_thread_fence(memory_order_seq_cst);
        if (prod_fits(r, end, nin)) {
            break;
        }
        left = remaining(deadline);
        if (left == 0) {
            break;
        }
        futex_wait(&r->prod_wait, 1, left);
    }
    atomic_store_explicit(&r->prod_wait, 0, memory_order_relaxed);
    return prod_fits(r, end, nin);
}

/* Consumer: a record is there, or the stream has ended. */
static int cons_ready(struct rts_ring *r, uint64_t tail)
{
    if (tail != r->head_seen) {
        return 1;
    }
    if (atomic_load_explicit(&r->closed, memory_order_acquire)) {
        r->head_seen = atomic_load_explicit(&r->head, memory_order_acquire);
        return 1;
    }
    r->head_seen = atomic_load_explicit(&r->head, memory_order_acquire);
    return tail != r->head_seen;
}

int rts_ring_wait_readable(struct rts_ring *r, int64_t timeout_ns)
{
    uint64_t tail = atomic_load_explicit(&r->tail, memory_order_relaxed), deadline;
    int64_t left;

    if (cons_ready(r, tail) || timeout_ns == 0) {
        return tail != r->head_seen;
    }
    deadline = deadline_of(timeout_ns);
    for (;;) {
        atomic_store_explicit(&r->cons_wait, 1, memory_order_relaxed);
        atomic_thread_fence(memory_order_seq_cst);
        if (cons_ready(r, tail)) {
            break;
        }
        left = remaining(deadline);
        if (left == 0) {
            break;
        }
        futex_wait(&r->cons_wait, 1, left);
    }
    atomic_store_explicit(&r->cons_wait, 0, memory_order_relaxed);
    return tail != r->head_seen;
}

void rts_ring_close(struct rts_ring *r)
{
    atomic_store_explicit(&r->closed, 1, memory_order_release);
    wake_consumer(r);
}

int rts_ring_closed(const struct rts_ring *r)
{
    /* closed first: its acquire makes every commit before close visible. */
    if (!atomic_load_explicit(&r->closed, memory_order_acquire)) {
        return 0;
    }
    return atomic_load_explicit(&r->head, memory_order_acquire) ==
           atomic_load_explicit(&r->tail, memory_order_acquire);
}
