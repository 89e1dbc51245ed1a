/*
 * test_lookup.c - unit tests of the lookup stage (feature/lookup.h) against a
 * fake store whose answers, failures and clock the test controls: key
 * templates (checks, numbers, bools, missing fields, braces), the cache
 * (one fetch per distinct key per batch, hits within cache_ttl, refetch
 * after it, a bounded size), max_age freshness and defaults counted by
 * cause, staleness histograms, the circuit breaker (opens on errors and
 * timeouts, no store call while open, stale-if-error from the cache,
 * degraded masks per store, probes close it again), batches larger than
 * max_batch; then the row reader (CSV quoting, JSON lines), the file store
 * (lookups, reload swapping content while a reader thread runs), and the
 * config (stores:, lookup features, errors with positions).
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/clock.h"
#include "daemon/config.h"
#include "feature/lookup.h"
#include "feature/rows.h"
#include "feature/store.h"
#include "test.h"

#define MS UINT64_C(1000000)
#define SEC (1000 * MS)
#define T0 (100 * SEC) /* the test clock starts here */

/* ---- a fake store ---- */

struct fake_row {
    const char *key;
    double a, b;
    int64_t upd;
};

enum fake_mode { FAKE_OK, FAKE_ERROR, FAKE_TIMEOUT };

static struct fake_row fake_rows[512];
static size_t fake_nrows;
static enum fake_mode fake_mode[2]; /* stores "s0" and "s1" */
static int fake_calls[2];
static size_t fake_asked[2];
static char fake_last[2][8][64]; /* the first keys of the last call */

struct fake_ctx {
    int id;
};

static enum rts_err fake_init(void *ctx, const struct rts_store_env *env, struct rts_errbuf *eb)
{
    struct fake_ctx *f = ctx;

    (void)eb;
    f->id = strcmp(env->name, "s1") == 0;
    return RTS_ERR_OK;
}

static void fake_fini(void *ctx)
{
    (void)ctx;
}

static enum rts_err fake_conn_init(void *ctx, void *conn, struct rts_errbuf *eb)
{
    (void)ctx;
    (void)conn;
    (void)eb;
    return RTS_ERR_OK;
}

static void fake_conn_fini(void *ctx, void *conn)
{
    (void)ctx;
    (void)conn;
}

static double fake_field(const struct fake_row *r, const char *f)
{
    return strcmp(f, "a") == 0 ? r->a : strcmp(f, "b") == 0 ? r->b : NAN;
}

static enum rts_store_status fake_lookup(void *ctx, void *conn, const struct rts_store_query *q,
                                         struct rts_errbuf *eb)
{
    struct fake_ctx *f = ctx;

    (void)conn;
    fake_calls[f->id]++;
    fake_asked[f->id] += q->n;
    for (size_t i = 0; i < q->n && i < 8; i++) {
        snprintf(fake_last[f->id][i], 64, "%.*s", (int)q->keys[i].n, q->keys[i].p);
    }
    if (fake_mode[f->id] == FAKE_ERROR) {
        rts_errf(eb, RTS_ERR_UNAVAIL, 0, 0, "fake: down");
        return RTS_STORE_ERROR;
    }
    if (fake_mode[f->id] == FAKE_TIMEOUT) {
        rts_errf(eb, RTS_ERR_TIMEOUT, 0, 0, "fake: slow");
        return RTS_STORE_TIMEOUT;
    }
    for (size_t i = 0; i < q->n; i++) {
        const struct fake_row *r = NULL;
        for (size_t k = 0; k < fake_nrows; k++) {
            if (strlen(fake_rows[k].key) == q->keys[i].n &&
                memcmp(fake_rows[k].key, q->keys[i].p, q->keys[i].n) == 0) {
                r = &fake_rows[k];
            }
        }
        for (size_t j = 0; j < q->nfields; j++) {
            q->values[i * q->nfields + j] = r ? fake_field(r, q->fields[j]) : NAN;
        }
        q->updated_ms[i] = r ? r->upd : -1;
    }
    return RTS_STORE_OK;
}

static const struct rts_opt fake_opts[] = {RTS_OPT_END};

static const struct rts_store_ops fake_ops = {
    .name = "fake",
    .description = "test double",
    .opts = fake_opts,
    .ctx_size = sizeof(struct fake_ctx),
    .conn_size = 8,
    .init = fake_init,
    .fini = fake_fini,
    .conn_init = fake_conn_init,
    .conn_fini = fake_conn_fini,
    .lookup = fake_lookup,
};

static void fake_reset(void)
{
    fake_nrows = 0;
    memset(fake_mode, 0, sizeof(fake_mode));
    memset(fake_calls, 0, sizeof(fake_calls));
    memset(fake_asked, 0, sizeof(fake_asked));
    memset(fake_last, 0, sizeof(fake_last));
}

static void fake_put(const char *key, double a, double b, int64_t upd)
{
    fake_rows[fake_nrows].key = key;
    fake_rows[fake_nrows].a = a;
    fake_rows[fake_nrows].b = b;
    fake_rows[fake_nrows].upd = upd;
    fake_nrows++;
}

/* ---- schema and events ---- */

enum { F_CARD, F_MERCH, F_AMOUNT, F_MCC, F_FLAG, NF_MAX = 8 };

static struct rts_schema *make_schema(void)
{
    struct rts_schema *s = rts_schema_new();
    struct rts_errbuf eb = {0};
    struct rts_field_spec f;

    memset(&f, 0, sizeof(f));
    f.name = "card_id";
    f.type = RTS_FT_STRING;
    f.max_len = 16;
    CHECK_INT(rts_schema_add(s, &f, &eb), RTS_ERR_OK);
    memset(&f, 0, sizeof(f));
    f.name = "merchant_id";
    f.type = RTS_FT_STRING;
    CHECK_INT(rts_schema_add(s, &f, &eb), RTS_ERR_OK);
    f.name = "amount";
    f.type = RTS_FT_FLOAT;
    CHECK_INT(rts_schema_add(s, &f, &eb), RTS_ERR_OK);
    f.name = "mcc";
    f.type = RTS_FT_INT;
    CHECK_INT(rts_schema_add(s, &f, &eb), RTS_ERR_OK);
    f.name = "flag";
    f.type = RTS_FT_BOOL;
    CHECK_INT(rts_schema_add(s, &f, &eb), RTS_ERR_OK);
    CHECK_INT(rts_schema_set_roles(s, "txn_id", "card_id", "ts", &eb), RTS_ERR_OK);
    return s;
}

