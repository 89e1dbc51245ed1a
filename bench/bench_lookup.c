/*
 * bench_lookup.c - online store lookups per second against a redis-server
 * the benchmark starts itself (free loopback port, no persistence): one
 * pipelined HMGET round trip per batch of 64 keys, against one request per
 * key (what a per-event lookup would do). Also the lookup stage (two
 * features, one key per event) with its cache off and on, and the file
 * store. Each figure is the median of RUNS runs; the machine's cores are
 * printed first, since the server shares them with the benchmark.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conf/conf.h"
#include "core/clock.h"
#include "feature/lookup.h"
#include "feature/store.h"

#include "bench.h"
#include "../tests/lib/redis_server.h"

#define RUNS 5
#define NKEYS 100000
#define BATCH 64

static struct redis_server server;

static char keys[NKEYS][24];
static struct rts_str kstr[NKEYS];
static uint64_t rng = 0x9E3779B97F4A7C15ULL;

static uint32_t rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)(rng % NKEYS);
}

/* Lookups per second of @total keys asked @per_call at a time. */
static double store_rate(struct rts_store *st, void *conn, size_t total, size_t per_call)
{
    struct rts_str q_keys[BATCH];
    const char *fields[2] = {"avg_spend_90d", "chargebacks_1y"};
    double vals[BATCH * 2];
    int64_t upd[BATCH];
    struct rts_errbuf eb = {0};
    uint64_t t0 = rts_now_ns();
    size_t failed = 0;

    for (size_t done = 0; done < total; done += per_call) {
        struct rts_store_query q = {per_call, q_keys, 2, fields, vals, upd, 0};
        for (size_t i = 0; i < per_call; i++) {
            q_keys[i] = kstr[rnd()];
        }
        failed += rts_store_lookup(st, conn, &q, &eb) != RTS_STORE_OK;
    }
    if (failed) {
        fprintf(stderr, "bench_lookup: %zu calls failed: %s\n", failed, eb.msg);
    }
    return (double)total / ((double)(rts_now_ns() - t0) / 1e9);
}

/* Events per second through the lookup stage, batches of @n events. */
static double stage_rate(struct rts_lookup_worker *w, size_t total, size_t n)
{
    static union rts_val vals[BATCH][2];
    static struct rts_event ev[BATCH];
    double out[BATCH * 2];
    uint64_t t0 = rts_now_ns();

    for (size_t done = 0; done < total; done += n) {
        for (size_t i = 0; i < n; i++) {
            uint32_t k = rnd();
            vals[i][0].str.p = keys[k] + 5; /* "card:" + card id */
            vals[i][0].str.n = kstr[k].n - 5;
            ev[i].vals = vals[i];
            ev[i].ts_ms = 1700000000000;
        }
        rts_lookup_batch(w, ev, n, rts_now_ns(), 0, out, NULL);
    }
    return (double)total / ((double)(rts_now_ns() - t0) / 1e9);
}

static struct rts_schema *make_schema(void)
{
    struct rts_schema *s = rts_schema_new();
    struct rts_field_spec f;
    struct rts_errbuf eb = {0};

    memset(&f, 0, sizeof(f));
    f.name = "card_id";
    f.type = RTS_FT_STRING;
    f.max_len = 16;
    if (rts_schema_add(s, &f, &eb) || rts_schema_set_roles(s, NULL, "card_id", NULL, &eb)) {
        fprintf(stderr, "bench_lookup: %s\n", eb.msg);
    }
    return s;
}

static void stage_bench(const char *what, struct rts_schema *schema, const char *yaml,
                        const struct rts_store_ops *ops, int64_t ttl_ms, size_t total)
{
    struct rts_errbuf eb = {0};
    struct rts_conf *doc = rts_conf_parse("bench", yaml, strlen(yaml), &eb);
    struct rts_feature_def defs[2];
    struct rts_store_def sd;
    struct rts_lookup *l;
    struct rts_lookup_worker *w;
    double r64[RUNS], r1[RUNS];

    memset(defs, 0, sizeof(defs));
    defs[0].name = "avg_spend_90d";
    defs[0].kind = RTS_FEAT_LOOKUP;
    defs[0].store = "p";
    defs[0].key = "card:{card_id}";
    defs[0].field = "avg_spend_90d";
    defs[0].def = 0;
    defs[1] = defs[0];
    defs[1].name = defs[1].field = "chargebacks_1y";
    memset(&sd, 0, sizeof(sd));
    sd.name = "p";
    sd.path = "stores.p";
    sd.ops = ops;
    sd.node = rts_conf_root(doc);
    sd.updated_field = "_updated_at";
    sd.cache_ttl_ms = ttl_ms;
    sd.cache_max = 1u << 20;
    l = rts_lookup_new(schema, defs, 2, &sd, 1, &eb);
    w = l ? rts_lookup_worker_new(l, BATCH, &eb) : NULL;
    if (!w) {
        fprintf(stderr, "bench_lookup: %s\n", eb.msg);
        goto out;
    }
    stage_rate(w, total / 4, BATCH); /* warm: connections, cache */
    for (int r = 0; r < RUNS; r++) {
        r64[r] = stage_rate(w, total, BATCH);
        r1[r] = stage_rate(w, total / (ttl_ms ? 1 : 16), 1);
    }
    printf("lookup stage, %-30s: batch 64 %9.0f events/s   batch 1 %9.0f events/s\n", what,
           bench_median(r64, RUNS), bench_median(r1, RUNS));
out:
    rts_lookup_worker_free(w);
    rts_lookup_free(l);
    rts_conf_free(doc);
}

