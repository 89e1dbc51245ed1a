/*
 * bench.h - what the benchmarks share. The machine is shared and noisy, so
 * every figure is the median of repeated runs, never a single run.
 */
#ifndef RTS_BENCH_BENCH_H
#define RTS_BENCH_BENCH_H

#include <stddef.h>
#include <stdlib.h>

static inline int bench_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return (x > y) - (x < y);
}

/* The median of @n values (sorts @v in place). */
static inline double bench_median(double *v, size_t n)
{
    qsort(v, n, sizeof(*v), bench_cmp_double);
    return v[n / 2];
}

#endif /* RTS_BENCH_BENCH_H */