struct tev {
    struct rts_event ev;
    union rts_val vals[NF_MAX];
};

static void make_event(struct tev *t, const char *card, const char *merch, double mcc, double flag,
                       int64_t ts)
{
    memset(t, 0, sizeof(*t));
    t->vals[F_CARD].str.p = card;
    t->vals[F_CARD].str.n = card ? (uint32_t)strlen(card) : 0;
    t->vals[F_MERCH].str.p = merch;
    t->vals[F_MERCH].str.n = merch ? (uint32_t)strlen(merch) : 0;
    t->vals[F_AMOUNT].num = 10;
    t->vals[F_MCC].num = mcc;
    t->vals[F_FLAG].num = flag;
    t->ev.vals = t->vals;
    t->ev.ts_ms = ts;
}

static struct rts_feature_def lookup_def(const char *name, const char *store, const char *key,
                                         const char *field, int64_t max_age_ms, double def)
{
    struct rts_feature_def d;

    memset(&d, 0, sizeof(d));
    d.name = name;
    d.kind = RTS_FEAT_LOOKUP;
    d.store = store;
    d.key = key;
    d.field = field;
    d.max_age_ms = max_age_ms;
    d.def = def;
    d.of = -1;
    return d;
}

static struct rts_store_def store_def(const char *name, int64_t ttl_ms, uint64_t cache_max)
{
    struct rts_store_def s;

    memset(&s, 0, sizeof(s));
    s.name = name;
    s.path = name;
    s.ops = &fake_ops;
    s.updated_field = "_u";
    s.cache_ttl_ms = ttl_ms;
    s.cache_max = cache_max;
    s.breaker.window_ms = 10000;
    s.breaker.min_calls = 3;
    s.breaker.failure_ratio = 0.5;
    s.breaker.open_ms = 1000;
    s.breaker.max_open_ms = 1000;
    s.breaker.probe_calls = 1;
    return s;
}

/* The stage takes an array of events; the tests keep pointers to theirs. */
static void run_batch(struct rts_lookup_worker *w, const struct rts_event *const *evs, size_t n,
                      uint64_t now_ns, uint64_t deadline_ns, double *out, uint32_t *degraded)
{
    struct rts_event a[128];

    for (size_t i = 0; i < n && i < 128; i++) {
        a[i] = *evs[i];
    }
    rts_lookup_batch(w, a, n, now_ns, deadline_ns, out, degraded);
}

/* ---- templates ---- */

TEST(template_check)
{
    struct rts_schema *s = make_schema();
    struct rts_errbuf eb = {0};

    CHECK_INT(rts_lookup_template_check(s, "card:{card_id}", &eb), RTS_ERR_OK);
    CHECK_INT(rts_lookup_template_check(s, "{{x}}:{card_id}/{mcc}", &eb), RTS_ERR_OK);
    CHECK_INT(rts_lookup_template_check(s, "global", &eb), RTS_ERR_OK);
    CHECK_INT(rts_lookup_template_check(s, "card:{crd}", &eb), RTS_ERR_INVAL);
    CHECK(strstr(eb.msg, "unknown field 'crd' at column 7") != NULL);
    CHECK_INT(rts_lookup_template_check(s, "card:{card_id", &eb), RTS_ERR_INVAL);
    CHECK(strstr(eb.msg, "not closed") != NULL);
    CHECK_INT(rts_lookup_template_check(s, "card:}", &eb), RTS_ERR_INVAL);
    CHECK(strstr(eb.msg, "without '{'") != NULL);
    CHECK_INT(rts_lookup_template_check(s, "a{}", &eb), RTS_ERR_INVAL);
    CHECK_INT(rts_lookup_template_check(s, "", &eb), RTS_ERR_INVAL);
    CHECK_INT(rts_lookup_template_check(s, "{card_id{mcc}}", &eb), RTS_ERR_INVAL);
    rts_schema_free(s);
}

TEST(template_keys)
{
    struct rts_schema *s = make_schema();
    struct rts_errbuf eb = {0};
    struct rts_feature_def defs[3];
    struct rts_store_def st = store_def("s0", 0, 0);
    struct rts_lookup *l;
    struct rts_lookup_worker *w;
    struct tev e[2];
    const struct rts_event *evs[2] = {&e[0].ev, &e[1].ev};
    double out[2 * 3];

    fake_reset();
    defs[0] = lookup_def("x", "s0", "{{m}}:{merchant_id}:{mcc}", "a", 0, -1);
    defs[1] = lookup_def("y", "s0", "f:{flag}", "a", 0, -1);
    defs[2] = lookup_def("z", "s0", "c:{card_id}", "b", 0, -2);
    l = rts_lookup_new(s, defs, 3, &st, 1, &eb);
    CHECK(l != NULL);
    w = rts_lookup_worker_new(l, 8, &eb);
    CHECK(w != NULL);
    make_event(&e[0], "c-1", "m-9", 5411, 1, 1000);
    make_event(&e[1], NULL, NULL, 0.5, 0, 1000); /* no card, no merchant */
    fake_put("{m}:m-9:5411", 7, 70, -1);
    fake_put("f:true", 8, 80, -1);
    fake_put("c:c-1", 9, 90, -1);
    run_batch(w, evs, 2, T0, 0, out, NULL);
    CHECK_INT(fake_calls[0], 1);
    CHECK_INT(fake_asked[0], 4); /* {m}:m-9:5411, f:true, c:c-1, f:false */
    CHECK_STR(fake_last[0][0], "{m}:m-9:5411");
    CHECK_STR(fake_last[0][1], "f:true");
    CHECK_STR(fake_last[0][2], "c:c-1");
    CHECK_STR(fake_last[0][3], "f:false");
    CHECK_NEAR(out[0], 7, 0);
    CHECK_NEAR(out[1], 8, 0);
    CHECK_NEAR(out[2], 90, 0);
    CHECK_NEAR(out[3], -1, 0); /* no merchant: no key, the default */
    CHECK_NEAR(out[4], -1, 0); /* f:false is not in the store */
    CHECK_NEAR(out[5], -2, 0);
    {
        struct rts_lookup_feature_stats fs[3];
        struct rts_lookup_store_stats ss[1];
        memset(fs, 0, sizeof(fs));
        memset(ss, 0, sizeof(ss));
        rts_lookup_worker_stats_add(w, fs, ss);
        CHECK_INT(ss[0].keys, 6);
        CHECK_INT(ss[0].bad_keys, 2);
        CHECK_INT(ss[0].fetched, 4);
        CHECK_INT(fs[0].missing, 1);
        CHECK_INT(fs[1].missing, 1);
        CHECK_INT(fs[2].values, 1);
        CHECK_INT(fs[2].defaults, 1);
    }
    CHECK_INT(rts_lookup_count(l), 3);
    CHECK_INT(rts_lookup_feature_index(l, 2), 2);
    CHECK_STR(rts_lookup_store_name(l, 0), "s0");
    rts_lookup_worker_free(w);
    rts_lookup_free(l);
    rts_schema_free(s);
}

