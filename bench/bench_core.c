/*
 * bench_core.c - micro-benchmarks of the core hot-path pieces: ns per
 * rts_hist_add (and per merge, the scrape cost), SPSC ring throughput between
 * two threads with 200-byte records, and ns per rts_fmt_double on amounts
 * (42.17), scores (0.9312345) and arbitrary doubles, against snprintf("%.17g").
 * Each figure is the median of RUNS runs. Build with -O2; not a test.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/fmt.h"
#include "core/hist.h"
#include "core/ring.h"

#include "bench.h"

#define RUNS 7

static uint64_t rng_state = 0x2545F4914F6CDD1Du;

static uint64_t rng(void)
{
    uint64_t x = rng_state;

    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    rng_state = x;
    return x;
}

/* ---- hist ---- */

#define HIST_VALUES 65536
#define HIST_ADDS 20000000

static struct rts_hist bench_hist;
static uint64_t hist_values[HIST_VALUES];

static double bench_hist_add(void)
{
    uint64_t t0, i;

    memset(&bench_hist, 0, sizeof(bench_hist));
    t0 = rts_now_ns();
    for (i = 0; i < HIST_ADDS; i++) {
        rts_hist_add(&bench_hist, hist_values[i & (HIST_VALUES - 1)]);
    }
    return (double)(rts_now_ns() - t0) / HIST_ADDS;
}

static double bench_hist_merge(void)
{
    static struct rts_hist dst;
    uint64_t t0;
    int i;

    t0 = rts_now_ns();
    for (i = 0; i < 10000; i++) {
        memset(&dst, 0, sizeof(dst));
        rts_hist_merge(&dst, &bench_hist);
    }
    return (double)(rts_now_ns() - t0) / 10000;
}

/* ---- ring ---- */

#define RING_RECORDS 5000000
#define RING_REC_BYTES 200

struct ring_run {
    struct rts_ring *r;
    uint64_t sum;
    uint64_t prod_waits, cons_waits;
};

static void *ring_consumer(void *arg)
{
    struct ring_run *rr = arg;
    const unsigned char *p;
    uint64_t sum = 0, got = 0;
    size_t n;

    while (got < RING_RECORDS) {
        p = rts_ring_peek(rr->r, &n);
        if (!p) {
            rr->cons_waits++;
            rts_ring_wait_readable(rr->r, -1);
            continue;
        }
        sum += p[0] + p[n - 1];
        got++;
        rts_ring_release(rr->r);
    }
    rr->sum = sum;
    return NULL;
}

static double bench_ring(uint64_t *pw, uint64_t *cw)
{
    struct ring_run rr = {0};
    unsigned char rec[RING_REC_BYTES];
    pthread_t t;
    uint64_t t0, i;
    void *p;

    memset(rec, 7, sizeof(rec));
    rr.r = rts_ring_new(1 << 20, 65536, NULL);
    if (!rr.r) {
        return 0;
    }
    t0 = rts_now_ns();
    pthread_create(&t, NULL, ring_consumer, &rr);
    for (i = 0; i < RING_RECORDS; i++) {
        while (!(p = rts_ring_reserve(rr.r, RING_REC_BYTES))) {
            rr.prod_waits++;
            rts_ring_wait_writable(rr.r, RING_REC_BYTES, -1);
        }
        rec[0] = (unsigned char)i;
        memcpy(p, rec, RING_REC_BYTES);
        rts_ring_commit(rr.r, RING_REC_BYTES);
    }
    pthread_join(t, NULL);
    t0 = rts_now_ns() - t0;
    *pw = rr.prod_waits;
    *cw = rr.cons_waits;
    rts_ring_free(rr.r);
    return (double)RING_RECORDS / ((double)t0 / 1e9);
}

/* ---- fmt ---- */

#define FMT_N 1000000

static double fmt_values[FMT_N];
static volatile size_t fmt_sink;

static double bench_fmt(int use_snprintf)
{
    char buf[64];
    uint64_t t0;
    size_t i, total = 0;

    t0 = rts_now_ns();
    for (i = 0; i < FMT_N; i++) {
        if (use_snprintf) {
            total += (size_t)snprintf(buf, sizeof(buf), "%.17g", fmt_values[i]);
        } else {
            total += rts_fmt_double(buf, fmt_values[i]);
        }
    }
    fmt_sink = total;
    return (double)(rts_now_ns() - t0) / FMT_N;
}

static void fmt_case(const char *name, int kind)
{
    double a[RUNS], b[RUNS];
    size_t i;
    int r;

    for (i = 0; i < FMT_N; i++) {
        uint64_t x = rng();

        if (kind == 0) { /* amounts: cents up to 10,000.00 */
            fmt_values[i] = (double)(x % 1000000) / 100;
        } else if (kind == 1) { /* scores: 7 decimals in [0,1) */
            fmt_values[i] = (double)(x % 10000000) / 1e7;
        } else { /* arbitrary doubles in [0,1): the exact 128-bit path */
            fmt_values[i] = (double)(x >> 11) / 9007199254740992.0;
        }
    }
    for (r = 0; r < RUNS; r++) {
        a[r] = bench_fmt(0);
        b[r] = bench_fmt(1);
    }
    printf("fmt_double %-22s %7.1f ns   snprintf %%.17g %7.1f ns   (x%.1f)\n", name,
           bench_median(a, RUNS), bench_median(b, RUNS), bench_median(b, RUNS) / bench_median(a, RUNS));
}

int main(void)
{
    double v[RUNS], m[RUNS];
    uint64_t pw = 0, cw = 0;
    size_t i;
    int r;

    for (i = 0; i < HIST_VALUES; i++) {
        /* log-uniform latencies from 1 us to ~1 s */
        hist_values[i] = (uint64_t)1000 << (rng() % 20) | (rng() & 1023);
    }
    for (r = 0; r < RUNS; r++) {
        v[r] = bench_hist_add();
        m[r] = bench_hist_merge();
    }
    printf("hist_add                          %7.2f ns/add\n", bench_median(v, RUNS));
    printf("hist_merge (%d buckets)          %7.0f ns/merge\n", RTS_HIST_BUCKETS, bench_median(m, RUNS));

    for (r = 0; r < RUNS; r++) {
        v[r] = bench_ring(&pw, &cw);
        fprintf(stderr, "  ring run %d: %.2f M rec/s, producer waits %llu, consumer waits %llu\n",
                r, v[r] / 1e6, (unsigned long long)pw, (unsigned long long)cw);
    }
    printf("ring 200-byte records, 2 threads  %7.2f M records/s (%.2f GB/s payload)\n",
           bench_median(v, RUNS) / 1e6, bench_median(v, RUNS) * RING_REC_BYTES / 1e9);

    fmt_case("amounts (42.17)", 0);
    fmt_case("scores (0.9312345)", 1);
    fmt_case("random [0,1) (exact)", 2);
    return 0;
}
