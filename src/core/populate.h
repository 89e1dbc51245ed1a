/*
 * populate.h - commit reserved memory ahead of use, in small steps, from
 * any thread.
 *
 * The state table and the sketch pools reserve their address space at start
 * (MAP_NORESERVE) and the kernel commits a page at its first write: a page
 * fault on the per-event path, costly in a VM. A prefaulter commits the
 * pages the owner will take next with madvise(MADV_POPULATE_WRITE), which
 * maps them in without touching their contents, so the owner may write
 * meanwhile. Several threads may step one region: each step claims its
 * range with a compare-and-swap, so no page is populated twice and no step
 * waits for another.
 *
 * Thread: any, for rts_populate_step; a region is set up before it is
 * shared.
 */
#ifndef RTS_CORE_POPULATE_H
#define RTS_CORE_POPULATE_H

#include <stddef.h>
#include <sys/mman.h>

#define RTS_POPULATE_PAGE 4096u

struct rts_populate {
    size_t ready; /* [0, ready) is committed or claimed (atomic) */
    int off;      /* the kernel cannot (before Linux 5.14) (atomic) */
};

/* Commit up to @chunk bytes of [ready, @to) of @base (@to rounded up to a
 * page). Returns 1 if it committed or lost a claim to another thread (call
 * again), 0 when nothing is left or the kernel cannot. */
static inline int rts_populate_step(struct rts_populate *r, unsigned char *base, size_t to,
                                    size_t chunk)
{
#ifdef MADV_POPULATE_WRITE
    size_t from = __atomic_load_n(&r->ready, __ATOMIC_RELAXED), end;

    to = (to + RTS_POPULATE_PAGE - 1) & ~(size_t)(RTS_POPULATE_PAGE - 1);
    if (to <= from || __atomic_load_n(&r->off, __ATOMIC_RELAXED)) {
        return 0;
    }
    end = to - from > chunk ? from + chunk : to;
    if (!__atomic_compare_exchange_n(&r->ready, &from, end, 0, __ATOMIC_RELAXED,
                                     __ATOMIC_RELAXED)) {
        return 1;
    }
    if (madvise(base + from, end - from, MADV_POPULATE_WRITE) != 0) {
        __atomic_store_n(&r->off, 1, __ATOMIC_RELAXED);
        return 0;
    }
    return 1;
#else
    (void)r;
    (void)base;
    (void)to;
    (void)chunk;
    return 0;
#endif
}

#endif