/* ---- cache ---- */

TEST(cache_ttl_and_dedup)
{
    struct rts_schema *s = make_schema();
    struct rts_errbuf eb = {0};
    struct rts_feature_def defs[2];
    struct rts_store_def st = store_def("s0", 10000, 1024);
    struct rts_lookup *l;
    struct rts_lookup_worker *w;
    struct tev e[3];
    const struct rts_event *evs[3] = {&e[0].ev, &e[1].ev, &e[2].ev};
    double out[3 * 2];
    struct rts_lookup_store_stats ss;

    fake_reset();
    defs[0] = lookup_def("a", "s0", "card:{card_id}", "a", 0, 0);
    defs[1] = lookup_def("b", "s0", "card:{card_id}", NULL, 0, 0); /* field = name "b" */
    l = rts_lookup_new(s, defs, 2, &st, 1, &eb);
    w = rts_lookup_worker_new(l, 64, &eb);
    CHECK(l && w);
    fake_put("card:c-1", 1, 2, 500);
    fake_put("card:c-2", 3, 4, 500);
    make_event(&e[0], "c-1", NULL, 0, 0, 1000);
    make_event(&e[1], "c-2", NULL, 0, 0, 1000);
    make_event(&e[2], "c-1", NULL, 0, 0, 1000);
    run_batch(w, evs, 3, T0, 0, out, NULL);
    CHECK_INT(fake_calls[0], 1);
    CHECK_INT(fake_asked[0], 2); /* c-1 once: same template, one key, one fetch */
    CHECK_NEAR(out[0], 1, 0);
    CHECK_NEAR(out[1], 2, 0);
    CHECK_NEAR(out[2], 3, 0);
    CHECK_NEAR(out[3], 4, 0);
    CHECK_NEAR(out[4], 1, 0);
    CHECK_NEAR(out[5], 2, 0);
    /* within the ttl: from the cache, even when the store changed */
    fake_rows[0].a = 100;
    run_batch(w, evs, 3, T0 + 9 * SEC, 0, out, NULL);
    CHECK_INT(fake_calls[0], 1);
    CHECK_NEAR(out[0], 1, 0);
    /* past it: fetched again */
    run_batch(w, evs, 3, T0 + 11 * SEC, 0, out, NULL);
    CHECK_INT(fake_calls[0], 2);
    CHECK_INT(fake_asked[0], 4);
    CHECK_NEAR(out[0], 100, 0);
    memset(&ss, 0, sizeof(ss));
    rts_lookup_worker_stats_add(w, NULL, &ss);
    CHECK_INT(ss.keys, 9);
    CHECK_INT(ss.hits, 3);
    CHECK_INT(ss.calls, 2);
    rts_lookup_worker_free(w);
    rts_lookup_free(l);
    rts_schema_free(s);
}

TEST(cache_bounded_and_negative)
{
    struct rts_schema *s = make_schema();
    struct rts_errbuf eb = {0};
    struct rts_feature_def def = lookup_def("a", "s0", "card:{card_id}", "a", 0, -1);
    struct rts_store_def st = store_def("s0", 60000, 8);
    struct rts_lookup *l = rts_lookup_new(s, &def, 1, &st, 1, &eb);
    struct rts_lookup_worker *w = rts_lookup_worker_new(l, 4, &eb);
    static char names[100][16];
    struct tev e[100];
    const struct rts_event *evs[100];
    double out[100];
    struct rts_lookup_store_stats ss;

    fake_reset();
    for (int i = 0; i < 100; i++) {
        snprintf(names[i], sizeof(names[i]), "c-%d", i);
        make_event(&e[i], names[i], NULL, 0, 0, 1000);
        evs[i] = &e[i].ev;
    }
    /* 100 events in chunks of 4: 25 calls, nothing found, negative entries cached */
    run_batch(w, evs, 100, T0, 0, out, NULL);
    CHECK_INT(fake_calls[0], 25);
    CHECK_NEAR(out[99], -1, 0);
    run_batch(w, evs, 100, T0 + SEC, 0, out, NULL);
    memset(&ss, 0, sizeof(ss));
    rts_lookup_worker_stats_add(w, NULL, &ss);
    CHECK(ss.hits <= 8);  /* at most cache_max entries are held */
    CHECK(ss.hits >= 1);  /* and the last keys put are among them */
    /* a key looked up again at once is a hit, a not-found one too */
    run_batch(w, evs + 99, 1, T0 + 2 * SEC, 0, out, NULL);
    run_batch(w, evs + 99, 1, T0 + 2 * SEC, 0, out, NULL);
    memset(&ss, 0, sizeof(ss));
    rts_lookup_worker_stats_add(w, NULL, &ss);
    CHECK_INT(ss.keys, 202);
    rts_lookup_worker_free(w);
    rts_lookup_free(l);
    rts_schema_free(s);
}

/* ---- freshness ---- */

