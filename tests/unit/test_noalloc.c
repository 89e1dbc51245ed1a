/*
 * test_noalloc.c - the per-event path does not allocate.
 *
 * Linked with -Wl,--wrap=malloc,--wrap=calloc,--wrap=realloc (CMakeLists.txt),
 * so every allocation the project's code makes goes through the counters
 * below. After set-up and a warm-up, decoding, evaluating (features, score,
 * rules, alerts) and formatting score and DLQ records for thousands of
 * events - new keys, known keys, distinct values moving to list blocks and
 * on to dense sketches, bad input - must not allocate once.
 */
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "daemon/config.h"
#include "daemon/pipeline.h"
#include "feature/lookup.h"
#include "source/gen.h"
#include "test.h"

void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t m);
void *__real_realloc(void *p, size_t n);
void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t n, size_t m);
void *__wrap_realloc(void *p, size_t n);

static long allocations;

void *__wrap_malloc(size_t n)
{
    allocations++;
    return __real_malloc(n);
}

void *__wrap_calloc(size_t n, size_t m)
{
    allocations++;
    return __real_calloc(n, m);
}

void *__wrap_realloc(void *p, size_t n)
{
    allocations++;
    return __real_realloc(p, n);
}

static const char *yaml =
    "pipeline: noalloc\n"
    "source: {type: generator}\n"
    "event:\n"
    "  id: txn_id\n"
    "  key: card_id\n"
    "  time: ts\n"
    "  fields:\n"
    "    card_id: {type: string, required: true, max_len: 64}\n"
    "    amount: {type: float, required: true, min: 0}\n"
    "    merchant_id: {type: string}\n"
    "    country: {type: string, default: \"US\"}\n"
    "features:\n"
    "  - {name: amount_log, expr: \"log1p(amount)\"}\n"
    "  - {name: n5m, agg: count, window: 5m}\n"
    "  - {name: s24h, agg: sum, of: amount, window: 24h}\n"
    "  - {name: mean30d, agg: mean, of: amount, window: 30d}\n"
    "  - {name: max24h, agg: max, of: amount, window: 24h}\n"
    "  - {name: merchants, agg: distinct, of: merchant_id, window: 24h, exact: 2}\n"
    "  - {name: amounts, agg: distinct, of: amount, window: 24h}\n"
    "  - {name: last5, agg: mean, of: amount, last: 5}\n"
    "  - {name: since, agg: since_last}\n"
    "  - {name: foreign, expr: \"country != 'US'\"}\n"
    "rules:\n"
    "  - {when: \"score >= 0.5\", decision: block}\n"
    "  - {decision: allow}\n"
    "fallback: {score: \"min(1, amount / 2000 + (n5m > 3) * 0.5)\"}\n"
    "sink: {type: null}\n"
    "alerts: {when: \"decision == 'block'\", sink: {type: null}}\n"
    "limits: {max_keys: 500}\n";

/* Two passes of 20,000 generated events over @cards cards: the second must
 * not allocate. Returns the dense sketches in use at the end. */
