/*
 * hash.h - the one hash function of the project (XXH3, 64 bit): key routing,
 * state tables, HyperLogLog. Stable across runs and machines, so routing and
 * sketches are reproducible.
 */
#ifndef RTS_CORE_HASH_H
#define RTS_CORE_HASH_H

#include <stddef.h>
#include <stdint.h>
#include <xxhash.h>

static inline uint64_t rts_hash64(const void *p, size_t n)
{
    return XXH3_64bits(p, n);
}

#endif /* RTS_CORE_HASH_H */
