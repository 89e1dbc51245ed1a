/*
 * test_noalloc.c - the per-event path does not allocate.
 *
 * Linked with -Wl,--wrap=malloc,--wrap=calloc,--wrap=realloc (CMakeLists.txt),
 * so every allocation the project's code makes goes through the counters
 * below. After set-up and a warm-up, decoding, evaluating (features, score,
 * rules, alerts) and formatting score and DLQ records for thousands of
 * events - new keys, known keys, dense sketches, bad input - must not
 * allocate once.
 */
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "daemon/config.h"
#include "daemon/pipeline.h"
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

TEST(per_event_path)
{
    struct rts_errbuf eb = {0};
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
        return;
    }
    rts_gen_opts_default(&go);
    go.cards = 2000; /* more keys than max_keys: evictions on the path too */
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
    fprintf(stderr, "  %ld alerts, %ld bad events, %zu bytes formatted\n", alerts, bad, bytes);
    free(dlq);
    free(out);
    free(rec);
    rts_eval_fini(&e);
    rts_gen_free(g);
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
    return TEST_EXIT();
}
