/*
 * state.h - the keyed state table of one worker: key -> fixed-size value block.
 *
 * Every entry (key bytes inline, its value block, LRU links) lives in one slab
 * of max_keys entries reserved at creation; an open-addressing index (linear
 * probing, a power of two >= 2 * max_keys slots, load <= 1/2) maps a key to its
 * entry. Removal uses backward-shift deletion, so probe sequences stay valid
 * without tombstones. Keys are ordered by last access in an intrusive doubly
 * linked list: the tail is the least recently seen key, evicted when the table
 * is full and expired first when its event time is older than the newest time
 * seen minus the TTL. Entries never move: a value block pointer stays valid
 * until its key is dropped.
 *
 * Memory is reserved with mmap(MAP_NORESERVE) and committed as keys arrive;
 * after rts_state_new nothing is allocated. Every operation on the event path
 * is O(1) (expected, for the index).
 *
 * Thread: a table belongs to one worker thread; rts_state_stats may be called
 * from any thread (relaxed atomic reads of single-writer counters).
 */
#ifndef RTS_FEATURE_STATE_H
#define RTS_FEATURE_STATE_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

#define RTS_STATE_MAX_KEYS (1ULL << 31)
#define RTS_STATE_MAX_KEY_LEN 65536u
#define RTS_STATE_MAX_VALUE (1u << 24)

struct rts_state_table;

/* Prefetch what rts_state_get(@hash) will touch, in stages issued some
 * events ahead: stage 0 loads the index slot; stage 1 (given stage 0 done)
 * the entry and the first half of its value; stage 2 (given stage 1 done)
 * its LRU neighbours and the rest of the value. Only hints: reads, never
 * writes, never blocks on a miss it did not ask for earlier. */
void rts_state_prefetch(const struct rts_state_table *t, uint64_t hash, int stage);

/* Commit, without touching their contents, up to @chunk bytes of what new
 * keys will take next: the slab pages of the next @ahead entries, then the
 * index. Returns 1 if it committed some (call again), 0 when there is
 * nothing left to do. Thread: any, also the owner and several at once
 * (core/populate.h): page faults then happen there, or in the owner's idle
 * time, not on the per-event path. A no-op where the kernel lacks
 * MADV_POPULATE_WRITE (before Linux 5.14). */
int rts_state_prefault(struct rts_state_table *t, size_t ahead, size_t chunk);

struct rts_state_stats {
    uint64_t keys, evicted, expired; /* keys live; dropped when full; dropped by TTL */
    size_t entry_bytes;              /* slab bytes per key: 32 header, max_key_len, value */
    size_t bytes_committed;          /* upper bound of memory touched: index + slab high water */
};

/* Up to @max_keys (1 .. RTS_STATE_MAX_KEYS) keys of up to @max_key_len bytes
 * (1 .. RTS_STATE_MAX_KEY_LEN), each with a value block of @value_size bytes
 * (rounded up to 8; 8-aligned; zeroed when a key is new). Keys not seen for
 * @ttl_ms of event time (0 = never) expire. Reserves all memory here (lazily
 * committed). Returns NULL with @eb filled (INVAL, NOMEM). Thread: any. */
struct rts_state_table *rts_state_new(uint64_t max_keys, uint32_t max_key_len, size_t value_size,
                                      int64_t ttl_ms, struct rts_errbuf *eb)
    __attribute__((warn_unused_result));

/* @fn(@ctx, value) is called with a key's value block just before the key is
 * dropped (evicted or expired), e.g. to return HLL sketches to their pool. It
 * must not call back into the table. rts_state_free does not call it. */
void rts_state_set_drop(struct rts_state_table *t, void (*fn)(void *ctx, void *value), void *ctx);

/* Find or create the entry of @key (@len bytes, hashed by the caller to @hash,
 * e.g. the routing hash) at event time @ts_ms, and mark it most recently seen.
 * *is_new = 1 for a new key (value zeroed), also when the old entry had
 * expired (dropped, counted and recreated). When full, the least recently seen
 * key is evicted. Each call first expires at most 2 keys at the LRU tail whose
 * last-seen time is older than (newest time seen - ttl). A key's last-seen
 * time is the newest event time it was seen at. Returns the value block, NULL
 * only if @len > max_key_len. O(1) expected. */
void *rts_state_get(struct rts_state_table *t, const char *key, uint32_t len, uint64_t hash,
                    int64_t ts_ms, int *is_new);

void rts_state_stats(const struct rts_state_table *t, struct rts_state_stats *out);

/* Unmaps everything; NULL is a no-op. Does not call the drop callback. */
void rts_state_free(struct rts_state_table *t);

#endif /* RTS_FEATURE_STATE_H */
