/*
 * ring.h - a bounded single-producer single-consumer queue of variable-size
 * byte records: the queues between the source thread and the workers, and
 * between the workers and the sinks.
 *
 * Records live in one power-of-two byte buffer, each behind an 8-byte header
 * and padded to 8 bytes, so every record starts 8-aligned and is contiguous: a
 * record that does not fit before the end of the buffer is placed at the
 * start and the gap is skipped with a pad marker. The ring is bounded twice,
 * in bytes and in records; a record may be at most half the buffer, so it
 * always fits once the ring drains.
 *
 * Exactly one producer thread and one consumer thread. The fast path is lock
 * free (C11 acquire/release on the two indexes, which sit on separate cache
 * lines). Blocking waits sleep on a futex and make a system call only when the
 * other side is actually asleep (see the proof in ring.c).
 */
#ifndef RTS_CORE_RING_H
#define RTS_CORE_RING_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

struct rts_ring;

/* A ring of @bytes (rounded up to a power of two, at least 64) holding at
 * most @max_records records (0: limited by bytes only). Returns NULL with @eb
 * filled (RTS_ERR_INVAL for a size beyond 2^40, RTS_ERR_NOMEM). The caller
 * owns the ring. Thread: any, before the producer and consumer start. */
struct rts_ring *rts_ring_new(size_t bytes, size_t max_records, struct rts_errbuf *eb)
    __attribute__((warn_unused_result));
void rts_ring_free(struct rts_ring *r); /* NULL is a no-op; both sides must have stopped */

/* Producer: reserve @n bytes for one record, 8-aligned and contiguous. Returns
 * NULL if it does not fit now (bytes or records full) or never can
 * (@n > capacity / 2). At most one reservation is outstanding: the next call
 * replaces it. Never blocks. */
void *rts_ring_reserve(struct rts_ring *r, size_t n);

/* Producer: publish the reserved record with its final size @n (<= the
 * reserved size; larger is clamped). Wakes the consumer if it sleeps.
 * A no-op without a reservation. */
void rts_ring_commit(struct rts_ring *r, size_t n);

/* Consumer: the oldest record and its size in *@n, or NULL if the ring is
 * empty. Repeated calls return the same record until rts_ring_release(). The
 * bytes stay valid and unchanged until then. Never blocks. */
const void *rts_ring_peek(struct rts_ring *r, size_t *n);

/* Consumer: the record published after @prev (a pointer rts_ring_peek() or
 * this function returned, not yet released), or NULL if there is none yet.
 * For looking ahead (prefetching); release still drops the oldest record.
 * Never blocks. */
const void *rts_ring_peek_next(struct rts_ring *r, const void *prev, size_t *n);

/* Consumer: drop the record rts_ring_peek() returned (a no-op if none); wakes
 * the producer if it sleeps waiting for the space now free. */
void rts_ring_release(struct rts_ring *r);

/* Records queued (committed, not released). Any thread; exact when called by
 * either side with the other idle, a snapshot otherwise. */
size_t rts_ring_count(const struct rts_ring *r);
size_t rts_ring_capacity(const struct rts_ring *r); /* bytes, after rounding */

/* Producer: block until a record of @n bytes fits (1) or @timeout_ns passes
 * (0). @timeout_ns < 0 waits forever, 0 only checks. Returns 0 at once if @n
 * can never fit (> capacity / 2). Call it without an outstanding
 * reservation; a following rts_ring_reserve(r, n) then succeeds. */
int rts_ring_wait_writable(struct rts_ring *r, size_t n, int64_t timeout_ns);

/* Consumer: block until a record is available (1), or the ring is closed and
 * empty, or @timeout_ns passes (0). @timeout_ns < 0 waits forever. After 0,
 * rts_ring_closed() tells end of stream from timeout. */
int rts_ring_wait_readable(struct rts_ring *r, int64_t timeout_ns);

/* Producer: no more records; wakes the consumer. Records already committed
 * are still delivered. */
void rts_ring_close(struct rts_ring *r);

/* Consumer (or any thread): 1 if closed and every record has been released. */
int rts_ring_closed(const struct rts_ring *r);

#endif /* RTS_CORE_RING_H */
