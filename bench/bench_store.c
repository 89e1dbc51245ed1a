/*
 * bench_store.c - the daemon in-process with the demo feature set and its
 * online store lookups (avg_spend_90d, chargebacks_1y from stores.profiles)
 * against a redis-server the benchmark starts itself, on the same cores.
 *
 * The demo's card profiles (examples/fraud/profiles.csv) are written to
 * Redis with the store's bulk write, then the generator -> decode ->
 * features + lookups -> fallback score -> rules -> null sink pipeline runs in
 * four configurations, interleaved run by run so that all see the same noise:
 *   none      the same pipeline without lookup features or stores;
 *   batch     redis, no cache: every event's key is asked of Redis, one
 *             pipelined round trip (HMGET per distinct key) per worker batch;
 *   cached    redis, cache_ttl 60s: most keys answered by the worker's cache;
 *   per-event redis, no cache, worker batches of 1: one round trip per event.
 * Prints, as medians of RUNS runs:
 *   S. saturated throughput (the generator as fast as it goes), p99
 *      ingest->emitted (queues full: queueing, not processing), lookups sent
 *      to Redis per second, the share of events degraded (a lookup
 *      unanswered within the 2 ms timeout, or refused by the open circuit)
 *      and how often the store's circuit breaker tripped;
 *   P. at fixed offered rates, after a warm-up: the rate achieved and
 *      p50/p99/max ingest->emitted, degraded share;
 *   H. Redis hung (SIGSTOP) for a few seconds at the first offered rate:
 *      how soon the breaker trips (window 10s; with the default run rule,
 *      20 failed calls in a row, and without) and closes after SIGCONT, the
 *      latency of the events around it;
 *   C. cold starts with the store's default breaker (min_calls 20,
 *      consecutive 20; S, P and H use min_calls 500, see BREAKER_BENCH): how
 *      often it trips;
 *   G. the goal - one Redis on the same cores, >= 200,000 events/s
 *      with lookups and p99 <= 5 ms - met or not, per configuration.
 * Usage: bench_store [events per saturated run (default 1000000)]
 *                    [workers (default: online cores)] [rates (default 100000,200000)]
 * BENCH_LOG=1 in the environment shows the daemon's log (timeouts, breaker).
 */
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "conf/conf.h"
#include "core/clock.h"
#include "core/hist.h"
#include "core/log.h"
#include "core/path.h"
#include "daemon/daemon.h"
#include "feature/lookup.h"
#include "feature/store.h"

#include "../tests/lib/redis_server.h"
#include "bench.h"

#define RUNS 3
#define WARM_S 2
#define MEASURE_S 4
#define GOAL_RATE 200000.0
#define GOAL_P99_US 5000.0

enum cfg { CFG_NONE, CFG_BATCH, CFG_CACHED, CFG_PER_EVENT, CFG__COUNT };

static const char *cfg_name[CFG__COUNT] = {"none", "batch", "cached", "per-event"};
static const char *cfg_desc[CFG__COUNT] = {
    "no lookups (the same pipeline without them)",
    "redis, no cache, one pipelined round trip per batch",
    "redis, cache_ttl 60s, misses pipelined per batch",
    "redis, no cache, one round trip per event (batch 1)",
};

static struct redis_server server;
static int nworkers;
/* The store's breaker in S, P and H: min_calls 500, not the default 20. At
 * these rates 20 calls take ~10 ms, and the first calls of a cold start
 * (fresh connections, cache and state pages faulted in, a loopback round trip
 * waiting for CPU) often miss the 2 ms timeout: the default trips at start
 * and, its probes failing alike, can stay open. C shows it. */
#define BREAKER_BENCH ", breaker: {min_calls: 500}"
static const char *breaker_yaml = BREAKER_BENCH; /* more options of stores.profiles */

static const char *yaml_head =
    "pipeline: bench\n"
    "workers: %d\n"
    "source: {type: generator, events: %ld, seed: 42, fraud_rate: 0.01, cards: 50000, "
    "density: 200, rate: %ld}\n" BENCH_DEMO_EVENT_FEATURES;

static const char *yaml_lookups =
    "  - {name: avg_spend_90d,   lookup: {store: profiles, key: \"card:{card_id}\", "
    "max_age: 30d, default: 0}}\n"
    "  - {name: chargebacks_1y,  lookup: {store: profiles, key: \"card:{card_id}\", default: 0}}\n"
    "  - {name: spend_ratio_90d, expr: \"amount / (avg_spend_90d + 1)\"}\n"
    "stores:\n"
    "  profiles: {type: redis, addr: \"127.0.0.1:%d\", timeout: 2ms, cache_ttl: %s, "
    "updated_field: _updated_at%s}\n";

