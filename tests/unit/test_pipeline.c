/*
 * test_pipeline.c - the pipeline in-process: config errors with positions,
 * feature values checked by hand on small event sequences through the same
 * rts_pipeline_eval() that workers and backfill use, rules and records.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "daemon/config.h"
#include "core/clock.h"
#include "daemon/pipeline.h"
#include "model/model_int.h"
#include "test.h"

static const char *base_yaml =
    "pipeline: t\n"
    "workers: 1\n"
    "source: {type: file, path: /dev/null}\n"
    "event:\n"
    "  id: id\n"
    "  key: k\n"
    "  time: ts\n"
    "  fields:\n"
    "    amount: {type: float, required: true, min: 0}\n"
    "    m: {type: string}\n"
    "features:\n"
    "  - {name: c5m, agg: count, window: 5m}\n"
    "  - {name: s1h, agg: sum, of: amount, window: 1h}\n"
    "  - {name: mean1h, agg: mean, of: amount, window: 1h}\n"
    "  - {name: min1h, agg: min, of: amount, window: 1h}\n"
    "  - {name: max1h, agg: max, of: amount, window: 1h}\n"
    "  - {name: d1h, agg: distinct, of: m, window: 1h}\n"
    "  - {name: last3, agg: mean, of: amount, last: 3}\n"
    "  - {name: lastv, agg: last, of: amount}\n"
    "  - {name: since, agg: since_last}\n"
    "  - {name: vel, agg: velocity, window: 1m}\n"
    "  - {name: ratio, expr: \"amount / (mean1h + 1)\"}\n"
    "  - {name: twice, expr: \"ratio * 2\"}\n"
    "rules:\n"
    "  - {when: \"score >= 0.5\", decision: block}\n"
    "  - {decision: allow}\n"
    "fallback: {score: \"min(1, amount / 100)\"}\n"
    "sink: {type: null}\n";

static struct rts_pipeline *build(const char *yaml, struct rts_errbuf *eb)
{
    struct rts_pipeline_conf *c = rts_pipeline_conf_parse("t.yaml", yaml, strlen(yaml), eb);

    return c ? rts_pipeline_new(c, eb) : NULL;
}

struct runner {
    struct rts_pipeline *p;
    struct rts_eval e;
    char rec[8192] __attribute__((aligned(8)));
};

/* Decode one JSON event and evaluate it; returns 0 on success. */
static int feed(struct runner *r, const char *json)
{
    struct rts_decode_err err;
    struct rts_event ev;
    size_t n = rts_decode(r->p->conf->schema, json, strlen(json), 65536, 0, r->rec,
                          sizeof(r->rec), &err);

    if (!n) {
        fprintf(stderr, "decode failed: %s\n", err.msg);
        return -1;
    }
    rts_event_view(r->p->conf->schema, r->rec, &ev, r->e.rows[0].vals);
    rts_pipeline_eval(r->p, &r->e, &ev);
    return 0;
}

static double feat(struct runner *r, const char *name)
{
    enum rts_type t;
    int slot = rts_features_resolve(r->p->features, name, strlen(name), &t);

    return slot < 0 ? -12345 : r->e.rows[0].frame[slot].num;
}