static uint64_t per_event_path_over(unsigned cards)
{
    struct rts_errbuf eb = {0};
    struct rts_feature_stats fs = {0};
    struct rts_pipeline_conf *c = rts_pipeline_conf_parse("noalloc.yaml", yaml, strlen(yaml), &eb);
    struct rts_pipeline *p = c ? rts_pipeline_new(c, &eb) : NULL;
    struct rts_gen_opts go;
    struct rts_gen *g;
    struct rts_eval e;
    char line[RTS_GEN_LINE_MAX], *rec, *out, *dlq;
    size_t rec_cap, out_cap, dlq_cap, bytes = 0;
    long before, alerts = 0, bad = 0;

    CHECK(p != NULL);
    if (!p) {
        fprintf(stderr, "%s\n", eb.msg);
        return 0;
    }
    rts_gen_opts_default(&go);
    go.cards = cards;
    go.bad_rate = 0.02;
    g = rts_gen_new(&go, &eb);
    CHECK_INT(rts_eval_init(&e, p, 500, 1, &eb), RTS_ERR_OK);
    rec_cap = rts_decode_record_max(p->conf->schema, p->conf->limits.max_event_bytes);
    rec = aligned_alloc(8, (rec_cap + 7) & ~(size_t)7);
    out_cap = rts_pipeline_record_max(p);
    out = malloc(out_cap);
    dlq_cap = rts_dlq_record_max(p->conf->limits.max_event_bytes);
    dlq = malloc(dlq_cap);

    for (int pass = 0; pass < 2; pass++) {
        before = allocations;
        for (int i = 0; i < 20000; i++) {
            struct rts_decode_err err;
            struct rts_event ev;
            size_t n = rts_gen_next(g, line, sizeof(line)) - 1, size;

            size = rts_decode(p->conf->schema, line, n, p->conf->limits.max_event_bytes, 0, rec,
                              rec_cap, &err);
            if (!size) {
                bytes += rts_dlq_format(dlq, dlq_cap, rts_dlq_reason_name(err.reason), NULL,
                                        "decode", "generator", -1, i, err.msg, line, n, 0);
                bad++;
                continue;
            }
            rts_event_view(p->conf->schema, rec, &ev, e.rows[0].vals);
            rts_pipeline_eval(p, &e, &ev);
            alerts += rts_pipeline_is_alert(p, &e.rows[0]);
            bytes += rts_pipeline_format_score(p, &e.rows[0], &ev, 1, 1, out, out_cap);
        }
        if (pass == 1) { /* pass 0 is the warm-up */
            CHECK_INT(allocations - before, 0);
        }
    }
    CHECK(bytes > 0);
    CHECK(alerts > 0);
    CHECK(bad > 0);
    rts_feature_worker_stats(e.fw, &fs);
    fprintf(stderr,
            "  %u cards: %ld alerts, %ld bad events, %zu bytes formatted, %llu list blocks, "
            "%llu dense sketches\n",
            cards, alerts, bad, bytes, (unsigned long long)fs.lists_in_use,
            (unsigned long long)fs.sketches_in_use);
    free(dlq);
    free(out);
    free(rec);
    rts_eval_fini(&e);
    rts_gen_free(g);
    rts_pipeline_free(p);
    return fs.sketches_in_use;
}

TEST(per_event_path)
{
    per_event_path_over(2000); /* more keys than max_keys: evictions on the path too */
}

/* A few busy cards: each sees hundreds of amounts, so its distinct values go
 * inline -> list block -> dense sketch on the path. */
TEST(dense_sketches)
{
    CHECK(per_event_path_over(10) > 0);
}

/* The lookup stage with a file store and a small cache (evictions, expiries)
 * in front of the same evaluation: batches of 64 events, no allocation. */