static const char *yaml_tail =
    "rules:\n"
    "  - {when: \"score >= 0.9\", decision: block}\n"
    "  - {when: \"score >= 0.6 or amount > 10000\", decision: review}\n"
    "  - {decision: allow}\n"
    "fallback:\n"
    "  score: \"min(1, amount / 20000 + (txn_count_5m > 10) * 0.5 + (amount_ratio > 8) * 0.3 "
    "+ (merchants_24h > 6) * 0.2 + (hour < 5) * 0.1 + foreign * 0.1)\"\n"
    "sink: {type: null}\n"
    "limits: {max_keys: 1000000}\n"
    "latency_budget: {lookup: 2ms}\n";

static struct rts_pipeline_conf *make_conf(enum cfg c, long events, long rate)
{
    char yaml[8192];
    struct rts_errbuf eb = {0};
    struct rts_pipeline_conf *conf;
    size_t n = (size_t)snprintf(yaml, sizeof(yaml), yaml_head, nworkers, events, rate);

    if (c != CFG_NONE) {
        n += (size_t)snprintf(yaml + n, sizeof(yaml) - n, yaml_lookups, server.port,
                              c == CFG_CACHED ? "60s" : "0", breaker_yaml);
    }
    snprintf(yaml + n, sizeof(yaml) - n, "%s", yaml_tail);
    conf = rts_pipeline_conf_parse("bench_store.yaml", yaml, strlen(yaml), &eb);
    if (!conf) {
        fprintf(stderr, "bench_store: %s\n", eb.msg);
        exit(2);
    }
    if (c == CFG_PER_EVENT) {
        conf->batch_max = 1; /* model.batch.max, which this pipeline (no model) cannot set */
    }
    return conf;
}

/* ---- the data: the demo's profiles, written as `rtscore store load` does ---- */

#define LOAD_ROWS 1000

static long load_profiles(void)
{
    static char lines[LOAD_ROWS][160];
    static struct rts_str keys[LOAD_ROWS], cells[LOAD_ROWS * 3];
    static int64_t upd[LOAD_ROWS];
    const char *fields[3] = {"avg_spend_90d", "account_age_days", "chargebacks_1y"};
    char alt[4096], yaml[128], header[256];
    const char *path = rts_path_resolve("examples/fraud/profiles.csv", alt, sizeof(alt));
    struct rts_errbuf eb = {0};
    struct rts_store_env env = {"profiles", "_updated_at"};
    struct rts_conf *doc;
    struct rts_store *st = NULL;
    void *conn = NULL;
    FILE *f = fopen(path, "r");
    long total = -1;
    size_t n = 0;
    int eof = 0;

    snprintf(yaml, sizeof(yaml), "{addr: \"127.0.0.1:%d\", timeout: 1s}", server.port);
    doc = rts_conf_parse("bench", yaml, strlen(yaml), &eb);
    st = doc ? rts_store_open(&rts_store_redis, rts_conf_root(doc), "stores.profiles", &env, &eb)
             : NULL;
    conn = st ? rts_store_conn_new(st, &eb) : NULL;
    if (!f || !conn || !fgets(header, sizeof(header), f) ||
        strncmp(header, "key,avg_spend_90d,account_age_days,chargebacks_1y,_updated_at", 60) != 0) {
        fprintf(stderr, "bench_store: cannot load %s: %s\n", path, f ? eb.msg : "cannot open");
        goto out;
    }
    total = 0;
    while (!eof) {
        char *line = lines[n], *cell[5];
        int k = 0;

        if (!fgets(line, sizeof(lines[0]), f)) {
            eof = 1;
        } else {
            line[strcspn(line, "\r\n")] = '\0';
            for (char *p = line; k < 5; k++) { /* key,avg,age,chargebacks,updated */
                cell[k] = p;
                p = strchr(p, ',');
                if (!p) {
                    k++;
                    break;
                }
                *p++ = '\0';
            }
            if (k != 5) {
                continue;
            }
            keys[n].p = cell[0];
            keys[n].n = (uint32_t)strlen(cell[0]);
            for (int j = 0; j < 3; j++) {
                cells[n * 3 + (size_t)j].p = cell[1 + j][0] ? cell[1 + j] : NULL;
                cells[n * 3 + (size_t)j].n = (uint32_t)strlen(cell[1 + j]);
            }
            upd[n] = strtoll(cell[4], NULL, 10);
            n++;
        }
        if (n == LOAD_ROWS || (eof && n)) {
            struct rts_store_rows rows = {n, 3, fields, keys, cells, upd, 0};
            if (rts_store_write(st, conn, &rows, &eb)) {
                fprintf(stderr, "bench_store: %s\n", eb.msg);
                total = -1;
                goto out;
            }
            total += (long)n;
            n = 0;
        }
    }
out:
    if (f) {
        fclose(f);
    }
    rts_store_conn_free(st, conn);
    rts_store_close(st);
    rts_conf_free(doc);
    return total;
}