TEST(windows_by_hand)
{
    struct rts_errbuf eb = {0};
    struct runner *r = calloc(1, sizeof(*r));

    r->p = build(base_yaml, &eb);
    CHECK(r->p != NULL);
    if (!r->p) {
        fprintf(stderr, "%s\n", eb.msg);
        free(r);
        return;
    }
    CHECK_INT(rts_eval_init(&r->e, r->p, 1000, 1, &eb), RTS_ERR_OK);

    /* first event: empty state */
    CHECK_INT(feed(r, "{\"id\":\"1\",\"k\":\"a\",\"ts\":1700001000000,\"amount\":10,\"m\":\"x\"}"), 0);
    CHECK_NEAR(feat(r, "c5m"), 0, 0);
    CHECK_NEAR(feat(r, "s1h"), 0, 0);
    CHECK_NEAR(feat(r, "mean1h"), NAN, 0);
    CHECK_NEAR(feat(r, "min1h"), NAN, 0);
    CHECK_NEAR(feat(r, "d1h"), 0, 0);
    CHECK_NEAR(feat(r, "last3"), NAN, 0);
    CHECK_NEAR(feat(r, "since"), NAN, 0);
    CHECK_NEAR(feat(r, "ratio"), NAN, 0);
    CHECK_NEAR(r->e.rows[0].frame[r->p->slot_score].num, 0.1, 1e-12);
    CHECK_INT(r->e.rows[0].rule, 1);

    /* 30 s later: sees the first event */
    CHECK_INT(feed(r, "{\"id\":\"2\",\"k\":\"a\",\"ts\":1700001030000,\"amount\":30,\"m\":\"y\"}"), 0);
    CHECK_NEAR(feat(r, "c5m"), 1, 0);
    CHECK_NEAR(feat(r, "s1h"), 10, 0);
    CHECK_NEAR(feat(r, "mean1h"), 10, 0);
    CHECK_NEAR(feat(r, "min1h"), 10, 0);
    CHECK_NEAR(feat(r, "max1h"), 10, 0);
    CHECK_NEAR(feat(r, "d1h"), 1, 0);
    CHECK_NEAR(feat(r, "last3"), 10, 0);
    CHECK_NEAR(feat(r, "lastv"), 10, 0);
    CHECK_NEAR(feat(r, "since"), 30, 0);
    CHECK_NEAR(feat(r, "vel"), 1.0 / 60, 1e-12);
    CHECK_NEAR(feat(r, "ratio"), 30.0 / 11, 1e-12);
    CHECK_NEAR(feat(r, "twice"), 60.0 / 11, 1e-12);

    /* another key is independent */
    CHECK_INT(feed(r, "{\"id\":\"3\",\"k\":\"b\",\"ts\":1700001040000,\"amount\":99,\"m\":\"x\"}"), 0);
    CHECK_NEAR(feat(r, "c5m"), 0, 0);
    CHECK_INT(r->e.rows[0].rule, 0); /* score 0.99 >= 0.5: block */

    /* 10 minutes after the first: the 5m count has forgotten both, 1h has not */
    CHECK_INT(feed(r, "{\"id\":\"4\",\"k\":\"a\",\"ts\":1700001600000,\"amount\":20,\"m\":\"x\"}"), 0);
    CHECK_NEAR(feat(r, "c5m"), 0, 0);
    CHECK_NEAR(feat(r, "s1h"), 40, 0);
    CHECK_NEAR(feat(r, "mean1h"), 20, 0);
    CHECK_NEAR(feat(r, "min1h"), 10, 0);
    CHECK_NEAR(feat(r, "max1h"), 30, 0);
    CHECK_NEAR(feat(r, "d1h"), 2, 0);
    CHECK_NEAR(feat(r, "since"), 570, 0);

    /* last-3 keeps the three most recent values: 30, 20, 40 */
    CHECK_INT(feed(r, "{\"id\":\"5\",\"k\":\"a\",\"ts\":1700001601000,\"amount\":40,\"m\":\"z\"}"), 0);
    CHECK_NEAR(feat(r, "last3"), 20, 0); /* 10, 30, 20 */
    CHECK_INT(feed(r, "{\"id\":\"6\",\"k\":\"a\",\"ts\":1700001602000,\"amount\":0,\"m\":\"z\"}"), 0);
    CHECK_NEAR(feat(r, "last3"), 30, 0); /* 30, 20, 40 */
    CHECK_NEAR(feat(r, "lastv"), 40, 0);
    CHECK_NEAR(feat(r, "d1h"), 3, 0);

    /* two hours later: every window is empty again, since_last is not */
    CHECK_INT(feed(r, "{\"id\":\"7\",\"k\":\"a\",\"ts\":1700009000000,\"amount\":5}"), 0);
    CHECK_NEAR(feat(r, "s1h"), 0, 0);
    CHECK_NEAR(feat(r, "mean1h"), NAN, 0);
    CHECK_NEAR(feat(r, "max1h"), NAN, 0);
    CHECK_NEAR(feat(r, "d1h"), 0, 0);
    CHECK_NEAR(feat(r, "since"), (9000000 - 1602000) / 1000.0 /* ms apart */, 1e-9);
    CHECK_NEAR(feat(r, "last3"), 20, 0); /* last-N has no time limit: 20, 40, 0 */

    rts_eval_fini(&r->e);
    rts_pipeline_free(r->p);
    free(r);
}

TEST(eviction_at_max_keys)
{
    struct rts_errbuf eb = {0};
    struct runner *r = calloc(1, sizeof(*r));
    struct rts_feature_stats fs;
    char ev[256];

    r->p = build(base_yaml, &eb);
    CHECK(r->p != NULL);
    CHECK_INT(rts_eval_init(&r->e, r->p, 2, 1, &eb), RTS_ERR_OK);
    feed(r, "{\"id\":\"1\",\"k\":\"a\",\"ts\":1700000001000,\"amount\":1}");
    feed(r, "{\"id\":\"2\",\"k\":\"b\",\"ts\":1700000002000,\"amount\":1}");
    feed(r, "{\"id\":\"3\",\"k\":\"a\",\"ts\":1700000003000,\"amount\":1}"); /* a is the most recent */
    feed(r, "{\"id\":\"4\",\"k\":\"c\",\"ts\":1700000004000,\"amount\":1}"); /* evicts b */
    rts_feature_worker_stats(r->e.fw, &fs);
    CHECK_INT(fs.keys, 2);
    CHECK_INT(fs.evicted, 1);
    feed(r, "{\"id\":\"5\",\"k\":\"a\",\"ts\":1700000005000,\"amount\":1}");
    CHECK_NEAR(feat(r, "c5m"), 2, 0); /* a kept its state */
    snprintf(ev, sizeof(ev), "{\"id\":\"6\",\"k\":\"b\",\"ts\":1700000006000,\"amount\":1}");
    feed(r, ev);
    CHECK_NEAR(feat(r, "c5m"), 0, 0); /* b starts over */
    rts_eval_fini(&r->e);
    rts_pipeline_free(r->p);
    free(r);
}