int main(void)
{
    struct rts_errbuf eb = {0};
    char yaml[256], path[128];
    struct rts_conf *doc = NULL;
    struct rts_store *st = NULL;
    struct rts_store_env env = {"p", "_updated_at"};
    struct rts_schema *schema = make_schema();
    void *conn = NULL;
    double pipelined[RUNS], single[RUNS];
    int port = -1;
    FILE *f;

    signal(SIGPIPE, SIG_IGN);
    printf("machine: %ld online cores (redis-server runs beside the benchmark)\n",
           sysconf(_SC_NPROCESSORS_ONLN));
    if (redis_start(&server, NULL) != 0) {
        fprintf(stderr, "bench_lookup: cannot start redis-server\n");
        redis_stop(&server);
        return 1;
    }
    port = server.port;
    for (int i = 0; i < NKEYS; i++) {
        kstr[i].n = (uint32_t)snprintf(keys[i], sizeof(keys[i]), "card:c-%d", i);
        kstr[i].p = keys[i];
    }
    /* the data: a CSV, loaded into redis with the store's bulk write and
     * served by the file store too */
    snprintf(path, sizeof(path), "%s/p.csv", server.dir);
    f = fopen(path, "w");
    if (!f) {
        return 1;
    }
    fprintf(f, "key,avg_spend_90d,chargebacks_1y,_updated_at\n");
    for (int i = 0; i < NKEYS; i++) {
        fprintf(f, "%s,%d.%02d,%d,1700000000000\n", keys[i], 10 + i % 90, i % 100, i % 3);
    }
    fclose(f);
    snprintf(yaml, sizeof(yaml), "{addr: \"127.0.0.1:%d\", timeout: 1s}", port);
    doc = rts_conf_parse("bench", yaml, strlen(yaml), &eb);
    st = doc ? rts_store_open(&rts_store_redis, rts_conf_root(doc), "stores.p", &env, &eb) : NULL;
    conn = st ? rts_store_conn_new(st, &eb) : NULL;
    if (!conn) {
        fprintf(stderr, "bench_lookup: %s\n", eb.msg);
        goto out;
    }
    {
        const char *fields[2] = {"avg_spend_90d", "chargebacks_1y"};
        static struct rts_str cells[1000 * 2];
        static char text[1000][2][16];
        int64_t upd[1000];
        uint64_t t0 = rts_now_ns();
        for (int base = 0; base < NKEYS; base += 1000) {
            struct rts_store_rows rows = {1000, 2, fields, kstr + base, cells, upd, 0};
            for (int i = 0; i < 1000; i++) {
                int k = base + i;
                cells[2 * i].n = (uint32_t)snprintf(text[i][0], 16, "%d.%02d", 10 + k % 90, k % 100);
                cells[2 * i].p = text[i][0];
                cells[2 * i + 1].n = (uint32_t)snprintf(text[i][1], 16, "%d", k % 3);
                cells[2 * i + 1].p = text[i][1];
                upd[i] = 1700000000000;
            }
            if (rts_store_write(st, conn, &rows, &eb)) {
                fprintf(stderr, "bench_lookup: %s\n", eb.msg);
                goto out;
            }
        }
        printf("bulk write (HSET, 1000 per pipeline), %d keys: %.0f rows/s\n", NKEYS,
               NKEYS / ((double)(rts_now_ns() - t0) / 1e9));
    }
    store_rate(st, conn, 20000, 1); /* warm */
    for (int r = 0; r < RUNS; r++) {
        pipelined[r] = store_rate(st, conn, 400000, BATCH);
        single[r] = store_rate(st, conn, 40000, 1);
    }
    {
        double p = bench_median(pipelined, RUNS), s1 = bench_median(single, RUNS);
        printf("redis HMGET, 2 fields + update time, one round trip per batch of 64: %9.0f "
               "lookups/s\n", p);
        printf("redis HMGET, one request per key (per-event lookups)           : %9.0f "
               "lookups/s (%.1f us each)\n", s1, 1e6 / s1);
        printf("pipelining gain: %.1fx\n", p / s1);
    }
    stage_bench("redis, no cache", schema, yaml, &rts_store_redis, 0, 200000);
    stage_bench("redis, cache (warm: ~all hits)", schema, yaml, &rts_store_redis, 3600000, 2000000);
    snprintf(yaml, sizeof(yaml), "{path: %s}", path);
    stage_bench("file store, no cache", schema, yaml, &rts_store_file, 0, 2000000);
out:
    rts_store_conn_free(st, conn);
    rts_store_close(st);
    rts_conf_free(doc);
    rts_schema_free(schema);
    redis_stop(&server);
    return 0;
}