/* ---- runs ---- */

struct result {
    double rate;          /* events scored per second */
    double p50, p99, max; /* ingest -> emitted, us */
    double lookups;       /* keys asked of Redis per second */
    double degraded;      /* share of events with an unanswered lookup */
    double batch;         /* events per worker batch */
    double trips;         /* times the store's circuit breaker opened in the run */
};

/* Times the store's breaker tripped so far (0 without lookups). */
static double trips_of(const struct rts_daemon *d)
{
    const struct rts_pipeline *p = rts_daemon_pipeline(d);
    struct rts_breaker_stats bs;

    if (!p->lookup) {
        return 0;
    }
    rts_breaker_stats(rts_lookup_breaker(p->lookup, 0), &bs);
    return (double)bs.transitions[RTS_BREAKER_CLOSED_OPEN];
}

/* The figures of the interval between stats @a (or nothing) and @b. */
static struct result interval(const struct rts_daemon_stats *a, const struct rts_daemon_stats *b)
{
    struct result r;
    struct rts_hist h, bt;
    double secs = b->elapsed_s - (a ? a->elapsed_s : 0);
    uint64_t scored = b->scored - (a ? a->scored : 0), fetched = 0, degraded = 0;

    if (a) {
        bench_hist_sub(&h, &b->hist[RTS_STAGE_TOTAL], &a->hist[RTS_STAGE_TOTAL]);
        bench_hist_sub(&bt, &b->batch, &a->batch);
    } else {
        h = b->hist[RTS_STAGE_TOTAL];
        bt = b->batch;
    }
    if (b->lookup_store) {
        fetched = b->lookup_store[0].fetched - (a ? a->lookup_store[0].fetched : 0);
        degraded = b->lookup_store[0].degraded - (a ? a->lookup_store[0].degraded : 0);
    }
    r.rate = secs > 0 ? (double)scored / secs : 0;
    r.p50 = (double)rts_hist_quantile(&h, 0.50) / 1e3;
    r.p99 = (double)rts_hist_quantile(&h, 0.99) / 1e3;
    r.max = (double)rts_hist_quantile(&h, 1.0) / 1e3;
    r.lookups = secs > 0 ? (double)fetched / secs : 0;
    r.degraded = scored ? (double)degraded / (double)scored : 0;
    r.batch = bt.count ? (double)bt.sum / (double)bt.count : 0;
    return r;
}

static struct result run_saturated(enum cfg c, long events)
{
    struct rts_errbuf eb = {0};
    struct rts_daemon_opts opts = {0};
    struct rts_daemon *d = rts_daemon_new(make_conf(c, events, 0), &opts, &eb);
    struct rts_daemon_stats s;
    struct result r;

    if (!d || rts_daemon_run(d, &eb)) {
        fprintf(stderr, "bench_store: %s\n", eb.msg);
        exit(2);
    }
    rts_daemon_stats(d, &s);
    r = interval(NULL, &s);
    r.trips = trips_of(d);
    rts_daemon_stats_fini(&s);
    rts_daemon_free(d);
    return r;
}

/* Offered @rate for WARM_S + MEASURE_S seconds' worth of events; the
 * figures of what follows the warm-up (the histograms are cumulative: the
 * difference of two snapshots). */
static struct result run_paced(enum cfg c, long rate)
{
    struct rts_daemon_opts opts = {0};
    struct bench_paced_run pr = {0};
    struct rts_daemon_stats a, b;
    struct timespec ts = {WARM_S, 0};
    struct result r;
    pthread_t tid;