TEST(late_events_and_ttl)
{
    struct rts_errbuf eb = {0};
    struct runner *r = calloc(1, sizeof(*r));
    struct rts_feature_stats fs;
    size_t n = strlen(base_yaml) + 64;
    char *yaml = malloc(n);

    snprintf(yaml, n, "%slimits: {key_ttl: 1h}\n", base_yaml);
    r->p = build(yaml, &eb);
    CHECK(r->p != NULL);
    if (!r->p) {
        fprintf(stderr, "%s\n", eb.msg);
        free(yaml);
        free(r);
        return;
    }
    CHECK_INT(rts_eval_init(&r->e, r->p, 100, 1, &eb), RTS_ERR_OK);
    feed(r, "{\"id\":\"1\",\"k\":\"a\",\"ts\":1700001000000,\"amount\":10}");
    feed(r, "{\"id\":\"2\",\"k\":\"a\",\"ts\":1700001060000,\"amount\":20}");
    CHECK_NEAR(feat(r, "s1h"), 10, 0);
    /* an event 9.5 minutes out of order: applied to the 1h windows, too old
     * for the 5m one (its bucket has left that ring): counted late once */
    feed(r, "{\"id\":\"3\",\"k\":\"a\",\"ts\":1700000500000,\"amount\":5}");
    feed(r, "{\"id\":\"4\",\"k\":\"a\",\"ts\":1700001070000,\"amount\":1}");
    CHECK_NEAR(feat(r, "s1h"), 35, 0);
    CHECK_NEAR(feat(r, "c5m"), 2, 0);
    rts_feature_worker_stats(r->e.fw, &fs);
    CHECK_INT(fs.late, 1);
    /* two hours out of order: scored, but older than every window: not applied */
    CHECK_INT(feed(r, "{\"id\":\"5\",\"k\":\"a\",\"ts\":1699993000000,\"amount\":1000}"),
              0);
    CHECK_NEAR(r->e.rows[0].frame[r->p->slot_score].num, 1, 0); /* scored: min(1, 1000 / 100) */
    feed(r, "{\"id\":\"6\",\"k\":\"a\",\"ts\":1700001080000,\"amount\":1}");
    CHECK_NEAR(feat(r, "s1h"), 36, 0); /* the 1000 is not in the window */
    rts_feature_worker_stats(r->e.fw, &fs);
    CHECK_INT(fs.late, 2);
    CHECK_INT(fs.expired, 0);

    /* key_ttl 1h of event time: b two hours later expires a */
    feed(r, "{\"id\":\"7\",\"k\":\"b\",\"ts\":1700008300000,\"amount\":1}");
    feed(r, "{\"id\":\"8\",\"k\":\"a\",\"ts\":1700008301000,\"amount\":1}");
    CHECK_NEAR(feat(r, "since"), NAN, 0); /* a starts over */
    CHECK_NEAR(feat(r, "last3"), NAN, 0);
    rts_feature_worker_stats(r->e.fw, &fs);
    CHECK_INT(fs.expired, 1);
    CHECK_INT(fs.keys, 2);
    rts_eval_fini(&r->e);
    rts_pipeline_free(r->p);
    free(yaml);
    free(r);
}

/* A bundle folder with a two-tree XGBoost model over [amount, c5m] and a
 * manifest naming @features; returns the folder (static storage). */
static const char *write_bundle(const char *features)
{
    static char dir[64];
    char path[128];
    FILE *f;

    snprintf(dir, sizeof(dir), "/tmp/rts-test-bundle-XXXXXX");
    if (!mkdtemp(dir)) {
        return NULL;
    }
    snprintf(path, sizeof(path), "%s/model.json", dir);
    f = fopen(path, "w");
    /* tree 0: amount < 50 ? -2 : 2; tree 1: c5m < 3 ? 0.25 : 1 */
    fputs("{\"learner\":{\"attributes\":{},\"feature_names\":[\"amount\",\"c5m\"],"
          "\"feature_types\":[],\"gradient_booster\":{\"model\":{\"gbtree_model_param\":"
          "{\"num_parallel_tree\":\"1\",\"num_trees\":\"2\",\"size_leaf_vector\":\"0\"},"
          "\"tree_info\":[0,0],\"trees\":["
          "{\"left_children\":[1,-1,-1],\"right_children\":[2,-1,-1],\"split_indices\":[0,0,0],"
          "\"split_conditions\":[50,-2,2],\"default_left\":[1,0,0],\"split_type\":[0,0,0]},"
          "{\"left_children\":[1,-1,-1],\"right_children\":[2,-1,-1],\"split_indices\":[1,0,0],"
          "\"split_conditions\":[3,0.25,1],\"default_left\":[1,0,0],\"split_type\":[0,0,0]}"
          "]},\"name\":\"gbtree\"},\"learner_model_param\":{\"base_score\":\"5E-1\","
          "\"boost_from_average\":\"1\",\"num_class\":\"0\",\"num_feature\":\"2\","
          "\"num_target\":\"1\"},\"objective\":{\"name\":\"binary:logistic\","
          "\"reg_loss_param\":{\"scale_pos_weight\":\"1\"}}},\"version\":[1,7,4]}",
          f);
    fclose(f);
    snprintf(path, sizeof(path), "%s/manifest.yaml", dir);
    f = fopen(path, "w");
    fprintf(f, "name: t\nversion: 3\nformat: xgboost-json\nobjective: binary:logistic\n"
               "features: [%s]\n", features);
    fclose(f);
    return dir;
}

