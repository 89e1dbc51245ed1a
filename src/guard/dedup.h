/*
 * dedup.h - remember the event ids a worker has seen within a horizon, so
 * that events delivered twice (a source replaying after a crash, a producer
 * retrying) are scored once: the pipeline's `dedup: {horizon, max_ids}`.
 *
 * One instance per worker: the events of a key always reach the same worker,
 * so the instance is never shared and takes no lock. Its memory is fixed at
 * rts_dedup_new() from max_ids (rts_dedup_bytes() says how much: 23 to 34
 * bytes an id), written through there (no page faults later), and
 * rts_dedup_seen() never allocates.
 *
 * What it answers: rts_dedup_seen(d, h, now) is 1 when h was recorded less
 * than `horizon` before now (a repeat; the first sighting is not refreshed,
 * so a stream of repeats does not keep an id alive), else it records h at
 * now and returns 0. Ids are kept in arrival order: an id recorded at t
 * expires at t + horizon; when max_ids are held, recording one more evicts
 * the oldest first. Times are resolved to the millisecond. Every outcome is
 * counted (struct rts_dedup_stats).
 *
 * Ids are compared by a 64-bit hash (pass rts_hash64() of the id's bytes),
 * so two different ids whose hashes are equal look like one: a false
 * duplicate. With n ids held, a new id is taken for a repeat with
 * probability n / 2^64; over C checks about C * n / 2^64 events are wrongly
 * dropped: with 10 million ids held and 100,000 checks a second, about 2
 * events a year out of 3 trillion (a share of 5e-13). Hash 0 is stored as 1
 * (twice that chance for those two values only). A repeat is never missed
 * while its id is within the horizon and has not been evicted.
 *
 * Time is passed in, never read: microseconds on a clock that does not go
 * back (an earlier time is taken as the latest time seen). Use the wall clock
 * (ingest time) if the state is saved across restarts (rts_dedup_save).
 *
 * Threads: everything but rts_dedup_stats() is for the owning worker only
 * (or any one thread while the worker is stopped). rts_dedup_stats() may be
 * called from any thread at any time (the counters are atomic).
 */
#ifndef RTS_GUARD_DEDUP_H
#define RTS_GUARD_DEDUP_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

#define RTS_DEDUP_MAX_IDS (UINT64_C(1) << 31)
#define RTS_DEDUP_MAX_HORIZON_US (INT64_C(24) * 86400 * 1000000) /* 24 days */

struct rts_dedup;
struct rts_buf;

struct rts_dedup_stats {
    uint64_t checks;     /* rts_dedup_seen() calls */
    uint64_t duplicates; /* of those, repeats within the horizon (returned 1) */
    uint64_t expired;    /* ids forgotten because their horizon passed */
    uint64_t evicted;    /* ids forgotten early because max_ids were held */
    uint64_t held;       /* ids held now */
    uint64_t capacity;   /* max_ids */
};

/* An empty set for @max_ids ids (1..RTS_DEDUP_MAX_IDS) remembered for
 * @horizon_us (1 ms..RTS_DEDUP_MAX_HORIZON_US). Allocates all its memory
 * here. NULL with @eb filled (RTS_ERR_INVAL naming the bad value,
 * RTS_ERR_NOMEM with the size). The caller owns it. Thread: any. */
struct rts_dedup *rts_dedup_new(int64_t horizon_us, uint64_t max_ids, struct rts_errbuf *eb)
    __attribute__((warn_unused_result));
void rts_dedup_free(struct rts_dedup *d); /* NULL is a no-op */

/* Bytes an instance for @max_ids takes (for `rtscore check` and the docs). */
size_t rts_dedup_bytes(uint64_t max_ids);

/* 1 if @id_hash was recorded less than the horizon before @now_us (counted
 * as a duplicate), else 0 after recording it at @now_us. Expires what the
 * horizon has passed and, when full, evicts the oldest id. Never allocates;
 * O(1) expected (after an idle longer than the horizon, one pass that empties
 * the set). Thread: the owner. */
int rts_dedup_seen(struct rts_dedup *d, uint64_t id_hash, int64_t now_us);

/* Start fetching the index slot of @id_hash into the cache, for a check a
 * few events later (with millions of ids a check is a cache miss or two;
 * a worker that prefetches the ids of its next queued events overlaps
 * them). Changes nothing. Thread: the owner. */
void rts_dedup_prefetch(const struct rts_dedup *d, uint64_t id_hash);

/* Forget every id (the counters stay). Thread: the owner. */
void rts_dedup_clear(struct rts_dedup *d);

/* Counters; each field is read atomically, the set is not a snapshot.
 * Thread: any. */
void rts_dedup_stats(const struct rts_dedup *d, struct rts_dedup_stats *out);

/* Append the ids held, oldest first, with their times, to @out (for a
 * checkpoint): a 32-byte header and 16 bytes an id, little endian. Returns
 * RTS_ERR_NOMEM if @out cannot grow. Thread: the owner. */
enum rts_err rts_dedup_save(const struct rts_dedup *d, struct rts_buf *out);

/* Replace the ids held with those saved in @data (@len bytes), with their
 * times and the clock as saved; if more were saved than max_ids, the oldest
 * are left out (counted as evicted), and ids older than @d's horizon at the
 * saved clock are counted as expired. Ids past the horizon at the next call's
 * time expire then, as usual. RTS_ERR_PARSE with @eb filled if @data is not a
 * whole save (then @d is empty). Never allocates. Thread: the owner. */
enum rts_err rts_dedup_restore(struct rts_dedup *d, const void *data, size_t len,
                               struct rts_errbuf *eb);

#endif /* RTS_GUARD_DEDUP_H */