TEST(freshness_and_defaults)
{
    struct rts_schema *s = make_schema();
    struct rts_errbuf eb = {0};
    struct rts_feature_def defs[2];
    struct rts_store_def st = store_def("s0", 0, 0);
    struct rts_lookup *l;
    struct rts_lookup_worker *w;
    struct tev e[5];
    const struct rts_event *evs[5];
    double out[5 * 2];
    struct rts_lookup_feature_stats fs[2];
    const int64_t ts = 10 * 3600 * 1000, hour = 3600 * 1000;

    fake_reset();
    defs[0] = lookup_def("fresh", "s0", "card:{card_id}", "a", hour, -1); /* max_age 1h */
    defs[1] = lookup_def("any", "s0", "card:{card_id}", "a", 0, -2);
    l = rts_lookup_new(s, defs, 2, &st, 1, &eb);
    w = rts_lookup_worker_new(l, 16, &eb);
    CHECK(l && w);
    fake_put("card:new", 1, 0, ts - hour / 2);   /* 30 min old */
    fake_put("card:old", 2, 0, ts - 2 * hour);   /* 2 h old */
    fake_put("card:noage", 3, 0, -1);            /* no update time */
    fake_put("card:nan", NAN, 0, ts);            /* field absent */
    fake_put("card:future", 5, 0, ts + 1000);    /* updated after the event */
    make_event(&e[0], "new", NULL, 0, 0, ts);
    make_event(&e[1], "old", NULL, 0, 0, ts);
    make_event(&e[2], "noage", NULL, 0, 0, ts);
    make_event(&e[3], "nan", NULL, 0, 0, ts);
    make_event(&e[4], "future", NULL, 0, 0, ts);
    for (int i = 0; i < 5; i++) {
        evs[i] = &e[i].ev;
    }
    run_batch(w, evs, 5, T0, 0, out, NULL);
    CHECK_NEAR(out[0], 1, 0);
    CHECK_NEAR(out[1], 1, 0);
    CHECK_NEAR(out[2], -1, 0); /* too old for max_age */
    CHECK_NEAR(out[3], 2, 0);
    CHECK_NEAR(out[4], -1, 0); /* no update time: too old by rule */
    CHECK_NEAR(out[5], 3, 0);
    CHECK_NEAR(out[6], -1, 0); /* absent */
    CHECK_NEAR(out[7], -2, 0);
    CHECK_NEAR(out[8], 5, 0);
    CHECK_NEAR(out[9], 5, 0);
    memset(fs, 0, sizeof(fs));
    rts_lookup_worker_stats_add(w, fs, NULL);
    CHECK_INT(fs[0].values, 2);
    CHECK_INT(fs[0].stale, 2);
    CHECK_INT(fs[0].missing, 1);
    CHECK_INT(fs[0].defaults, 3);
    CHECK_INT(fs[0].degraded, 0);
    CHECK_INT(fs[1].values, 4);
    CHECK_INT(fs[1].missing, 1);
    CHECK_INT(fs[1].defaults, 1);
    /* staleness of the present values with an update time: 30 min, 2 h, 0 (future) */
    CHECK_INT(fs[0].staleness.count, 3);
    CHECK_NEAR((double)fs[0].staleness.max, 2.0 * hour * 1e6, 2.0 * hour * 1e6 / 16);
    CHECK_INT(rts_hist_quantile(&fs[0].staleness, 0), 0);
    {
        double row[2];
        union rts_val frame[16];
        rts_lookup_defaults(l, row);
        CHECK_NEAR(row[0], -1, 0);
        CHECK_NEAR(row[1], -2, 0);
        rts_lookup_fill(l, row, frame, 7);
        CHECK_NEAR(frame[7].num, -1, 0);
        CHECK_NEAR(frame[8].num, -2, 0);
    }
    rts_lookup_worker_free(w);
    rts_lookup_free(l);
    rts_schema_free(s);
}

/* ---- breaker ---- */