static void remove_bundle(const char *dir)
{
    char path[128];

    snprintf(path, sizeof(path), "%s/model.json", dir);
    remove(path);
    snprintf(path, sizeof(path), "%s/manifest.yaml", dir);
    remove(path);
    rmdir(dir);
}

TEST(model_scores)
{
    struct rts_errbuf eb = {0};
    struct runner *r = calloc(1, sizeof(*r));
    const char *dir = write_bundle("amount, c5m");
    size_t n = strlen(base_yaml) + 128;
    char *yaml = malloc(n), *buf;
    struct rts_event ev;

    CHECK(dir != NULL);
    snprintf(yaml, n, "%smodel: {path: %s}\n", base_yaml, dir);
    r->p = build(yaml, &eb);
    CHECK(r->p != NULL);
    if (!r->p) {
        fprintf(stderr, "%s\n", eb.msg);
        goto out;
    }
    CHECK_INT(rts_eval_init(&r->e, r->p, 10, 1, &eb), RTS_ERR_OK);
    feed(r, "{\"id\":\"1\",\"k\":\"a\",\"ts\":1700000000000,\"amount\":10}");
    /* the fallback would say 0.1; the model: sigmoid(0 - 2 + 0.25) */
    CHECK_NEAR(r->e.rows[0].frame[r->p->slot_score].num, 1 / (1 + exp(1.75)), 1e-6);
    CHECK_INT(r->e.rows[0].rule, 1); /* allow */
    for (int i = 2; i <= 5; i++) {
        char json[128];
        snprintf(json, sizeof(json),
                 "{\"id\":\"%d\",\"k\":\"a\",\"ts\":17000000%02d000,\"amount\":60}", i, i);
        feed(r, json);
    }
    /* amount 60, c5m 4 (four earlier events in 5 minutes): sigmoid(2 + 1) */
    CHECK_NEAR(feat(r, "c5m"), 4, 0);
    CHECK_NEAR(r->e.rows[0].frame[r->p->slot_score].num, 1 / (1 + exp(-3.0)), 1e-6);
    CHECK_INT(r->e.rows[0].rule, 0); /* block */
    buf = malloc(rts_pipeline_record_max(r->p));
    rts_event_view(r->p->conf->schema, r->rec, &ev, r->e.rows[0].vals);
    buf[rts_pipeline_format_score(r->p, &r->e.rows[0], &ev, 7, 0, buf, rts_pipeline_record_max(r->p))] = 0;
    CHECK(strstr(buf, "\"model\":\"t@3\",\"path\":\"model\"") != NULL);
    free(buf);
    rts_eval_fini(&r->e);
    rts_pipeline_free(r->p);
out:
    remove_bundle(dir);
    free(yaml);
    free(r);
}

TEST(model_feature_not_in_pipeline)
{
    struct rts_errbuf eb = {0};
    const char *dir = write_bundle("amount, nope");
    size_t n = strlen(base_yaml) + 128;
    char *yaml = malloc(n);
    struct rts_pipeline *p;

    snprintf(yaml, n, "%smodel: {path: %s}\n", base_yaml, dir);
    p = build(yaml, &eb);
    CHECK(p == NULL);
    CHECK(strstr(eb.msg, "feature 1 is 'nope' here and 'c5m' in the model file") != NULL);
    rts_pipeline_free(p);
    remove_bundle(dir);
    free(yaml);
}

/* A test-only model: calls [slow_from, slow_to) take slow_ns (longer than
 * the pipeline's model.timeout), the others return at once. */
struct fault_model {
    struct rts_model base;
    int calls, slow_from, slow_to;
    uint64_t slow_ns;
};

static void fault_predict(const struct rts_model *m, const float *x, size_t n, float *y)
{
    struct fault_model *f = (struct fault_model *)(uintptr_t)m;
    int call = f->calls++;

    (void)x;
    if (call >= f->slow_from && call < f->slow_to) {
        uint64_t t0 = rts_now_ns();
        while (rts_now_ns() - t0 < f->slow_ns) {
        }
    }
    for (size_t i = 0; i < n; i++) {
        y[i] = 0.25f;
    }
}

static void fault_free(struct rts_model *m)
{
    free(m);
}

static const struct rts_model_ops fault_ops = {"test-fault", fault_predict, fault_free};

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Feed @n events; returns how many the model scored (the rest: fallback). */
static int feed_n(struct runner *r, int n, int *next_id)
{
    int by_model = 0;

    for (int i = 0; i < n; i++) {
        char json[160];
        snprintf(json, sizeof(json),
                 "{\"id\":\"%d\",\"k\":\"a\",\"ts\":%lld,\"amount\":10}", *next_id,
                 1700000000000LL + *next_id);
        (*next_id)++;
        feed(r, json);
        by_model += r->e.rows[0].by_model;
        /* the fallback says min(1, 10 / 100) = 0.1, the model 0.25 */
        CHECK_NEAR(r->e.rows[0].frame[r->p->slot_score].num, r->e.rows[0].by_model ? 0.25 : 0.1, 1e-6);
    }
    return by_model;
}