TEST(lookup_stage)
{
    struct rts_errbuf eb = {0};
    char text[4096];
    struct rts_pipeline_conf *c;
    struct rts_pipeline *p;
    struct rts_lookup *l = NULL;
    struct rts_lookup_worker *w = NULL;
    struct rts_gen_opts go;
    struct rts_gen *g = NULL;
    struct rts_eval e;
    enum { B = 64 };
    char line[RTS_GEN_LINE_MAX], *recs = NULL;
    size_t rec_cap;
    struct rts_event evs[B];
    double out[B * 4];
    uint32_t deg[B];
    uint64_t now = 1000000000;
    long before;
    double sum = 0;

    snprintf(text, sizeof(text),
             "pipeline: noalloc\n"
             "source: {type: generator}\n"
             "event: {id: txn_id, key: card_id, time: ts, fields: {card_id: {type: string, "
             "max_len: 64}, amount: {type: float}}}\n"
             "features:\n"
             "  - {name: avg, lookup: {store: p, key: \"card:{card_id}\", field: avg_spend_90d, "
             "max_age: 24h, default: 0}}\n"
             "  - {name: ratio, expr: \"amount / (avg + 1)\"}\n"
             "  - {name: cb, lookup: {store: p, key: \"card:{card_id}\", field: chargebacks_1y}}\n"
             "stores: {p: {type: file, path: %s/examples/fraud/profiles.csv, cache_ttl: 5ms, "
             "cache_max: 256}}\n"
             "fallback: {score: \"min(1, ratio / 10)\"}\n"
             "sink: {type: null}\n",
             RTS_SOURCE_DIR);
    c = rts_pipeline_conf_parse("noalloc.yaml", text, strlen(text), &eb);
    CHECK(c != NULL);
    if (!c) {
        fprintf(stderr, "%s\n", eb.msg);
        return;
    }
    l = rts_lookup_new(c->schema, c->features, c->nfeatures, c->stores, c->nstores, &eb);
    p = rts_pipeline_new(c, &eb); /* owns c from here */
    CHECK(l != NULL && p != NULL);
    if (!l || !p) {
        fprintf(stderr, "%s\n", eb.msg);
        rts_lookup_free(l);
        rts_pipeline_free(p);
        return;
    }
    w = rts_lookup_worker_new(l, B, &eb);
    rts_gen_opts_default(&go);
    go.seed = 42;
    go.cards = 50000;
    g = rts_gen_new(&go, &eb);
    CHECK_INT(rts_eval_init(&e, p, 5000, B, &eb), RTS_ERR_OK);
    rec_cap = (rts_decode_record_max(p->conf->schema, 4096) + 7) & ~(size_t)7;
    recs = aligned_alloc(8, B * rec_cap);
    CHECK(w && g && recs && rts_lookup_count(l) == 2);
    for (int pass = 0; w && g && recs && pass < 2; pass++) {
        before = allocations;
        for (int batch = 0; batch < 300; batch++) {
            size_t n = 0;
            while (n < B) {
                struct rts_decode_err err;
                size_t len = rts_gen_next(g, line, sizeof(line)) - 1;
                char *rec = recs + n * rec_cap;
                if (rts_decode(p->conf->schema, line, len, 4096, 0, rec, rec_cap, &err)) {
                    rts_event_view(p->conf->schema, rec, &evs[n], e.rows[n].vals);
                    n++;
                }
            }
            now += 1000000; /* 1 ms per batch: cache entries expire every 5 batches */
            /* the worker's batch: lookups, their values into the frames, then
             * features, score and rules */
            rts_lookup_batch(w, evs, n, now, 0, out, deg);
            for (size_t i = 0; i < n; i++) {
                rts_lookup_fill(l, out + i * rts_lookup_count(l), e.rows[i].frame, p->nfields);
            }
            rts_pipeline_eval_batch(p, &e, evs, n);
            for (size_t i = 0; i < n; i++) {
                sum += e.rows[i].frame[p->slot_score].num;
            }
        }
        if (pass == 1) {
            CHECK_INT(allocations - before, 0);
        }
    }
    if (w && g && recs) {
        /* the expression feature read the looked-up value: ratio = amount / (avg + 1) */
        const union rts_val *fr = e.rows[0].frame;
        int amount = rts_schema_find(p->conf->schema, "amount", 6);
        CHECK_NEAR(fr[p->nfields + 0].num, out[0], 0);
        CHECK_NEAR(fr[p->nfields + 1].num, fr[amount].num / (out[0] + 1), 1e-12);
    }
    {
        struct rts_lookup_feature_stats fs[2];
        struct rts_lookup_store_stats ss[1];
        memset(fs, 0, sizeof(fs));
        memset(ss, 0, sizeof(ss));
        rts_lookup_worker_stats_add(w, fs, ss);
        CHECK(fs[0].values > 0 && fs[0].stale > 0 && fs[0].missing > 0);
        CHECK(ss[0].hits > 0 && ss[0].calls > 0);
        fprintf(stderr, "  lookups: %llu values, %llu stale, %llu missing; %llu hits, %llu calls\n",
                (unsigned long long)fs[0].values, (unsigned long long)fs[0].stale,
                (unsigned long long)fs[0].missing, (unsigned long long)ss[0].hits,
                (unsigned long long)ss[0].calls);
    }
    CHECK(sum > 0);
    free(recs);
    rts_eval_fini(&e);
    rts_gen_free(g);
    rts_lookup_worker_free(w);
    rts_lookup_free(l);
    rts_pipeline_free(p);
}

/* The counters see the library's allocations: the check above can fail. */
TEST(counter_works)
{
    long before = allocations;
    struct rts_buf b = {0};

    CHECK_INT(rts_buf_append(&b, "x", 1), RTS_ERR_OK); /* grows with realloc */
    CHECK(allocations - before >= 1);
    rts_buf_fini(&b);
}

int main(void)
{
    RUN(counter_works);
    RUN(per_event_path);
    RUN(dense_sketches);
    RUN(lookup_stage);
    return TEST_EXIT();
}