    pr.d = rts_daemon_new(make_conf(c, rate * (WARM_S + MEASURE_S), rate), &opts, &pr.eb);
    if (!pr.d) {
        fprintf(stderr, "bench_store: %s\n", pr.eb.msg);
        exit(2);
    }
    pthread_create(&tid, NULL, bench_paced_main, &pr);
    nanosleep(&ts, NULL);
    rts_daemon_stats(pr.d, &a);
    pthread_join(tid, NULL);
    if (pr.rc) {
        fprintf(stderr, "bench_store: %s\n", pr.eb.msg);
        exit(2);
    }
    rts_daemon_stats(pr.d, &b);
    r = interval(&a, &b);
    r.trips = trips_of(pr.d); /* the warm-up's too: a circuit it opened may stay open */
    rts_daemon_stats_fini(&a);
    rts_daemon_stats_fini(&b);
    rts_daemon_free(pr.d);
    return r;
}

/* H: Redis hung (SIGSTOP) for HANG_S seconds at a fixed offered rate. Until
 * the breaker trips, every batch waits the 2 ms timeout; then batches stop
 * calling. Times to trip and to close again, and the latency of every event
 * emitted from just before the hang to the end of the run. */
#define HANG_S 5

struct hang_result {
    double trip_s, close_s; /* after SIGSTOP, after SIGCONT; -1 = did not */
    struct result r;
};

static enum rts_breaker_state breaker_state_of(const struct rts_daemon *d)
{
    return rts_breaker_state(rts_lookup_breaker(rts_daemon_pipeline(d)->lookup, 0));
}

static struct hang_result run_hang(long rate)
{
    struct rts_daemon_opts opts = {0};
    struct bench_paced_run pr = {0};
    struct rts_daemon_stats a, b;
    struct timespec warm = {WARM_S + 1, 0};
    struct hang_result h;
    pthread_t tid;
    uint64_t t0;

    memset(&h, 0, sizeof(h));
    h.trip_s = h.close_s = -1;

    pr.d = rts_daemon_new(make_conf(CFG_BATCH, rate * (WARM_S + 1 + 2 * HANG_S + 2), rate), &opts,
                          &pr.eb);
    if (!pr.d) {
        fprintf(stderr, "bench_store: %s\n", pr.eb.msg);
        exit(2);
    }
    pthread_create(&tid, NULL, bench_paced_main, &pr);
    nanosleep(&warm, NULL);
    rts_daemon_stats(pr.d, &a);
    t0 = rts_now_ns();
    kill(server.pid, SIGSTOP);
    while (rts_now_ns() - t0 < (uint64_t)HANG_S * 1000000000u) {
        if (h.trip_s < 0 && breaker_state_of(pr.d) == RTS_BREAKER_OPEN) {
            h.trip_s = (double)(rts_now_ns() - t0) / 1e9;
        }
        usleep(1000);
    }
    kill(server.pid, SIGCONT);
    t0 = rts_now_ns();
    while (h.trip_s >= 0 && rts_now_ns() - t0 < (uint64_t)2 * HANG_S * 1000000000u) {
        if (breaker_state_of(pr.d) == RTS_BREAKER_CLOSED) {
            h.close_s = (double)(rts_now_ns() - t0) / 1e9;
            break;
        }
        usleep(1000);
    }
    pthread_join(tid, NULL);
    if (pr.rc) {
        fprintf(stderr, "bench_store: %s\n", pr.eb.msg);
        exit(2);
    }
    rts_daemon_stats(pr.d, &b);
    h.r = interval(&a, &b);
    rts_daemon_stats_fini(&a);
    rts_daemon_stats_fini(&b);
    rts_daemon_free(pr.d);
    return h;
}

static void bench_hang(long rate)
{
    static const char *breakers[2] = {BREAKER_BENCH, ", breaker: {min_calls: 500, consecutive: 0}"};
    static const char *label[2] = {"consecutive 20 (default)", "no consecutive rule"};
    double trip[2][RUNS], reclosed[2][RUNS], p99[2][RUNS], max[2][RUNS], deg[2][RUNS];

    for (int i = 0; i < RUNS; i++) {
        for (int k = 0; k < 2; k++) {
            struct hang_result h;
            breaker_yaml = breakers[k];
            h = run_hang(rate);
            trip[k][i] = h.trip_s;
            reclosed[k][i] = h.close_s;
            p99[k][i] = h.r.p99;
            max[k][i] = h.r.max;
            deg[k][i] = h.r.degraded;
        }
    }
    breaker_yaml = BREAKER_BENCH;
    printf("H. Redis hung (SIGSTOP) for %d s at %ld events/s offered, %d worker%s, batch config, "
           "each run (interleaved; -1: did not happen):\n",
           HANG_S, rate, nworkers, nworkers > 1 ? "s" : "");
    for (int k = 0; k < 2; k++) {
        for (int i = 0; i < RUNS; i++) {
            printf("   %-28s tripped after %5.2f s, closed %5.2f s after SIGCONT; events from the "
                   "hang on: p99 %6.1f ms, max %6.1f ms, %5.1f%% degraded\n",
                   label[k], trip[k][i], reclosed[k][i], p99[k][i] / 1e3, max[k][i] / 1e3,
                   100 * deg[k][i]);
        }
    }
    fflush(stdout);
}