TEST(model_circuit_breaker)
{
    struct rts_errbuf eb = {0};
    struct runner *r = calloc(1, sizeof(*r));
    const char *dir = write_bundle("amount, c5m");
    size_t n = strlen(base_yaml) + 256;
    char *yaml = malloc(n);
    struct fault_model *f = calloc(1, sizeof(*f));
    struct rts_breaker_stats bs;
    int id = 1;

    snprintf(yaml, n,
             "%smodel: {path: %s, timeout: 50ms, breaker: {window: 10s, min_calls: 5, "
             "failure_ratio: 0.5, open_for: 300ms, max_open: 3s, probes: 2}}\n",
             base_yaml, dir);
    r->p = build(yaml, &eb);
    CHECK(r->p != NULL && r->p->breaker != NULL);
    if (!r->p) {
        fprintf(stderr, "%s\n", eb.msg);
        goto out;
    }
    /* the real bundle's model gives way to the fault-injecting one */
    f->base = *r->p->bundle->model;
    f->base.ops = &fault_ops;
    f->base.feature_names = NULL;
    atomic_init(&f->base.refs, 1);
    f->slow_from = 5;
    f->slow_to = 11;
    f->slow_ns = 120000000; /* 120 ms: slower than the 50 ms timeout, even on a busy machine */
    rts_model_unref(r->p->bundle->model);
    r->p->bundle->model = &f->base;
    CHECK_INT(rts_eval_init(&r->e, r->p, 10, 1, &eb), RTS_ERR_OK);

    CHECK_INT(feed_n(r, 5, &id), 5);                      /* calls 0-4 fast: closed */
    CHECK_INT(feed_n(r, 5, &id), 5);                      /* calls 5-9 slow: 5 of 10 fail */
    CHECK_INT(rts_breaker_state(r->p->breaker), RTS_BREAKER_OPEN);
    CHECK_INT(feed_n(r, 20, &id), 0);                     /* open: all by the fallback */
    CHECK_INT(f->calls, 10);                              /* the model was not called */
    sleep_ms(350);
    CHECK_INT(feed_n(r, 1, &id), 1);                      /* half-open probe: call 10, slow */
    CHECK_INT(rts_breaker_state(r->p->breaker), RTS_BREAKER_OPEN); /* reopened, for 600 ms */
    sleep_ms(100);
    CHECK_INT(feed_n(r, 3, &id), 0);                      /* still open (backoff) */
    sleep_ms(600);
    CHECK_INT(feed_n(r, 2, &id), 2);                      /* probes: calls 11, 12 fast */
    CHECK_INT(rts_breaker_state(r->p->breaker), RTS_BREAKER_CLOSED);
    CHECK_INT(feed_n(r, 10, &id), 10);                    /* closed again */
    rts_breaker_stats(r->p->breaker, &bs);
    CHECK_INT(bs.transitions[RTS_BREAKER_CLOSED_OPEN], 1);
    CHECK_INT(bs.transitions[RTS_BREAKER_OPEN_HALF_OPEN], 2);
    CHECK_INT(bs.transitions[RTS_BREAKER_HALF_OPEN_OPEN], 1);
    CHECK_INT(bs.transitions[RTS_BREAKER_HALF_OPEN_CLOSED], 1);
    rts_eval_fini(&r->e);
    rts_pipeline_free(r->p);
out:
    remove_bundle(dir);
    free(yaml);
    free(r);
}

/* A 3-class softmax model over amount: logits 0, 0.01 * amount, 0.02 * amount. */
static const char *write_softmax_bundle(void)
{
    static char dir[64];
    char path[128];
    FILE *f;

    snprintf(dir, sizeof(dir), "/tmp/rts-test-bundle-XXXXXX");
    if (!mkdtemp(dir)) {
        return NULL;
    }
    snprintf(path, sizeof(path), "%s/model.json", dir);
    f = fopen(path, "w");
    fputs("{\"format\":\"linear-json\",\"version\":1,\"objective\":\"softmax\","
          "\"features\":[\"amount\"],\"missing\":{\"strategy\":\"zero\"},"
          "\"coef\":[[0],[0.01],[0.02]],\"intercept\":[0,0,0]}",
          f);
    fclose(f);
    snprintf(path, sizeof(path), "%s/manifest.yaml", dir);
    f = fopen(path, "w");
    fputs("name: mc\nversion: 2\nformat: linear-json\nobjective: softmax\nfeatures: [amount]\n"
          "score_class: 2\n",
          f);
    fclose(f);
    return dir;
}

static char *replace(const char *text, const char *from, const char *to);
static char *variant(const char *from, const char *to);