TEST(breaker_opens_serves_cache_and_closes)
{
    struct rts_schema *s = make_schema();
    struct rts_errbuf eb = {0};
    struct rts_feature_def defs[2];
    /* s0: cache 300 ms; its breaker trips after 3 failed calls, open 1 s, 1 probe */
    struct rts_store_def sts[2] = {store_def("s0", 300, 64), store_def("s1", 0, 0)};
    struct rts_lookup *l;
    struct rts_lookup_worker *w;
    struct tev e[2];
    const struct rts_event *evs[2] = {&e[0].ev, &e[1].ev};
    double out[2 * 2];
    uint32_t deg[2];
    struct rts_lookup_store_stats ss[2];
    struct rts_lookup_feature_stats fs[2];
    struct rts_breaker *b;
    static char names[4][16];

    fake_reset();
    defs[0] = lookup_def("p", "s0", "card:{card_id}", "a", 0, -1);
    defs[1] = lookup_def("q", "s1", "m:{merchant_id}", "b", 0, -5);
    l = rts_lookup_new(s, defs, 2, sts, 2, &eb);
    w = rts_lookup_worker_new(l, 8, &eb);
    CHECK(l && w);
    b = rts_lookup_breaker(l, 0);
    CHECK_STR(rts_breaker_name(b), "store:s0");
    fake_put("card:c-1", 11, 0, -1);
    fake_put("m:m-1", 0, 22, -1);

    /* T0, healthy: c-1 is cached */
    make_event(&e[0], "c-1", "m-1", 0, 0, 1000);
    run_batch(w, evs, 1, T0, 0, out, deg);
    CHECK_NEAR(out[0], 11, 0);
    CHECK_NEAR(out[1], 22, 0);
    CHECK_INT(deg[0], 0);

    /* T0 + 10, 20, 30 ms: s0 fails on new keys; with the success at T0 that
     * is 2 failures of 3 calls (ratio 0.5, min_calls 3): it trips, and the
     * third batch is not even sent */
    fake_mode[0] = FAKE_ERROR;
    for (int i = 0; i < 3; i++) {
        snprintf(names[i], sizeof(names[i]), "x-%d", i);
        make_event(&e[1], names[i], "m-1", 0, 0, 1000);
        run_batch(w, evs + 1, 1, T0 + (uint64_t)(i + 1) * 10 * MS, 0, out, deg);
        CHECK_NEAR(out[0], -1, 0); /* the default */
        CHECK_NEAR(out[1], 22, 0); /* s1 is fine */
        CHECK_INT(deg[0], 1);      /* bit 0: s0 only */
    }
    CHECK_INT(fake_calls[0], 3);
    CHECK_INT(rts_breaker_state(b), RTS_BREAKER_OPEN);
    CHECK_INT(rts_breaker_state(rts_lookup_breaker(l, 1)), RTS_BREAKER_CLOSED);

    /* T0 + 100 ms, open: c-1 is a fresh cache hit (not degraded); an unknown
     * key is not asked (the store would answer now) and takes the default */
    fake_mode[0] = FAKE_OK;
    make_event(&e[0], "c-1", "m-1", 0, 0, 1000);
    make_event(&e[1], "nope", "m-1", 0, 0, 1000);
    run_batch(w, evs, 2, T0 + 100 * MS, 0, out, deg);
    CHECK_INT(fake_calls[0], 3);
    CHECK_NEAR(out[0], 11, 0);
    CHECK_INT(deg[0], 0);
    CHECK_NEAR(out[2], -1, 0);
    CHECK_INT(deg[1], 1);

    /* T0 + 600 ms, still open: c-1 has expired (300 ms) and is served stale */
    run_batch(w, evs, 2, T0 + 600 * MS, 0, out, deg);
    CHECK_INT(fake_calls[0], 3);
    CHECK_NEAR(out[0], 11, 0);
    CHECK_INT(deg[0], 1);
    CHECK_NEAR(out[2], -1, 0);
    CHECK_INT(deg[1], 1);

    /* T0 + 1.1 s: the open time is over; the next miss is the probe, which
     * succeeds and closes the circuit */
    run_batch(w, evs, 2, T0 + 1100 * MS, 0, out, deg);
    CHECK_INT(fake_calls[0], 4);
    CHECK_INT(rts_breaker_state(b), RTS_BREAKER_CLOSED);
    CHECK_NEAR(out[0], 11, 0);
    CHECK_INT(deg[0], 0);
    CHECK_INT(deg[1], 0);

    /* a timeout counts as a failure too */
    fake_mode[0] = FAKE_TIMEOUT;
    make_event(&e[1], "y", "m-1", 0, 0, 1000);
    run_batch(w, evs + 1, 1, T0 + 1200 * MS, 0, out, deg);
    CHECK_INT(deg[0], 1);

    memset(ss, 0, sizeof(ss));
    memset(fs, 0, sizeof(fs));
    rts_lookup_worker_stats_add(w, fs, ss);
    CHECK_INT(ss[0].calls, 5);
    CHECK_INT(ss[0].errors, 2);
    CHECK_INT(ss[0].timeouts, 1);
    CHECK_INT(ss[0].refused, 3);
    CHECK_INT(ss[0].stale_served, 1);
    CHECK_INT(ss[0].degraded, 7); /* 2 failed + 1 refused, 1 + 2 while open, 1 timeout */
    CHECK_INT(ss[1].errors, 0);
    CHECK_INT(ss[1].degraded, 0);
    {
        char js[64];
        CHECK(rts_lookup_degraded_max(l) <= sizeof(js));
        CHECK_INT(rts_lookup_degraded_json(l, 0, js, sizeof(js)), 2);
        CHECK_STR(js, "[]");
        CHECK_INT(rts_lookup_degraded_json(l, 1, js, sizeof(js)), 6);
        CHECK_STR(js, "[\"s0\"]");
        rts_lookup_degraded_json(l, 3, js, sizeof(js));
        CHECK_STR(js, "[\"s0\",\"s1\"]");
        CHECK_INT(rts_lookup_degraded_json(l, 3, js, 8), 0); /* too small */
    }
    CHECK_INT(fs[0].degraded, 6); /* defaults with nothing cached */
    CHECK_INT(fs[0].values, 4);   /* c-1 at T0, 100 ms, 600 ms (stale), 1.1 s */
    CHECK_INT(fs[0].missing, 1);  /* nope, asked at 1.1 s: not found */
    rts_lookup_worker_free(w);
    rts_lookup_free(l);
    rts_schema_free(s);
}

/* ---- rows ---- */

struct collected {
    char text[2048];
    size_t rows;
};

static enum rts_err collect(void *arg, const struct rts_row *row, struct rts_errbuf *eb)
{
    struct collected *c = arg;
    size_t o = strlen(c->text);

    (void)eb;
    for (size_t i = 0; i < row->n; i++) {
        o += (size_t)snprintf(c->text + o, sizeof(c->text) - o, "%.*s=%s%.*s%s;",
                              (int)row->names[i].n, row->names[i].p, row->cells[i].p ? "[" : "",
                              (int)row->cells[i].n, row->cells[i].p ? row->cells[i].p : "",
                              row->cells[i].p ? "]" : "-");
    }
    o += (size_t)snprintf(c->text + o, sizeof(c->text) - o, "@%zu|", row->line);
    c->rows++;
    return RTS_ERR_OK;
}

static enum rts_err parse_text(const char *text, enum rts_rows_format f, struct collected *c,
                               struct rts_errbuf *eb)
{
    struct rts_rows_cb cb = {collect, c};

    memset(c, 0, sizeof(*c));
    return rts_rows_parse("t", text, strlen(text), f, &cb, eb);
}