/* C: the same paced runs with the store's default breaker (min_calls 20):
 * how often a cold start trips it, and what share of the run is degraded. */
static void bench_cold_start(long rate)
{
    double trips[2][RUNS], deg[2][RUNS], p99[2][RUNS];

    breaker_yaml = "";
    for (int i = 0; i < RUNS; i++) {
        for (int k = 0; k < 2; k++) {
            struct result r = run_paced(k ? CFG_CACHED : CFG_BATCH, rate);
            trips[k][i] = r.trips;
            deg[k][i] = r.degraded;
            p99[k][i] = r.p99;
        }
    }
    breaker_yaml = BREAKER_BENCH;
    printf("C. cold starts at %ld events/s offered with the default breaker (min_calls 20, "
           "consecutive 20), %d runs each:\n",
           rate, RUNS);
    for (int k = 0; k < 2; k++) {
        int tripped = 0;
        for (int i = 0; i < RUNS; i++) {
            tripped += trips[k][i] > 0;
        }
        printf("   %-9s tripped in %d of %d runs; degraded %.1f%%, p99 %.2f ms (medians)\n",
               k ? "cached" : "batch", tripped, RUNS, 100 * bench_median(deg[k], RUNS),
               bench_median(p99[k], RUNS) / 1e3);
    }
    fflush(stdout);
}

/* Medians, field by field, of @n results. */
static struct result median_of(const struct result *rs, int n)
{
    struct result m;
    double v[RUNS];

#define MED(f)                                                                                     \
    do {                                                                                           \
        for (int i = 0; i < n; i++) {                                                              \
            v[i] = rs[i].f;                                                                        \
        }                                                                                          \
        m.f = bench_median(v, (size_t)n);                                                          \
    } while (0)
    MED(rate);
    MED(p50);
    MED(p99);
    MED(max);
    MED(lookups);
    MED(degraded);
    MED(batch);
    MED(trips);
#undef MED
    return m;
}

static void load_average(const char *when)
{
    double la[3];

    if (getloadavg(la, 3) == 3) {
        printf("load average %s: %.2f %.2f %.2f\n", when, la[0], la[1], la[2]);
    }
}