TEST(multiclass_and_batches)
{
    struct rts_errbuf eb = {0};
    struct runner *r = calloc(1, sizeof(*r));
    struct rts_eval batch;
    const char *dir = write_softmax_bundle();
    char model[160], *yaml, *y1, buf[2048];
    char recs[4][512] __attribute__((aligned(8)));
    struct rts_event evs[4];
    struct rts_decode_err err;
    double e1 = exp(1.0), e2 = exp(2.0);

    snprintf(model, sizeof(model), "workers: 1\nmodel: {path: %s, batch: {max: 4}}", dir);
    y1 = variant("workers: 1", model);
    yaml = replace(y1, "score >= 0.5", "p2 > 0.6 and p0 < 0.2"); /* rules read p0..p2 */
    free(y1);
    r->p = build(yaml, &eb);
    CHECK(r->p != NULL);
    if (!r->p) {
        fprintf(stderr, "%s\n", eb.msg);
        goto out;
    }
    CHECK_INT(r->p->nprobs, 3);
    CHECK_INT(r->p->conf->batch_max, 4);
    CHECK_INT(rts_eval_init(&r->e, r->p, 10, 1, &eb), RTS_ERR_OK);
    feed(r, "{\"id\":\"1\",\"k\":\"a\",\"ts\":1700000000000,\"amount\":100}");
    CHECK_NEAR(r->e.rows[0].frame[r->p->slot_probs].num, 1 / (1 + e1 + e2), 1e-6);
    CHECK_NEAR(r->e.rows[0].frame[r->p->slot_score].num, e2 / (1 + e1 + e2), 1e-6);
    CHECK_INT(r->e.rows[0].rule, 0); /* p2 0.665 > .6 and p0 0.09 < .2: block */
    buf[rts_pipeline_format_score(r->p, &r->e.rows[0], &(struct rts_event){0}, 1, 0, buf,
                                  sizeof(buf))] = 0;
    CHECK(strstr(buf, "\"probs\":[0.09") != NULL && strstr(buf, "\"model\":\"mc@2\"") != NULL);

    /* a batch of four gives what four single evaluations give */
    CHECK_INT(rts_eval_init(&batch, r->p, 10, 4, &eb), RTS_ERR_OK);
    for (int i = 0; i < 4; i++) {
        char json[128];
        snprintf(json, sizeof(json), "{\"id\":\"%d\",\"k\":\"%c\",\"ts\":%lld,\"amount\":%d}", i,
                 'b' + i % 2, 1700000000000LL + i, 20 * i);
        CHECK(rts_decode(r->p->conf->schema, json, strlen(json), 65536, 0, recs[i],
                         sizeof(recs[i]), &err) > 0);
        rts_event_view(r->p->conf->schema, recs[i], &evs[i], batch.rows[i].vals);
    }
    rts_pipeline_eval_batch(r->p, &batch, evs, 4);
    for (int i = 0; i < 4; i++) {
        rts_event_view(r->p->conf->schema, recs[i], &evs[i], r->e.rows[0].vals);
        rts_pipeline_eval(r->p, &r->e, &evs[i]);
        CHECK(batch.rows[i].by_model);
        for (size_t k = 0; k < r->p->nslots; k++) {
            if (k != (size_t)r->p->slot_decision) {
                CHECK(memcmp(&batch.rows[i].frame[k], &r->e.rows[0].frame[k],
                             sizeof(union rts_val)) == 0);
            }
        }
        CHECK_INT(batch.rows[i].rule, r->e.rows[0].rule);
    }
    rts_eval_fini(&batch);
    rts_eval_fini(&r->e);
    rts_pipeline_free(r->p);

    /* p3 does not exist for three classes */
    memcpy(strstr(yaml, "p2 > 0.6"), "p3", 2);
    r->p = build(yaml, &eb);
    CHECK(r->p == NULL && strstr(eb.msg, "p3") != NULL);
out:
    remove_bundle(dir);
    free(yaml);
    free(r);
}

/* Replace the first occurrence of @from in base_yaml by @to. */
static char *replace(const char *text, const char *from, const char *to)
{
    const char *at = strstr(text, from);
    size_t n = strlen(text) + strlen(to) + 1;
    char *s = malloc(n);

    if (!at) {
        fprintf(stderr, "replace: '%s' not in the text\n", from);
        abort();
    }
    snprintf(s, n, "%.*s%s%s", (int)(at - text), text, to, at + strlen(from));
    return s;
}

static char *variant(const char *from, const char *to)
{
    return replace(base_yaml, from, to);
}

static void expect_error(const char *from, const char *to, const char *want)
{
    struct rts_errbuf eb = {0};
    char *y = variant(from, to);
    struct rts_pipeline *p = build(y, &eb);

    CHECK(p == NULL);
    if (!strstr(eb.msg, want)) {
        fprintf(stderr, "expected error containing \"%s\", got \"%s\"\n", want, eb.msg);
        CHECK(0);
    }
    rts_pipeline_free(p);
    free(y);
}

/* Exact windows through the engine: the edge at t - W exactly (bucketed
 * windows lose the whole oldest bucket there), an event out of order, and a
 * window holding fewer events than it has answering from its buckets,
 * counted as an overflow. */