TEST(rows_csv_and_jsonl)
{
    struct rts_errbuf eb = {0};
    struct collected c;
    enum rts_rows_format f;

    CHECK_INT(parse_text("\xEF\xBB\xBFkey,a,b\r\nk1,1,\"x,\"\"y\"\"\"\r\n\n  \nk2,,\"multi\nline\"\n"
                         "k3,3,z",
                         RTS_ROWS_CSV, &c, &eb),
              RTS_ERR_OK);
    CHECK_INT(c.rows, 3);
    CHECK_STR(c.text, "key=[k1];a=[1];b=[x,\"y\"];@2|key=[k2];a=-;b=[multi\nline];@5|"
                      "key=[k3];a=[3];b=[z];@7|");
    CHECK_INT(parse_text("key,a\nk1,1,2\n", RTS_ROWS_CSV, &c, &eb), RTS_ERR_PARSE);
    CHECK_STR(eb.msg, "t:2: 3 cells, the header has 2");
    CHECK_INT(parse_text("key,a\nk1,\"open\n", RTS_ROWS_CSV, &c, &eb), RTS_ERR_PARSE);
    CHECK(strstr(eb.msg, "not closed") != NULL);
    CHECK_INT(parse_text("key,key\n", RTS_ROWS_CSV, &c, &eb), RTS_ERR_PARSE);
    CHECK_INT(parse_text("", RTS_ROWS_CSV, &c, &eb), RTS_ERR_PARSE);
    CHECK_INT(parse_text("{\"key\":\"k1\",\"a\":1.5,\"b\":null,\"c\":true,\"d\":\"s\"}\n\n"
                         "{\"key\":\"k2\",\"n\":-3}\n",
                         RTS_ROWS_JSONL, &c, &eb),
              RTS_ERR_OK);
    CHECK_INT(c.rows, 2);
    CHECK(strstr(c.text, "a=[1.5];") && strstr(c.text, "b=-;") && strstr(c.text, "c=[1];") &&
          strstr(c.text, "d=[s];") && strstr(c.text, "n=[-3];@3|"));
    CHECK_INT(parse_text("{\"key\":\"k\",\"a\":[1]}\n", RTS_ROWS_JSONL, &c, &eb), RTS_ERR_PARSE);
    CHECK(strstr(eb.msg, "t:1:") != NULL);
    CHECK_INT(parse_text("[1]\n", RTS_ROWS_JSONL, &c, &eb), RTS_ERR_PARSE);
    CHECK_INT(rts_rows_format_parse("jsonl", &f), 0);
    CHECK_INT(f, RTS_ROWS_JSONL);
    CHECK_INT(rts_rows_format_of("a/b.csv"), RTS_ROWS_CSV);
    CHECK_INT(rts_rows_format_of("b.ndjson"), RTS_ROWS_JSONL);
    CHECK(isnan(rts_store_parse_num("nan", 3)) && isnan(rts_store_parse_num("1x", 2)) &&
          isnan(rts_store_parse_num("", 0)));
    CHECK_NEAR(rts_store_parse_num(" 2.5e1 ", 7), 25, 0);
}

/* ---- the file store ---- */

static char tmpdir[64];

static void write_file(const char *name, const char *text)
{
    char path[128], tmp[140];
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    f = fopen(tmp, "w");
    CHECK(f != NULL);
    if (f) {
        fputs(text, f);
        fclose(f);
        CHECK_INT(rename(tmp, path), 0); /* whole files only, as a deploy would */
    }
}

static struct rts_store *open_file_store(const char *yaml, struct rts_conf **doc,
                                         struct rts_errbuf *eb)
{
    struct rts_store_env env = {"profiles", "_updated_at"};

    *doc = rts_conf_parse("t", yaml, strlen(yaml), eb);
    CHECK(*doc != NULL);
    return *doc ? rts_store_open(&rts_store_file, rts_conf_root(*doc), "stores.profiles", &env, eb)
                : NULL;
}

static enum rts_store_status get1(struct rts_store *st, void *conn, const char *key,
                                  const char *field, double *v, int64_t *upd)
{
    struct rts_errbuf eb = {0};
    struct rts_str k = {key, (uint32_t)strlen(key)};
    const char *fields[1] = {field};
    struct rts_store_query q = {1, &k, 1, fields, v, upd, 0};

    return rts_store_lookup(st, conn, &q, &eb);
}

TEST(file_store)
{
    struct rts_errbuf eb = {0};
    struct rts_conf *doc;
    struct rts_store *st;
    void *conn;
    char yaml[256];
    double v;
    int64_t upd;

    write_file("p.csv", "key,avg,_updated_at,name\ncard:c-1,1.5,1000,x\ncard:c-2,,2000,y\n"
                        "card:c-1,2.5,3000,z\n");
    snprintf(yaml, sizeof(yaml), "{type: file, path: %s/p.csv}", tmpdir);
    st = open_file_store(yaml, &doc, &eb);
    CHECK(st != NULL);
    if (!st) {
        fprintf(stderr, "%s\n", eb.msg);
        return;
    }
    conn = rts_store_conn_new(st, &eb);
    CHECK_INT(get1(st, conn, "card:c-1", "avg", &v, &upd), RTS_STORE_OK);
    CHECK_NEAR(v, 2.5, 0); /* a duplicate key keeps its last row */
    CHECK_INT(upd, 3000);
    CHECK_INT(get1(st, conn, "card:c-2", "avg", &v, &upd), RTS_STORE_OK);
    CHECK(isnan(v));
    CHECK_INT(upd, 2000);
    CHECK_INT(get1(st, conn, "card:c-2", "name", &v, &upd), RTS_STORE_OK);
    CHECK(isnan(v)); /* not a number */
    CHECK_INT(get1(st, conn, "card:c-3", "avg", &v, &upd), RTS_STORE_OK);
    CHECK(isnan(v));
    CHECK_INT(upd, -1);
    CHECK_INT(get1(st, conn, "card:c-1", "nope", &v, &upd), RTS_STORE_OK);
    CHECK(isnan(v));
    CHECK(strstr(rts_store_label(st), "p.csv") != NULL);
    CHECK_INT(rts_store_write(st, conn, &(struct rts_store_rows){0}, &eb), RTS_ERR_INVAL);

    /* reload: new content; a broken file leaves the old table serving */
    write_file("p.csv", "key,avg\ncard:c-9,9\n");
    CHECK_INT(rts_store_reload(st, &eb), RTS_ERR_OK);
    CHECK_INT(get1(st, conn, "card:c-9", "avg", &v, &upd), RTS_STORE_OK);
    CHECK_NEAR(v, 9, 0);
    CHECK_INT(upd, -1);
    CHECK_INT(get1(st, conn, "card:c-1", "avg", &v, &upd), RTS_STORE_OK);
    CHECK(isnan(v));
    write_file("p.csv", "key,avg\ncard:c-9,9,9\n");
    CHECK(rts_store_reload(st, &eb) != RTS_ERR_OK);
    CHECK(strstr(eb.msg, "p.csv:2:") != NULL);
    CHECK_INT(get1(st, conn, "card:c-9", "avg", &v, &upd), RTS_STORE_OK);
    CHECK_NEAR(v, 9, 0);
    rts_store_conn_free(st, conn);
    rts_store_close(st);
    rts_conf_free(doc);

    /* JSON lines, another key column; errors */
    write_file("p.jsonl", "{\"id\":\"a\",\"x\":1}\n{\"id\":\"b\",\"y\":2,\"_updated_at\":5}\n");
    snprintf(yaml, sizeof(yaml), "{type: file, path: %s/p.jsonl, key_column: id}", tmpdir);
    st = open_file_store(yaml, &doc, &eb);
    CHECK(st != NULL);
    if (st) {
        conn = rts_store_conn_new(st, &eb);
        CHECK_INT(get1(st, conn, "b", "y", &v, &upd), RTS_STORE_OK);
        CHECK_NEAR(v, 2, 0);
        CHECK_INT(upd, 5);
        CHECK_INT(get1(st, conn, "a", "y", &v, &upd), RTS_STORE_OK);
        CHECK(isnan(v));
        rts_store_conn_free(st, conn);
        rts_store_close(st);
    }
    rts_conf_free(doc);
    snprintf(yaml, sizeof(yaml), "{type: file, path: %s/p.jsonl}", tmpdir);
    CHECK(open_file_store(yaml, &doc, &eb) == NULL);
    CHECK(strstr(eb.msg, "no 'key' (the key column)") != NULL);
    rts_conf_free(doc);
    snprintf(yaml, sizeof(yaml), "{type: file, path: %s/none.csv}", tmpdir);
    CHECK(open_file_store(yaml, &doc, &eb) == NULL);
    rts_conf_free(doc);
}

