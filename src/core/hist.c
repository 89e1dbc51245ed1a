/*
 * hist.c - merging and reading the fixed log-linear histograms of hist.h.
 *
 * Bucket i < 32 holds exactly the value i. Above, bucket i = 16 * (e - 3) + sub
 * holds [(16 + sub) << (e - 4), ((17 + sub) << (e - 4)) - 1] for the exponent
 * e = floor(log2 v) >= 5 and the sub-bucket sub = 0..15. The last bucket ends at
 * UINT64_MAX. Readers never write into a live histogram.
 */
#include "core/hist.h"

#include <math.h>

uint64_t rts_hist_bucket_lower(size_t i)
{
    unsigned s;

    if (i < (2u << RTS_HIST_SUB_BITS)) {
        return i;
    }
    s = (unsigned)(i >> RTS_HIST_SUB_BITS) - 1u; /* e - 4 */
    return (uint64_t)((1u << RTS_HIST_SUB_BITS) + (i & ((1u << RTS_HIST_SUB_BITS) - 1))) << s;
}

uint64_t rts_hist_bucket_upper(size_t i)
{
    unsigned s;

    if (i < (2u << RTS_HIST_SUB_BITS)) {
        return i;
    }
    s = (unsigned)(i >> RTS_HIST_SUB_BITS) - 1u;
    /* lower + width - 1; no overflow even for the last bucket (2^64 - 1). */
    return rts_hist_bucket_lower(i) + ((UINT64_C(1) << s) - 1);
}

void rts_hist_merge(struct rts_hist *dst, const struct rts_hist *src)
{
    uint64_t n = 0, top = 0, c, max, sum;
    size_t i;

    for (i = 0; i < RTS_HIST_BUCKETS; i++) {
        c = __atomic_load_n(&src->b[i], __ATOMIC_RELAXED);
        if (c) {
            dst->b[i] += c;
            n += c;
            top = rts_hist_bucket_lower(i);
        }
    }
    sum = __atomic_load_n(&src->sum, __ATOMIC_RELAXED);
    max = __atomic_load_n(&src->max, __ATOMIC_RELAXED);
    /* The writer may have counted a value in its bucket before storing max:
     * never report a max below a non-empty bucket. */
    if (max < top) {
        max = top;
    }
    dst->count += n;
    dst->sum += sum;
    if (max > dst->max) {
        dst->max = max;
    }
}

uint64_t rts_hist_quantile(const struct rts_hist *h, double q)
{
    uint64_t n = 0, rank, seen = 0, lo, hi, mid;
    double r;
    size_t i;

    for (i = 0; i < RTS_HIST_BUCKETS; i++) {
        n += h->b[i];
    }
    if (n == 0) {
        return 0;
    }
    if (!(q > 0)) { /* also NaN */
        q = 0;
    } else if (q > 1) {
        q = 1;
    }
    r = ceil(q * (double)n);
    rank = r < 1 ? 1 : r >= (double)n ? n : (uint64_t)r;
    for (i = 0; i < RTS_HIST_BUCKETS; i++) {
        seen += h->b[i];
        if (seen >= rank) {
            break;
        }
    }
    lo = rts_hist_bucket_lower(i);
    hi = rts_hist_bucket_upper(i);
    mid = lo + (hi - lo + 1) / 2; /* lo itself in the exact buckets (width 1) */
    if (h->max < lo || h->max > hi) {
        return mid; /* max inconsistent with the buckets (a hand-made histogram) */
    }
    /* The largest value is known exactly: the last rank and any midpoint
     * above it report max. */
    return rank == n || mid > h->max ? h->max : mid;
}