TEST(exact_windows)
{
    struct rts_errbuf eb = {0};
    struct runner *r = calloc(1, sizeof(*r));
    struct rts_feature_stats fs;
    char *y = variant("  - {name: c5m, agg: count, window: 5m}\n",
                      "  - {name: c5m, agg: count, window: 5m}\n"
                      "  - {name: xc5m, agg: count, window: 5m, exact: 2}\n"
                      "  - {name: xs5m, agg: sum, of: amount, window: 5m, exact: 8}\n"
                      "  - {name: xmax5m, agg: max, of: amount, window: 5m, exact: 8}\n");

    r->p = build(y, &eb);
    free(y);
    CHECK(r->p != NULL);
    if (!r->p) {
        fprintf(stderr, "%s\n", eb.msg);
        free(r);
        return;
    }
    CHECK_INT(rts_eval_init(&r->e, r->p, 1000, 1, &eb), RTS_ERR_OK);
    /* 1700001000000 starts a 9375 ms bucket of the 5m ring */
    CHECK_INT(feed(r, "{\"id\":\"1\",\"k\":\"a\",\"ts\":1700001000000,\"amount\":1}"), 0);
    CHECK_NEAR(feat(r, "xs5m"), 0, 0);
    CHECK_NEAR(feat(r, "xmax5m"), NAN, 0);
    CHECK_INT(feed(r, "{\"id\":\"2\",\"k\":\"a\",\"ts\":1700001001000,\"amount\":2}"), 0);
    CHECK_NEAR(feat(r, "xs5m"), 1, 0);
    CHECK_NEAR(feat(r, "xc5m"), 1, 0);
    CHECK_INT(feed(r, "{\"id\":\"3\",\"k\":\"a\",\"ts\":1700001002000,\"amount\":4}"), 0);
    CHECK_NEAR(feat(r, "xs5m"), 3, 0);
    CHECK_NEAR(feat(r, "xc5m"), 2, 0); /* 2 held, the oldest inside: the ring's, the same */
    rts_feature_worker_stats(r->e.fw, &fs);
    CHECK_INT(fs.exact_overflow, 1);
    /* W after the first: it left, the two others are in */
    CHECK_INT(feed(r, "{\"id\":\"4\",\"k\":\"a\",\"ts\":1700001300000,\"amount\":8}"), 0);
    CHECK_NEAR(feat(r, "xs5m"), 6, 0);
    CHECK_NEAR(feat(r, "xmax5m"), 4, 0);
    CHECK_NEAR(feat(r, "c5m"), 0, 0);  /* the ring lost their bucket */
    CHECK_NEAR(feat(r, "xc5m"), 0, 0); /* overflow: the ring's */
    /* one ms earlier, out of order: all three in, the later one not */
    CHECK_INT(feed(r, "{\"id\":\"5\",\"k\":\"a\",\"ts\":1700001299999,\"amount\":16}"), 0);
    CHECK_NEAR(feat(r, "xs5m"), 7, 0);
    CHECK_NEAR(feat(r, "xmax5m"), 4, 0);
    CHECK_NEAR(feat(r, "c5m"), 0, 0); /* their bucket left the ring at the last event */
    rts_feature_worker_stats(r->e.fw, &fs);
    CHECK_INT(fs.exact_overflow, 3);
    CHECK_INT(fs.late, 0);
    /* per key: the ring plus 8 + 16 N bytes per exact window, the count's
     * ring and the sum+max ring apart from the bucketed ones */
    CHECK(rts_features_state_size(r->p->features) >=
          (8 + 32 * 4 + 8 + 2 * 16) + (8 + 32 * 4 + 2 * 32 * 8 + 8 + 8 * 16));
    rts_eval_fini(&r->e);
    rts_pipeline_free(r->p);
    free(r);
}