struct reader {
    struct rts_store *st;
    atomic_int stop;
    atomic_long reads;
    long bad;
};

static void *reader_main(void *arg)
{
    struct reader *r = arg;
    struct rts_errbuf eb = {0};
    void *conn = rts_store_conn_new(r->st, &eb);

    while (!atomic_load(&r->stop)) {
        double v;
        int64_t upd;
        if (get1(r->st, conn, "k", "v", &v, &upd) != RTS_STORE_OK || isnan(v) ||
            upd != (int64_t)v * 10) {
            r->bad++; /* a row is always one version's, never a mix */
        }
        atomic_fetch_add(&r->reads, 1);
    }
    rts_store_conn_free(r->st, conn);
    return NULL;
}

TEST(file_store_reload_while_reading)
{
    struct rts_errbuf eb = {0};
    struct rts_conf *doc;
    struct reader r;
    pthread_t th;
    char yaml[256], text[256];
    long before;

    write_file("r.csv", "key,v,_updated_at\nk,1,10\n");
    snprintf(yaml, sizeof(yaml), "{type: file, path: %s/r.csv}", tmpdir);
    memset(&r, 0, sizeof(r));
    r.st = open_file_store(yaml, &doc, &eb);
    CHECK(r.st != NULL);
    if (!r.st) {
        return;
    }
    CHECK_INT(pthread_create(&th, NULL, reader_main, &r), 0);
    for (int v = 2; v <= 60; v++) {
        /* padding rows make each table a different size and address */
        size_t o = (size_t)snprintf(text, sizeof(text), "key,v,_updated_at\nk,%d,%d\n", v, v * 10);
        for (int p = 0; p < v % 7; p++) {
            o += (size_t)snprintf(text + o, sizeof(text) - o, "pad%d,0,0\n", p);
        }
        write_file("r.csv", text);
        CHECK_INT(rts_store_reload(r.st, &eb), RTS_ERR_OK);
        rts_store_tick(r.st, rts_now_ns());
        before = atomic_load(&r.reads);
        for (int spin = 0; spin < 2000 && atomic_load(&r.reads) == before; spin++) {
            usleep(100); /* let the reader run between reloads (not required for safety) */
        }
    }
    atomic_store(&r.stop, 1);
    pthread_join(th, NULL);
    CHECK(atomic_load(&r.reads) > 0);
    CHECK_INT(r.bad, 0);
    {
        double v;
        int64_t upd;
        void *conn = rts_store_conn_new(r.st, &eb);
        CHECK_INT(get1(r.st, conn, "k", "v", &v, &upd), RTS_STORE_OK);
        CHECK_NEAR(v, 60, 0);
        rts_store_conn_free(r.st, conn);
    }
    rts_store_close(r.st);
    rts_conf_free(doc);
}

TEST(file_store_lookup_stage)
{
    struct rts_schema *s = make_schema();
    struct rts_errbuf eb = {0};
    struct rts_conf *doc;
    struct rts_feature_def def = lookup_def("avg", "profiles", "card:{card_id}", NULL, 0, -1);
    struct rts_store_def sd = store_def("profiles", 0, 0);
    struct rts_lookup *l;
    struct rts_lookup_worker *w;
    struct tev e;
    const struct rts_event *evs[1] = {&e.ev};
    double out[1];
    char yaml[256];

    write_file("l.csv", "key,avg\ncard:c-1,4.25\n");
    snprintf(yaml, sizeof(yaml), "{type: file, path: %s/l.csv}", tmpdir);
    doc = rts_conf_parse("t", yaml, strlen(yaml), &eb);
    sd.ops = &rts_store_file;
    sd.node = rts_conf_root(doc);
    l = rts_lookup_new(s, &def, 1, &sd, 1, &eb);
    CHECK(l != NULL);
    w = l ? rts_lookup_worker_new(l, 4, &eb) : NULL;
    CHECK(w != NULL);
    if (w) {
        make_event(&e, "c-1", NULL, 0, 0, 1000);
        run_batch(w, evs, 1, T0, 0, out, NULL);
        CHECK_NEAR(out[0], 4.25, 0);
        write_file("l.csv", "key,avg\ncard:c-1,5.5\n");
        CHECK_INT(rts_lookup_reload(l, "profiles", &eb), RTS_ERR_OK);
        CHECK_INT(rts_lookup_reload(l, "nope", &eb), RTS_ERR_INVAL);
        run_batch(w, evs, 1, T0, 0, out, NULL);
        CHECK_NEAR(out[0], 5.5, 0);
        rts_lookup_tick(l, rts_now_ns());
    }
    rts_lookup_worker_free(w);
    rts_lookup_free(l);
    rts_conf_free(doc);
    rts_schema_free(s);
}

