/*
 * hist.h - latency histograms with fixed log-linear buckets (HdrHistogram-like).
 *
 * Values are uint64 (nanoseconds for latencies). Values 0..31 have a bucket
 * each (exact); above, every power of two [2^e, 2^(e+1)) is split into 16
 * equal sub-buckets, so a bucket's width is at most 1/16 of any value in it.
 * The buckets cover the whole uint64 range: there is no overflow bucket and
 * nothing is clamped. The layout is fixed at compile time, so histograms of
 * different workers merge by adding bucket counts.
 *
 * Threads: one writer (the worker that owns the histogram) calls
 * rts_hist_add(); any other thread may read it through rts_hist_merge() at the
 * same time. The writer uses relaxed atomic loads and stores (no read-modify-
 * write, no lock: plain moves on x86-64 and arm64); readers use relaxed atomic
 * loads. A reader may see a value counted in its bucket but not yet in sum or
 * max (or the reverse); merge repairs count and max so that a merged copy is
 * self-consistent (see rts_hist_merge). A zeroed struct rts_hist is empty.
 */
#ifndef RTS_CORE_HIST_H
#define RTS_CORE_HIST_H

#include <stddef.h>
#include <stdint.h>

#define RTS_HIST_SUB_BITS 4  /* 16 sub-buckets per power of two */
#define RTS_HIST_BUCKETS 976 /* 32 exact + 16 * (64 - 5) log-linear */

struct rts_hist {
    uint64_t count; /* values added */
    uint64_t sum;   /* their sum, modulo 2^64 */
    uint64_t max;   /* the largest value added, 0 if empty */
    uint64_t b[RTS_HIST_BUCKETS];
};

/* The bucket index of @v: v itself below 32, then 16 per power of two.
 * Pure; any thread. */
static inline size_t rts_hist_bucket_of(uint64_t v)
{
    /* v | 31 makes the exponent at least 4, where the shift is 0 and the
     * index is v itself: no branch for the exact range. */
    unsigned e = 63u - (unsigned)__builtin_clzll(v | 31u);
    unsigned s = e - RTS_HIST_SUB_BITS;

    return ((size_t)s << RTS_HIST_SUB_BITS) + (size_t)(v >> s);
}

/* Count @v. Writer thread only (the histogram's owner); a few ns, no lock. */
static inline void rts_hist_add(struct rts_hist *h, uint64_t v)
{
    uint64_t *bp = &h->b[rts_hist_bucket_of(v)];

    /* Single writer: load + store is an increment nobody else can race with;
     * the atomics only make the concurrent readers' loads well defined. */
    __atomic_store_n(bp, __atomic_load_n(bp, __ATOMIC_RELAXED) + 1, __ATOMIC_RELAXED);
    __atomic_store_n(&h->count, __atomic_load_n(&h->count, __ATOMIC_RELAXED) + 1, __ATOMIC_RELAXED);
    __atomic_store_n(&h->sum, __atomic_load_n(&h->sum, __ATOMIC_RELAXED) + v, __ATOMIC_RELAXED);
    if (v > __atomic_load_n(&h->max, __ATOMIC_RELAXED)) {
        __atomic_store_n(&h->max, v, __ATOMIC_RELAXED);
    }
}

/* Add @src into @dst. @dst is private to the caller; @src may be live (its
 * writer adding concurrently). The merged count is the sum of the bucket
 * counts actually copied, and the merged max is at least the lower bound of
 * the highest non-empty bucket, so quantiles of @dst are consistent even if
 * @src was caught mid-update. Thread: any. */
void rts_hist_merge(struct rts_hist *dst, const struct rts_hist *src);

/* The value at quantile @q (clamped to [0,1]; NaN reads as 0): the midpoint
 * of the bucket holding the ceil(q * n)-th smallest value (at least the 1st),
 * clamped to max; the n-th value (q = 1) is max itself. Exact below 32;
 * within 1/32 relative above. 0 if empty.
 * @h should be private (a merged copy). Thread: any. */
uint64_t rts_hist_quantile(const struct rts_hist *h, double q);

/* Bucket bounds, both inclusive: bucket i holds lower(i) <= v <= upper(i).
 * upper() is strictly increasing; upper(RTS_HIST_BUCKETS - 1) == UINT64_MAX.
 * For Prometheus, le = upper(i) (in seconds: upper(i) / 1e9). @i must be
 * < RTS_HIST_BUCKETS. Pure; any thread. */
uint64_t rts_hist_bucket_lower(size_t i);
uint64_t rts_hist_bucket_upper(size_t i);

#endif /* RTS_CORE_HIST_H */