TEST(config_errors)
{
    expect_error("workers: 1", "workers: 1\nwokers: 2", "t.yaml:3:");
    expect_error("workers: 1", "workers: 1\nwokers: 2", "unknown key");
    expect_error("window: 5m}", "window: 5x}", "features[0]");
    expect_error("window: 5m}", "window: 5x}", "duration");
    expect_error("amount / (mean1h + 1)", "amout / (mean1h + 1)", "unknown name 'amout'");
    expect_error("amount / (mean1h + 1)", "amout / (mean1h + 1)", "t.yaml:22:");
    expect_error("ratio * 2", "ratio * twice", "cycle");
    expect_error("\"amount / (mean1h + 1)\"", "\"twice + 1\"", "ratio -> twice -> ratio");
    expect_error("of: amount, window: 1h}\n  - {name: mean1h", "of: m, window: 1h}\n  - {name: mean1h",
                 "numeric");
    expect_error("agg: count, window: 5m", "agg: count", "needs a window");
    expect_error("agg: max,", "agg: maxx,", "unknown agg 'maxx'");
    expect_error("of: amount, last: 3", "of: nope, last: 3", "unknown field 'nope'");
    expect_error("type: float, required", "type: double, required", "unknown type 'double'");
    expect_error("sink: {type: null}", "sink: {type: nowhere}", "unknown sink 'nowhere'");
    expect_error("path: /dev/null}", "path: /dev/null, colour: red}", "source.colour");
    expect_error("{name: twice,", "{name: c5m,", "defined twice");
    expect_error("{name: twice,", "{name: amount,", "already an event field");
    expect_error("score >= 0.5", "decision + 1", "needs numbers");
    expect_error("min(1, amount / 100)", "score", "unknown name 'score'");
    expect_error("fallback: {score:", "fallbak: {score:", "unknown key");
    expect_error("workers: 1", "workers: 1\nmodel: {path: x, batch: {max: 0}}",
                 "model.batch.max: expected 1..1024, got 0");
    expect_error("workers: 1", "workers: 1\nmodel: {path: nowhere}", "model.path: ");
    expect_error("workers: 1", "workers: 1\ncheckpoint: {dir: x}", "not available in this build");
    expect_error("of: m, window: 1h}", "of: m, window: 1h, exact: 5000}", "exact must be 1..4096");
    /* exact on a window (held events) but not on velocity, last-N, since_last, expressions */
    expect_error("agg: velocity, window: 1m}", "agg: velocity, window: 1m, exact: 4}",
                 "t.yaml:21:51: features[9].exact: goes with agg: distinct, or count, sum, mean, "
                 "min, max with a window; not with velocity");
    expect_error("of: amount, last: 3}", "of: amount, last: 3, exact: 3}",
                 "features[6].exact: goes with a window, not with last");
    expect_error("agg: last, of: amount}", "agg: last, of: amount, exact: 2}",
                 "features[7].exact: goes with agg: distinct");
    expect_error("agg: since_last}", "agg: since_last, exact: 2}", "not with since_last");
    expect_error("expr: \"ratio * 2\"}", "expr: \"ratio * 2\", exact: 2}",
                 "features[11].exact: goes with agg: distinct, or count, sum, mean, min, max with "
                 "a window; not with expr");
    expect_error("agg: count, window: 5m}", "agg: count, window: 5m, exact: 4097}",
                 "features[0].exact: must be 1..4096 (events held per key), got 4097");
    expect_error("agg: count, window: 5m}", "agg: count, window: 5m, exact: -1}",
                 "features[0].exact: must be 1..4096");
    expect_error("of: m, window: 1h}", "of: m, window: 1h, buckets: 300}", "at most 255 buckets");
}

TEST(score_record)
{
    struct rts_errbuf eb = {0};
    struct runner *r = calloc(1, sizeof(*r));
    struct rts_event ev;
    char *buf;
    size_t n;

    r->p = build(base_yaml, &eb);
    CHECK_INT(rts_eval_init(&r->e, r->p, 10, 1, &eb), RTS_ERR_OK);
    feed(r, "{\"id\":\"t\\\"1\",\"k\":\"c-42\",\"ts\":1700000000123,\"amount\":50}");
    rts_event_view(r->p->conf->schema, r->rec, &ev, r->e.rows[0].vals);
    buf = malloc(rts_pipeline_record_max(r->p));
    n = rts_pipeline_format_score(r->p, &r->e.rows[0], &ev, 184, 0, buf, rts_pipeline_record_max(r->p));
    buf[n] = '\0';
    CHECK_STR(buf, "{\"id\":\"t\\\"1\",\"key\":\"c-42\",\"ts\":1700000000123,\"score\":0.5,"
                   "\"decision\":\"block\",\"reasons\":[\"score >= 0.5\"],\"model\":null,"
                   "\"path\":\"fallback\",\"latency_us\":184}\n");
    n = rts_pipeline_format_score(r->p, &r->e.rows[0], &ev, 1, 1, buf, rts_pipeline_record_max(r->p));
    buf[n] = '\0';
    CHECK(strstr(buf, "\"features\":{\"c5m\":0,\"s1h\":0,\"mean1h\":null,") != NULL);
    free(buf);
    rts_eval_fini(&r->e);
    rts_pipeline_free(r->p);
    free(r);
}

TEST(dlq_record)
{
    char buf[8192];
    size_t n = rts_dlq_format(buf, sizeof(buf), "missing_field", "amount", "decode",
                              "transactions", 3, 1882, "required field 'amount' is missing",
                              "{\"txn_id\":1}", 12, 0);

    buf[n] = '\0';
    CHECK_STR(buf, "{\"reason\":\"missing_field\",\"field\":\"amount\",\"stage\":\"decode\","
                   "\"source\":\"transactions/3@1882\",\"error\":\"required field 'amount' is "
                   "missing\",\"payload\":\"{\\\"txn_id\\\":1}\"}\n");
    n = rts_dlq_format(buf, sizeof(buf), "bad_encoding", NULL, "decode", "in.jsonl", -1, 7,
                       "invalid UTF-8", "a\xff", 2, 1);
    buf[n] = '\0';
    CHECK_STR(buf, "{\"reason\":\"bad_encoding\",\"field\":null,\"stage\":\"decode\","
                   "\"source\":\"in.jsonl@7\",\"error\":\"invalid UTF-8\","
                   "\"payload_base64\":\"Yf8=\",\"payload_truncated\":true}\n");
}

int main(void)
{
    RUN(windows_by_hand);
    RUN(eviction_at_max_keys);
    RUN(late_events_and_ttl);
    RUN(exact_windows);
    RUN(model_scores);
    RUN(model_feature_not_in_pipeline);
    RUN(model_circuit_breaker);
    RUN(multiclass_and_batches);
    RUN(config_errors);
    RUN(score_record);
    RUN(dlq_record);
    return TEST_EXIT();
}
