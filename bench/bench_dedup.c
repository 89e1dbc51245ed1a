/*
 * bench_dedup.c - ns per rts_dedup_seen() with 1M and 10M ids held (the set
 * full, horizon 10 min): a new id (found absent, the oldest evicted, the new
 * one recorded: the common case) and a repeat (found present). Ids are
 * XXH3-like random 64-bit hashes, so the index is hit at random, as live
 * traffic does: at 10M the table does not fit in any cache and the figure is
 * memory latency; hence also the new-id case with rts_dedup_prefetch() three
 * checks ahead, as a worker's look-ahead would call it. Each figure is the
 * median of RUNS runs of CHECKS checks.
 * Build with -O2; not a test.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "core/clock.h"
#include "guard/dedup.h"

#include "bench.h"

#define RUNS 7
#define CHECKS 2000000
#define MIN_US (INT64_C(60) * 1000000)

/* The k-th id: a bijective mix of k, so ids never repeat by accident. */
static uint64_t id_of(uint64_t k)
{
    uint64_t z = k + 0x9E3779B97F4A7C15u;

    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9u;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBu;
    return z ^ (z >> 31);
}

static uint64_t rng_state = 88172645463325252u;

static uint64_t rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

struct run {
    struct rts_dedup *d;
    uint64_t next;  /* the next new id's k; ids next - n .. next - 1 are held */
    uint64_t n;
    int64_t now_us; /* 1 us a check: nothing reaches the 10 min horizon */
    uint64_t sink;
};

static double bench_new(struct run *r)
{
    uint64_t t0 = rts_now_ns(), i;

    for (i = 0; i < CHECKS; i++) {
        r->sink += (uint64_t)rts_dedup_seen(r->d, id_of(r->next++), r->now_us++);
    }
    return (double)(rts_now_ns() - t0) / CHECKS;
}

/* The same, the way a worker with a look-ahead does it: the id three
 * events ahead is prefetched before each check. */
static double bench_new_ahead(struct run *r)
{
    uint64_t t0 = rts_now_ns(), i;

    for (i = 0; i < CHECKS; i++) {
        rts_dedup_prefetch(r->d, id_of(r->next + 3));
        r->sink += (uint64_t)rts_dedup_seen(r->d, id_of(r->next++), r->now_us++);
    }
    return (double)(rts_now_ns() - t0) / CHECKS;
}

static uint64_t picks[CHECKS];

static double bench_repeat(struct run *r)
{
    uint64_t t0, i;

    for (i = 0; i < CHECKS; i++) {
        picks[i] = id_of(r->next - 1 - rng() % r->n);
    }
    t0 = rts_now_ns();
    for (i = 0; i < CHECKS; i++) {
        r->sink += (uint64_t)rts_dedup_seen(r->d, picks[i], r->now_us);
    }
    r->now_us++;
    return (double)(rts_now_ns() - t0) / CHECKS;
}

static int bench_size(uint64_t n)
{
    struct rts_errbuf eb = {0};
    struct run r = {0};
    struct rts_dedup_stats st;
    double fresh[RUNS], ahead[RUNS], repeat[RUNS];
    uint64_t t0;
    int i;

    r.d = rts_dedup_new(10 * MIN_US, n, &eb);
    if (!r.d) {
        fprintf(stderr, "bench_dedup: %s\n", eb.msg);
        return 1;
    }
    r.n = n;
    t0 = rts_now_ns();
    while (r.next < n) {
        rts_dedup_seen(r.d, id_of(r.next++), r.now_us++);
    }
    printf("dedup %3lluM ids, %.0f MB (%.1f bytes an id), filled in %.2f s\n",
           (unsigned long long)(n / 1000000), (double)rts_dedup_bytes(n) / 1e6,
           (double)rts_dedup_bytes(n) / (double)n, (double)(rts_now_ns() - t0) / 1e9);
    for (i = 0; i < RUNS; i++) {
        fresh[i] = bench_new(&r);
        ahead[i] = bench_new_ahead(&r);
        repeat[i] = bench_repeat(&r);
    }
    rts_dedup_stats(r.d, &st);
    printf("  new id (evicts the oldest)  %6.1f ns/check (median of %d x %d)\n",
           bench_median(fresh, RUNS), RUNS, CHECKS);
    printf("  new id, prefetched 3 ahead  %6.1f ns/check (median of %d x %d)\n",
           bench_median(ahead, RUNS), RUNS, CHECKS);
    printf("  repeat                      %6.1f ns/check (median of %d x %d)\n",
           bench_median(repeat, RUNS), RUNS, CHECKS);
    if (st.duplicates != (uint64_t)RUNS * CHECKS || st.held != n || st.expired != 0) {
        fprintf(stderr, "bench_dedup: unexpected counts: %llu duplicates, %llu held\n",
                (unsigned long long)st.duplicates, (unsigned long long)st.held);
        rts_dedup_free(r.d);
        return 1;
    }
    rts_dedup_free(r.d);
    return 0;
}

int main(void)
{
    return bench_size(1000000) || bench_size(10000000);
}
