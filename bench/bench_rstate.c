/*
 * bench_rstate.c - the feature stage with the Redis window state against
 * the local state: events per second and the p99 time of one batch through
 * rts_pipeline_eval_batch (aggregates, expressions, fallback score), for
 * the demo's aggregate set (count 5m, sum / max 24h, mean 30d, distinct
 * 24h, mean of the last 5, since_last) over generated card events. The
 * redis-server is started here (free loopback port, no persistence) and
 * runs on the same cores as the benchmark: its work is in the figures.
 * Each figure is the median of RUNS runs, each run on a fresh key prefix
 * (an empty state), so runs do the same work. Then the same set with
 * exact: 64 on the 5m count and the 24h sum and max (two exact windows),
 * run by run interleaved with the set without, in each state.
 */
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/clock.h"
#include "daemon/config.h"
#include "daemon/pipeline.h"
#include "source/gen.h"

#include "../tests/lib/redis_server.h"
#include "bench.h"

#define RUNS 5
#define NEV 32768
#define MAXB 256

static struct redis_server server; /* the benchmark's own redis-server */

static const char *yaml_head =
    "pipeline: bench\n"
    "workers: 1\n"
    "source: {type: file, path: /dev/null}\n"
    "event:\n"
    "  id: txn_id\n"
    "  key: card_id\n"
    "  time: ts\n"
    "  fields:\n"
    "    card_id: {type: string, max_len: 64}\n"
    "    amount: {type: float, required: true, min: 0}\n"
    "    merchant_id: {type: string}\n"
    "    country: {type: string, default: \"US\"}\n"
    "features:\n"
    "  - {name: amount_log,      expr: \"log1p(amount)\"}\n"
    "  - {name: txn_count_5m,    agg: count, window: 5m%s}\n"
    "  - {name: amount_sum_24h,  agg: sum,  of: amount, window: 24h%s}\n"
    "  - {name: amount_mean_30d, agg: mean, of: amount, window: 30d}\n"
    "  - {name: amount_max_24h,  agg: max,  of: amount, window: 24h%s}\n"
    "  - {name: merchants_24h,   agg: distinct, of: merchant_id, window: 24h}\n"
    "  - {name: amount_last5,    agg: mean, of: amount, last: 5}\n"
    "  - {name: secs_since_last, agg: since_last}\n"
    "  - {name: amount_ratio,    expr: \"amount / (amount_mean_30d + 1)\"}\n"
    "fallback: {score: \"min(1, amount / 20000 + (txn_count_5m > 10) * 0.5)\"}\n"
    "sink: {type: null}\n"
    "limits: {max_event_bytes: 1024, max_keys: 100000}\n";

static int with_exact; /* exact: 64 on the 5m count and the 24h sum and max */

static struct rts_pipeline *build(int redis, int run, struct rts_errbuf *eb)
{
    char yaml[8192], head[4096];
    const char *x = with_exact ? ", exact: 64" : "";
    struct rts_pipeline_conf *c;

    snprintf(head, sizeof(head), yaml_head, x, x, x);
    if (redis) {
        snprintf(yaml, sizeof(yaml),
                 "%sstate: {type: redis, addr: \"127.0.0.1:%d\", timeout: 5s, "
                 "prefix: \"b%d:\"}\n",
                 head, server.port, run);
    } else {
        snprintf(yaml, sizeof(yaml), "%s", head);
    }
    c = rts_pipeline_conf_parse("bench.yaml", yaml, strlen(yaml), eb);
    return c ? rts_pipeline_new(c, eb) : NULL;
}

static char *arena;
static size_t offs[NEV];

/* NEV generated events over 2000 cards, decoded against @s. */
static int make_events(const struct rts_schema *s)
{
    struct rts_gen_opts o;
    struct rts_errbuf eb = {0};
    struct rts_gen *g;
    size_t cap = rts_decode_record_max(s, 1024), used = 0;

    rts_gen_opts_default(&o);
    o.seed = 3;
    o.cards = 2000;
    o.events_per_sec = 20;
    g = rts_gen_new(&o, &eb);
    arena = malloc(NEV * cap);
    if (!g || !arena) {
        return -1;
    }
    for (size_t i = 0; i < NEV; i++) {
        char line[RTS_GEN_LINE_MAX];
        struct rts_decode_err err;
        size_t len = rts_gen_next(g, line, sizeof(line));
        size_t sz = rts_decode(s, line, len, 1024, 0, arena + used, cap, &err);
        if (!sz) {
            return -1;
        }
        offs[i] = used;
        used += sz;
    }
    rts_gen_free(g);
    return 0;
}

