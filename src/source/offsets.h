/*
 * offsets.h - which source offsets may be committed: the tracker behind the
 * acknowledgement protocol of source.h (tokens, hold, release).
 *
 * A tracker has a fixed number of partition slots, each a ring of at most
 * max_inflight messages. The source thread assigns a slot when it gets a
 * partition, tracks every message it delivers (partition slot, offset) and
 * gets back a non-zero token holding the message once. Any thread may add
 * holds to a token it owns a hold on, and release holds, without locks. Per
 * slot, the committable position is the offset after the longest prefix of
 * tracked messages that have no hold left: workers finish out of order, but
 * a partition's commits only move forward over finished messages.
 *
 * A slot whose ring is full tracks nothing more (rts_offsets_track returns
 * 0); the source must stop reading that partition until it drains.
 *
 * Tokens stay safe after a partition is revoked: a token carries its slot and
 * a per-slot sequence number that is never reused, even when the slot is
 * revoked and assigned again (the sequence number is the token's generation).
 * Each ring entry stores the holds and the sequence number together in one
 * 64-bit word, changed only by compare-and-swap, so a hold or release of a
 * token whose entry has been forgotten or reused is detected and ignored.
 *
 * Token layout: bits 63..48 slot + 1 (so a token is never 0), bits 47..0 the
 * low 48 bits of the sequence number. A sequence number is not reused before
 * 2^48 messages of the same slot.
 *
 * Thread: hold, release and stats from any thread; everything else from the
 * one source thread, which owns the tracker.
 */
#ifndef RTS_SOURCE_OFFSETS_H
#define RTS_SOURCE_OFFSETS_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

#define RTS_OFFSETS_MAX_SLOTS 65535u           /* slot + 1 fits in 16 bits */
#define RTS_OFFSETS_MAX_INFLIGHT (1u << 24)    /* messages per slot */
#define RTS_OFFSETS_MAX_HOLDS ((1u << 24) - 1) /* holds per message */

struct rts_offsets;

/* What a hold or release did. */
enum rts_offsets_result {
    RTS_OFFSETS_DONE,    /* applied */
    RTS_OFFSETS_STALE,   /* the token's partition was revoked (or reassigned) since: ignored */
    RTS_OFFSETS_INVALID, /* not a token of this tracker, a release with no hold left, a hold
                            without one, or too many holds: ignored and counted (a caller bug) */
};

struct rts_offsets_stats {
    uint64_t stale;   /* holds and releases of revoked tokens, ignored */
    uint64_t invalid; /* RTS_OFFSETS_INVALID results */
};

/* A tracker of @max_slots partitions (1..RTS_OFFSETS_MAX_SLOTS) with at most
 * @max_inflight (1..RTS_OFFSETS_MAX_INFLIGHT) tracked and not yet committable
 * messages each. A slot's ring is allocated when the slot is first assigned
 * (16 bytes per message, rounded up to a power of two) and kept for reuse
 * until rts_offsets_free. Returns NULL with @eb filled (INVAL, NOMEM). */
struct rts_offsets *rts_offsets_new(uint32_t max_slots, uint32_t max_inflight,
                                    struct rts_errbuf *eb) __attribute__((warn_unused_result));

/* NULL is a no-op. No other thread may use the tracker any more. */
void rts_offsets_free(struct rts_offsets *o);

/* Take a free slot for a newly assigned partition. Returns the slot
 * (0..max_slots-1), or -1 with @eb filled: RTS_ERR_LIMIT when every slot is
 * assigned, RTS_ERR_NOMEM. The slot starts empty: nothing tracked, nothing
 * committable. Source thread. */
int rts_offsets_assign(struct rts_offsets *o, struct rts_errbuf *eb);

/* Forget @slot's partition: every token of it becomes stale, and the slot is
 * free for another assign. Commit rts_offsets_committable() first if wanted.
 * Source thread. A slot that is not assigned is a no-op. */
void rts_offsets_revoke(struct rts_offsets *o, int slot);

/* Track a delivered message at @offset of @slot's partition (offsets must
 * increase within a slot). Returns its token, holding the message once, or 0
 * when the slot is full or not assigned (the message is not tracked).
 * Source thread; never allocates. */
uint64_t rts_offsets_track(struct rts_offsets *o, int slot, int64_t offset);

/* The position to commit for @slot: the offset after the last message of the
 * longest prefix of tracked messages with no hold left; -1 when no message of
 * this assignment has finished yet. Never moves backwards within one
 * assignment. Source thread. */
int64_t rts_offsets_committable(struct rts_offsets *o, int slot);

/* Tracked messages of @slot not yet part of the committable prefix. */
uint32_t rts_offsets_inflight(struct rts_offsets *o, int slot);

/* 1 when @slot is assigned and has max_inflight messages in flight:
 * rts_offsets_track would return 0. Source thread. */
int rts_offsets_full(struct rts_offsets *o, int slot);

/* Add @n holds to @token. The caller must own a hold on it (so the message
 * cannot finish meanwhile): adding holds to a finished message is INVALID.
 * Any thread, lock-free. */
enum rts_offsets_result rts_offsets_hold(struct rts_offsets *o, uint64_t token, unsigned n);

/* Release one hold of @token. When the last hold goes, the message is
 * finished. Any thread, lock-free. */
enum rts_offsets_result rts_offsets_release(struct rts_offsets *o, uint64_t token);

/* The slot a token belongs to, or -1 for 0 / a malformed token. */
int rts_offsets_token_slot(uint64_t token);

/* Counters of ignored holds and releases. Any thread. */
void rts_offsets_stats(const struct rts_offsets *o, struct rts_offsets_stats *st);

#endif /* RTS_SOURCE_OFFSETS_H */
