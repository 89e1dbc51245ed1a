/*
 * bench.h - what the benchmarks share. The machine is shared and noisy, so
 * every figure is the median of repeated runs, never a single run.
 */
#ifndef RTS_BENCH_BENCH_H
#define RTS_BENCH_BENCH_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "core/hist.h"
#include "daemon/daemon.h"

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

/* @end minus @start (cumulative snapshots of one histogram): the values
 * added in between. Their max is known to within its bucket: the upper
 * bound of the highest non-empty one. */
static inline void bench_hist_sub(struct rts_hist *out, const struct rts_hist *end,
                                  const struct rts_hist *start)
{
    *out = *end;
    out->count = end->count - start->count;
    out->sum = end->sum - start->sum;
    out->max = 0;
    for (size_t i = 0; i < RTS_HIST_BUCKETS; i++) {
        out->b[i] = end->b[i] - start->b[i];
        if (out->b[i]) {
            uint64_t up = rts_hist_bucket_upper(i);
            out->max = up < end->max ? up : end->max;
        }
    }
}

/* A daemon run in a thread of its own, so that the bench can take
 * snapshots of its stats meanwhile: pthread_create(.., bench_paced_main, pr). */
struct bench_paced_run {
    struct rts_daemon *d;
    struct rts_errbuf eb;
    int rc;
};

static inline void *bench_paced_main(void *arg)
{
    struct bench_paced_run *pr = arg;

    pr->rc = rts_daemon_run(pr->d, &pr->eb);
    return NULL;
}

/* The demo pipeline's event schema and its in-process features
 * (examples/fraud/pipeline.yaml without the lookups): the "event:" and
 * "features:" sections of the benchmarks' pipelines, a string literal. */
#define BENCH_DEMO_EVENT_FEATURES                                                                  \
    "event:\n"                                                                                     \
    "  id: txn_id\n"                                                                               \
    "  key: card_id\n"                                                                             \
    "  time: ts\n"                                                                                 \
    "  fields:\n"                                                                                  \
    "    card_id:     {type: string, required: true, max_len: 64}\n"                               \
    "    amount:      {type: float, required: true, min: 0}\n"                                     \
    "    merchant_id: {type: string}\n"                                                            \
    "    mcc:         {type: int, default: 0}\n"                                                   \
    "    country:     {type: string, default: \"US\"}\n"                                           \
    "    is_fraud:    {type: int, default: 0}\n"                                                   \
    "features:\n"                                                                                  \
    "  - {name: amount_log,      expr: \"log1p(amount)\"}\n"                                       \
    "  - {name: hour,            expr: \"hour_of_day(ts)\"}\n"                                     \
    "  - {name: txn_count_5m,    agg: count, window: 5m}\n"                                        \
    "  - {name: amount_sum_24h,  agg: sum,  of: amount, window: 24h}\n"                            \
    "  - {name: amount_mean_30d, agg: mean, of: amount, window: 30d}\n"                            \
    "  - {name: amount_max_24h,  agg: max,  of: amount, window: 24h}\n"                            \
    "  - {name: merchants_24h,   agg: distinct, of: merchant_id, window: 24h}\n"                   \
    "  - {name: amount_last5,    agg: mean, of: amount, last: 5}\n"                                \
    "  - {name: secs_since_last, agg: since_last}\n"                                               \
    "  - {name: amount_ratio,    expr: \"amount / (amount_mean_30d + 1)\"}\n"                      \
    "  - {name: foreign,         expr: \"country != 'US'\"}\n"

#endif /* RTS_BENCH_BENCH_H */