struct result {
    double eps, p99_us, failed;
};

/* One run: every event, batches of @batch; events/s and the p99 batch. */
static int run_once(int redis, int run, size_t batch, size_t nev, struct result *r)
{
    static double lat[NEV];
    struct rts_errbuf eb = {0};
    struct rts_pipeline *p = build(redis, run, &eb);
    struct rts_eval e = {0};
    struct rts_event evs[MAXB];
    size_t nb = 0, degraded = 0;
    uint64_t t0;

    if (!p || rts_eval_init(&e, p, 100000, batch, &eb)) {
        fprintf(stderr, "bench_rstate: %s\n", eb.msg);
        rts_pipeline_free(p);
        return -1;
    }
    t0 = rts_now_ns();
    for (size_t at = 0; at + batch <= nev; at += batch) {
        uint64_t b0 = rts_now_ns();
        for (size_t i = 0; i < batch; i++) {
            rts_event_view(p->conf->schema, arena + offs[at + i], &evs[i], e.rows[i].vals);
        }
        rts_pipeline_eval_batch(p, &e, evs, batch);
        lat[nb++] = (double)(rts_now_ns() - b0) / 1e3;
        for (size_t i = 0; i < batch; i++) {
            degraded += e.rows[i].degraded != 0;
        }
    }
    r->eps = (double)(nb * batch) / ((double)(rts_now_ns() - t0) / 1e9);
    qsort(lat, nb, sizeof(*lat), bench_cmp_double);
    r->p99_us = lat[nb * 99 / 100];
    r->failed = (double)degraded;
    rts_eval_fini(&e);
    rts_pipeline_free(p);
    return 0;
}

static void bench(const char *what, int redis, size_t batch, size_t nev, int *run)
{
    double eps[RUNS], p99[RUNS], failed = 0;

    for (int k = 0; k < RUNS; k++) {
        struct result r;
        if (run_once(redis, (*run)++, batch, nev, &r)) {
            return;
        }
        eps[k] = r.eps;
        p99[k] = r.p99_us;
        failed += r.failed;
    }
    printf("%-6s state, batch %3zu: %9.0f events/s   p99 per batch %9.1f us   (%.0f us/event)%s\n",
           what, batch, bench_median(eps, RUNS), bench_median(p99, RUNS),
           1e6 / bench_median(eps, RUNS), failed ? "   SOME EVENTS DEGRADED" : "");
}

/* Without and with the exact windows, runs interleaved: events/s of each
 * and their ratio. */
static void bench_exact(const char *what, int redis, size_t batch, size_t nev, int *run)
{
    double eps[2][RUNS], failed = 0;

    for (int k = 0; k < RUNS; k++) {
        for (int x = 0; x < 2; x++) {
            struct result r;
            with_exact = x;
            if (run_once(redis, (*run)++, batch, nev, &r)) {
                with_exact = 0;
                return;
            }
            eps[x][k] = r.eps;
            failed += r.failed;
        }
    }
    with_exact = 0;
    {
        double b = bench_median(eps[0], RUNS), e = bench_median(eps[1], RUNS);
        printf("%-6s state, batch %3zu: %9.0f events/s bucketed, %9.0f with 2 exact windows "
               "(exact: 64): %.2fx%s\n",
               what, batch, b, e, e / b, failed ? "   SOME EVENTS DEGRADED" : "");
    }
}

int main(void)
{
    struct rts_errbuf eb = {0};
    struct rts_pipeline *p;
    int run = 0;

    signal(SIGPIPE, SIG_IGN);
    printf("machine: %ld online cores; redis-server runs on the same cores as the benchmark\n",
           sysconf(_SC_NPROCESSORS_ONLN));
    p = redis_start(&server, NULL) == 0 ? build(0, 0, &eb) : NULL;
    if (!p || make_events(p->conf->schema)) {
        fprintf(stderr, "bench_rstate: cannot start redis-server or build the events: %s\n",
                eb.msg);
        redis_stop(&server);
        return 1;
    }
    rts_pipeline_free(p);
    printf("%d events, 2000 cards, the demo's 7 aggregates (3 rings, distinct, last 5, "
           "since_last)\n", NEV);
    bench("local", 0, 64, NEV, &run);
    bench("redis", 1, 64, NEV, &run);
    bench("local", 0, 256, NEV, &run);
    bench("redis", 1, 256, NEV, &run);
    bench("redis", 1, 1, NEV / 16, &run);
    bench_exact("local", 0, 64, NEV, &run);
    bench_exact("redis", 1, 64, NEV, &run);
    redis_stop(&server);
    free(arena);
    return 0;
}