int main(int argc, char **argv)
{
    long events = argc > 1 ? strtol(argv[1], NULL, 10) : 1000000;
    long ncores = sysconf(_SC_NPROCESSORS_ONLN);
    long rates[4] = {100000, 200000};
    int nrates = 2;
    struct result sat[CFG__COUNT][RUNS], msat[CFG__COUNT];
    struct result paced[4][CFG__COUNT][RUNS], mpaced[4][CFG__COUNT];
    long loaded;

    nworkers = argc > 2 ? (int)strtol(argv[2], NULL, 10) : (int)ncores;
    if (argc > 3) {
        char *p = argv[3];
        nrates = 0;
        while (*p && nrates < 4) {
            rates[nrates++] = strtol(p, &p, 10);
            p += *p == ',';
        }
    }
    if (events < 1000 || nworkers < 1 || nrates < 1) {
        fprintf(stderr, "usage: bench_store [events] [workers] [rate,rate...]\n");
        return 1;
    }
    signal(SIGPIPE, SIG_IGN); /* hiredis writes with write(2) */
    rts_log_set_level(getenv("BENCH_LOG") ? RTS_LOG_INFO : RTS_LOG_ERROR); /* trips are counted */
    printf("bench_store: demo feature set (11 features) + 2 lookups from Redis (+1 expression on "
           "them), fallback score, 3 rules, null sink\n");
    printf("machine: %ld online cores, shared by the source thread, %d worker%s and "
           "redis-server\n",
           ncores, nworkers, nworkers > 1 ? "s" : "");
    load_average("at start");
    if (redis_start(&server, NULL) != 0) {
        fprintf(stderr, "bench_store: cannot start redis-server\n");
        redis_stop(&server);
        return 1;
    }
    loaded = load_profiles();
    if (loaded <= 0) {
        redis_stop(&server);
        return 1;
    }
    printf("redis-server on 127.0.0.1:%d: %ld card profiles (examples/fraud/profiles.csv); "
           "generator over 50,000 cards\n",
           server.port, loaded);
    for (int c = 0; c < CFG__COUNT; c++) {
        printf("  %-9s %s\n", cfg_name[c], cfg_desc[c]);
    }

    /* S: saturated; the per-event configuration is far slower: fewer events */
    for (int i = 0; i < RUNS; i++) {
        for (int c = 0; c < CFG__COUNT; c++) {
            sat[c][i] = run_saturated((enum cfg)c, c == CFG_PER_EVENT ? events / 10 : events);
        }
    }
    printf("S. saturated, %d worker%s, medians of %d interleaved runs:\n", nworkers,
           nworkers > 1 ? "s" : "", RUNS);
    printf("   %-9s %12s %12s %14s %10s %9s %6s\n", "", "events/s", "p99 (queues)", "lookups/s",
           "degraded", "batch", "trips");
    for (int c = 0; c < CFG__COUNT; c++) {
        msat[c] = median_of(sat[c], RUNS);
        printf("   %-9s %12.0f %9.1f ms %14.0f %9.2f%% %9.1f %6.0f\n", cfg_name[c], msat[c].rate,
               msat[c].p99 / 1e3, msat[c].lookups, 100 * msat[c].degraded, msat[c].batch,
               msat[c].trips);
    }
    fflush(stdout);

    /* P: fixed offered rates (the per-event configuration cannot keep up) */
    for (int k = 0; k < nrates; k++) {
        for (int i = 0; i < RUNS; i++) {
            for (int c = 0; c < CFG_PER_EVENT; c++) {
                paced[k][c][i] = run_paced((enum cfg)c, rates[k]);
            }
        }
        printf("P. offered %ld events/s, %d worker%s, %d s after a %d s warm-up, medians of %d "
               "interleaved runs:\n",
               rates[k], nworkers, nworkers > 1 ? "s" : "", MEASURE_S, WARM_S, RUNS);
        printf("   %-9s %12s %10s %10s %10s %10s %9s %6s\n", "", "achieved/s", "p50", "p99", "max",
               "degraded", "batch", "trips");
        for (int c = 0; c < CFG_PER_EVENT; c++) {
            struct result *m = &mpaced[k][c];
            *m = median_of(paced[k][c], RUNS);
            printf("   %-9s %12.0f %7.0f us %7.2f ms %7.1f ms %9.2f%% %9.1f %6.0f\n", cfg_name[c],
                   m->rate, m->p50, m->p99 / 1e3, m->max / 1e3, 100 * m->degraded, m->batch,
                   m->trips);
        }
        fflush(stdout);
    }

    bench_hang(rates[0]);
    bench_cold_start(rates[0]);

    /* G: the goal, with lookups */
    for (int c = CFG_BATCH; c <= CFG_CACHED; c++) {
        int k200 = -1;
        for (int k = 0; k < nrates; k++) {
            if (rates[k] >= (long)GOAL_RATE && k200 < 0) {
                k200 = k;
            }
        }
        printf("G. goal >= 200,000 events/s with lookups and p99 <= 5 ms (%s): saturated %.0f "
               "events/s",
               cfg_name[c], msat[c].rate);
        if (k200 >= 0) {
            const struct result *m = &mpaced[k200][c];
            int met = msat[c].rate >= GOAL_RATE && m->rate >= 0.98 * (double)rates[k200] &&
                      m->p99 <= GOAL_P99_US && m->degraded < 0.01 && m->trips == 0;
            printf("; at %ld offered: %.0f achieved, p99 %.2f ms, %.2f%% degraded: %s\n",
                   rates[k200], m->rate, m->p99 / 1e3, 100 * m->degraded, met ? "MET" : "NOT MET");
        } else {
            printf("; no offered rate >= 200,000 in this run\n");
        }
    }
    printf("   pipelined vs one request per event, lookups sent to Redis: %.0f vs %.0f per "
           "second (%.1fx); see bench_lookup for the store alone\n",
           msat[CFG_BATCH].lookups, msat[CFG_PER_EVENT].lookups,
           msat[CFG_PER_EVENT].lookups > 0 ? msat[CFG_BATCH].lookups / msat[CFG_PER_EVENT].lookups
                                           : 0.0);
    load_average("at end");
    redis_stop(&server);
    return 0;
}