/* ---- config ---- */

static const char *conf_head = "pipeline: t\n"
                               "source: {type: generator}\n"
                               "event:\n"
                               "  id: txn_id\n"
                               "  key: card_id\n"
                               "  time: ts\n"
                               "  fields:\n"
                               "    card_id: {type: string, max_len: 64}\n"
                               "    amount: {type: float}\n"
                               "fallback: {score: \"0\"}\n"
                               "sink: {type: null}\n";

static struct rts_pipeline_conf *parse_conf(const char *tail, struct rts_errbuf *eb)
{
    char text[4096];

    snprintf(text, sizeof(text), "%s%s", conf_head, tail);
    return rts_pipeline_conf_parse("p.yaml", text, strlen(text), eb);
}

TEST(config)
{
    struct rts_errbuf eb = {0};
    struct rts_pipeline_conf *c;
    char tail[1024];

    snprintf(tail, sizeof(tail),
             "stores:\n"
             "  profiles: {type: file, path: %s/l.csv, cache_ttl: 60s, cache_max: 1000,\n"
             "             updated_field: ts_upd, breaker: {min_calls: 5, open_for: 2s}}\n"
             "  r: {type: redis, addr: \"[::1]:6380\", password: pw}\n"
             "features:\n"
             "  - {name: avg, lookup: {store: profiles, key: \"card:{card_id}\", max_age: 24h, "
             "default: 0}}\n"
             "  - {name: ratio, expr: \"amount / (avg + 1)\"}\n"
             "  - {name: other, lookup: {store: r, key: \"x:{card_id}\", field: f}}\n",
             tmpdir);
    c = parse_conf(tail, &eb);
    CHECK(c != NULL);
    if (!c) {
        fprintf(stderr, "%s\n", eb.msg);
        return;
    }
    CHECK_INT(c->nstores, 2);
    CHECK_STR(c->stores[0].name, "profiles");
    CHECK_STR(c->stores[0].updated_field, "ts_upd");
    CHECK_INT(c->stores[0].cache_ttl_ms, 60000);
    CHECK_INT(c->stores[0].cache_max, 1000);
    CHECK_INT(c->stores[0].breaker.min_calls, 5);
    CHECK_INT(c->stores[0].breaker.open_ms, 2000);
    CHECK(c->stores[1].ops == &rts_store_redis);
    CHECK_STR(c->stores[1].updated_field, "_updated_at");
    CHECK_INT(c->stores[1].cache_ttl_ms, 0);
    CHECK_INT(c->features[0].kind, RTS_FEAT_LOOKUP);
    CHECK_STR(c->features[0].field, "avg");
    CHECK_INT(c->features[0].max_age_ms, 24 * 3600 * 1000);
    CHECK_NEAR(c->features[0].def, 0, 0);
    CHECK(isnan(c->features[2].def));
    CHECK_STR(c->features[2].field, "f");
    {
        /* the engine leaves lookup slots to the caller and expressions read them */
        struct rts_features *fs = rts_features_compile(c->schema, c->features, c->nfeatures, &eb);
        CHECK(fs != NULL);
        rts_features_free(fs);
    }
    rts_pipeline_conf_free(c);

    c = parse_conf("stores: {p: {type: file, path: x.csv}}\n"
                   "features:\n  - {name: a, lookup: {store: p, key: \"c:{cardid}\"}}\n", &eb);
    CHECK(c == NULL);
    CHECK(strstr(eb.msg, "p.yaml:14:") && strstr(eb.msg, "features[0].lookup.key: unknown field "
                                                          "'cardid'"));
    c = parse_conf("features:\n  - {name: a, lookup: {store: p, key: \"c:{card_id}\"}}\n", &eb);
    CHECK(c == NULL);
    CHECK(strstr(eb.msg, "features[0].lookup: unknown store 'p'") != NULL);
    c = parse_conf("stores: {p: {type: file, path: x.csv}}\n"
                   "features:\n  - {name: a, expr: \"1\", lookup: {store: p, key: k}}\n", &eb);
    CHECK(c == NULL);
    CHECK(strstr(eb.msg, "takes no expr") != NULL);
    c = parse_conf("stores: {p: {type: redis, tls: {ca: x}}}\n", &eb);
    CHECK(c == NULL);
    CHECK(strstr(eb.msg, "p.yaml:12:") && strstr(eb.msg, "tls is not available"));
    c = parse_conf("stores: {p: {type: redis, addr: nope}}\n", &eb);
    CHECK(c == NULL);
    CHECK(strstr(eb.msg, "expected host:port") != NULL);
    c = parse_conf("stores: {p: {type: redis, password: a, password_file: b}}\n", &eb);
    CHECK(c == NULL);
    c = parse_conf("stores: {p: {type: file}}\n", &eb);
    CHECK(c == NULL);
    CHECK(strstr(eb.msg, "missing required key 'path'") != NULL);
    c = parse_conf("stores: {p: {type: file, path: x, cache_ttl: 10us}}\n", &eb);
    CHECK(c == NULL);
    c = parse_conf("stores: {9p: {type: file, path: x}}\n", &eb);
    CHECK(c == NULL);
    c = parse_conf("stores: {p: {type: redis, breaker: {failure_ratio: 2}}}\n", &eb);
    CHECK(c == NULL);
    CHECK(strstr(eb.msg, "stores.p.breaker") != NULL);
}

int main(void)
{
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/rts_lookup_XXXXXX");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    RUN(template_check);
    RUN(template_keys);
    RUN(cache_ttl_and_dedup);
    RUN(cache_bounded_and_negative);
    RUN(freshness_and_defaults);
    RUN(breaker_opens_serves_cache_and_closes);
    RUN(rows_csv_and_jsonl);
    RUN(file_store);
    RUN(file_store_reload_while_reading);
    RUN(file_store_lookup_stage);
    RUN(config);
    {
        char cmd[128];
        snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
        if (system(cmd) != 0) {
            fprintf(stderr, "could not remove %s\n", tmpdir);
        }
    }
    return TEST_EXIT();
}
