/*
 * test_rstate.c - the Redis window state against a real redis-server that
 * the test starts on a free loopback port (no persistence, a temporary
 * folder, a password) and stops.
 *
 * One event stream from the generator (thousands of events over a dozen
 * cards, a share of them moved later in arrival order: out of order, and
 * some too old for every window) goes through two pipelines that differ
 * only in `state:`, batch by batch through rts_pipeline_eval_batch: every
 * aggregate but distinct, and the expressions over them, agree bit for bit;
 * distinct agrees within 3 x 1.6% where the local count has the same window
 * (no value within one bucket of the edge), and Redis's count is within its
 * error of the exact bucketed count everywhere; late events are counted
 * alike; each batch is one round trip, and the project's code allocates
 * nothing for it (hiredis does: its buffers and replies). Then the failure paths: a stopped
 * server (SIGSTOP) times a batch out near its deadline, a killed one fails
 * batches at once, the events are degraded with missing aggregates while
 * expressions still compute, the breaker opens, and closes again once the
 * server is back. Timing checks are generous bounds, not measurements.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/log.h"
#include "daemon/config.h"
#include "daemon/pipeline.h"
#include "feature/rstate.h"
#include "source/gen.h"
#include "../lib/redis_server.h"
#include "test.h"
#include "wrap_alloc.h"

#define MS UINT64_C(1000000)
#define PASSWORD "rs-pw-9"
#define NEV 6000
#define BATCH 64
#define DIST_W 3600000 /* the distinct window and its resolution (8 buckets) */
#define DIST_R 450000

static struct redis_server rs; /* the test's own redis-server */
static size_t batches_run; /* by next_batch */

/* ---- pipelines ---- */

static const char *features_yaml =
    "pipeline: rs\n"
    "workers: 1\n"
    "source: {type: file, path: /dev/null}\n"
    "event:\n"
    "  id: txn_id\n"
    "  key: card_id\n"
    "  time: ts\n"
    "  fields:\n"
    "    card_id: {type: string, max_len: 64}\n"
    "    amount: {type: float}\n"
    "    merchant_id: {type: string}\n"
    "    mcc: {type: int}\n"
    "features:\n"
    "  - {name: c5m, agg: count, window: 5m}\n"
    "  - {name: s1h, agg: sum, of: amount, window: 1h}\n"
    "  - {name: mean1h, agg: mean, of: amount, window: 1h}\n"
    "  - {name: min1h, agg: min, of: amount, window: 1h}\n"
    "  - {name: max1h, agg: max, of: amount, window: 1h}\n"
    "  - {name: min10m, agg: min, of: amount, window: 10m, buckets: 20}\n"
    "  - {name: vel1m, agg: velocity, window: 1m}\n"
    "  - {name: vamt10m, agg: velocity, of: amount, window: 10m, buckets: 20}\n"
    "  - {name: d1h, agg: distinct, of: merchant_id, window: 1h}\n"
    "  - {name: mean3, agg: mean, of: amount, last: 3}\n"
    "  - {name: sum5, agg: sum, of: amount, last: 5}\n"
    "  - {name: min5, agg: min, of: amount, last: 5}\n"
    "  - {name: max5, agg: max, of: amount, last: 5}\n"
    "  - {name: cnt5, agg: count, of: mcc, last: 5}\n"
    "  - {name: lastmcc, agg: last, of: mcc}\n"
    "  - {name: since, agg: since_last}\n"
    "  - {name: ratio, expr: \"amount / (mean1h + 1)\"}\n"
    "  - {name: busy, expr: \"c5m > 3 or max5 > 100\"}\n"
    "  - {name: amt2, expr: \"amount * 2\"}\n"
    "  - {name: xc5m, agg: count, window: 5m, exact: 8}\n"
    "  - {name: xs1h, agg: sum, of: amount, window: 1h, exact: 16}\n"
    "  - {name: xmean1h, agg: mean, of: amount, window: 1h, exact: 16}\n"
    "  - {name: xmin10m, agg: min, of: amount, window: 10m, buckets: 20, exact: 4}\n"
    "  - {name: xmax1h, agg: max, of: amount, window: 1h, exact: 64}\n"
    "  - {name: xs1hall, agg: sum, of: amount, window: 1h, exact: 4096}\n"
    "  - {name: xmin1hall, agg: min, of: amount, window: 1h, exact: 4096}\n"
    "fallback: {score: \"0\"}\n"
    "sink: {type: null}\n"
    "limits: {max_event_bytes: 1024}\n";

/* The pipeline of features_yaml with @state appended (NULL: local). */
static struct rts_pipeline *build(const char *state, struct rts_errbuf *eb)
{
    char yaml[4096];
    struct rts_pipeline_conf *c;

    snprintf(yaml, sizeof(yaml), "%s%s", features_yaml, state ? state : "");
    c = rts_pipeline_conf_parse("rs.yaml", yaml, strlen(yaml), eb);
    return c ? rts_pipeline_new(c, eb) : NULL;
}

static void redis_state(char *buf, size_t cap, const char *prefix, const char *extra)
{
    snprintf(buf, cap,
             "state: {type: redis, addr: \"127.0.0.1:%d\", password: %s, prefix: \"%s\", %s}\n",
             rs.port, PASSWORD, prefix, extra);
}

/* ---- events ---- */

struct events {
    char *arena;     /* records, 8-aligned */
    size_t *off;     /* arrival order */
    int *card, *merchant;
    int64_t *ts;
    double *amount;
    size_t n;
};

/* The decimal number of @n bytes at @p ("c-17" less its "c-"); -1 if none. */
static int num_of(const char *p, size_t n)
{
    int v = 0;

    if (!p || n == 0) {
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        v = v * 10 + (p[i] - '0');
    }
    return v;
}

/* @n generator events over @cards cards, decoded against @s; then a share
 * delayed in arrival order: 5% by up to 300 positions (out of order within
 * the windows), 0.5% by 4000 (too old for every window). */
static int make_events(struct events *ev, const struct rts_schema *s, size_t n, uint64_t cards)
{
    struct rts_gen_opts o;
    struct rts_errbuf eb = {0};
    struct rts_gen *g;
    size_t cap = rts_decode_record_max(s, 1024), used = 0;
    size_t *delay = calloc(n, sizeof(*delay)), *idx = calloc(n, sizeof(*idx));
    size_t *off = calloc(n, sizeof(*off));
    uint64_t seed = 12345;

    rts_gen_opts_default(&o);
    o.seed = 7;
    o.cards = cards;
    o.merchants = 400;
    o.events_per_sec = 1;
    o.fraud_rate = 0.02;
    g = rts_gen_new(&o, &eb);
    ev->arena = malloc(n * cap);
    ev->off = calloc(n, sizeof(*ev->off));
    ev->card = calloc(n, sizeof(int));
    ev->merchant = calloc(n, sizeof(int));
    ev->ts = calloc(n, sizeof(int64_t));
    ev->amount = calloc(n, sizeof(double));
    if (!g || !ev->arena || !ev->off || !delay || !idx || !off || !ev->card || !ev->merchant ||
        !ev->ts || !ev->amount) {
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        char line[RTS_GEN_LINE_MAX];
        struct rts_decode_err err;
        size_t len = rts_gen_next(g, line, sizeof(line)), sz;
        sz = rts_decode(s, line, len, 1024, 0, ev->arena + used, cap, &err);
        if (!sz) {
            fprintf(stderr, "decode: %s\n", err.msg);
            return -1;
        }
        off[i] = used;
        used += sz;
        seed = seed * 6364136223846793005u + 1442695040888963407u;
        switch ((seed >> 33) % 200) {
        case 0:
            delay[i] = 4000;
            break;
        case 1: case 2: case 3: case 4: case 5: case 6: case 7: case 8: case 9: case 10:
            delay[i] = 1 + (seed >> 20) % 300;
            break;
        default:
            delay[i] = 0;
        }
        idx[i] = i;
    }
    /* arrival order: by i + delay, stable (insertion sort: n is small) */
    for (size_t i = 1; i < n; i++) {
        size_t k = idx[i], j = i;
        while (j > 0 && idx[j - 1] + delay[idx[j - 1]] > k + delay[k]) {
            idx[j] = idx[j - 1];
            j--;
        }
        idx[j] = k;
    }
    for (size_t i = 0; i < n; i++) {
        union rts_val vals[8];
        struct rts_event e;
        ev->off[i] = off[idx[i]];
        rts_event_view(s, ev->arena + ev->off[i], &e, vals);
        ev->card[i] = num_of(e.key.p + 2, e.key.n - 2);
        ev->merchant[i] = num_of(vals[2].str.p + 2, vals[2].str.n - 2);
        ev->ts[i] = e.ts_ms;
        ev->amount[i] = vals[1].num;
    }
    ev->n = n;
    rts_gen_free(g);
    free(delay);
    free(idx);
    free(off);
    return 0;
}

static void events_free(struct events *ev)
{
    free(ev->arena);
    free(ev->off);
    free(ev->card);
    free(ev->merchant);
    free(ev->ts);
    free(ev->amount);
}

/* Views of events [at, at + n) for pipeline @p's eval state @e. */
static void view_batch(const struct rts_pipeline *p, struct rts_eval *e, const struct events *ev,
                       size_t at, size_t n, struct rts_event *out)
{
    for (size_t i = 0; i < n; i++) {
        rts_event_view(p->conf->schema, ev->arena + ev->off[at + i], &out[i], e->rows[i].vals);
    }
}

/* Distinct merchants of card @card among the events that arrived before
 * @j: with time in (ts - W, ts] (@exact) or in the buckets (b(ts) - 8, b(ts)]
 * (the bucketed window Redis counts). Sorted unique ids into @set. */
static size_t distinct_set(const struct events *ev, size_t j, int bucketed, int *set)
{
    int64_t ts = ev->ts[j], q = ts / DIST_R;
    size_t n = 0;

    for (size_t i = 0; i < j; i++) {
        int64_t t = ev->ts[i];
        int in;
        size_t k;
        if (ev->card[i] != ev->card[j] || ev->merchant[i] < 0) {
            continue;
        }
        in = bucketed ? t / DIST_R > q - 8 && t / DIST_R <= q : t > ts - DIST_W && t <= ts;
        if (!in) {
            continue;
        }
        for (k = 0; k < n && set[k] < ev->merchant[i]; k++) {
        }
        if (k < n && set[k] == ev->merchant[i]) {
            continue;
        }
        memmove(set + k + 1, set + k, (n - k) * sizeof(*set));
        set[k] = ev->merchant[i];
        n++;
    }
    return n;
}

struct held {
    int64_t t;
    double v;
};

static int held_cmp(const void *a, const void *b)
{
    const struct held *x = a, *y = b;

    if (x->t != y->t) {
        return x->t < y->t ? -1 : 1;
    }
    return x->v < y->v ? -1 : x->v > y->v;
}

/* The sum of the amounts of card @card's events that arrived before @j with
 * time in (ts - @w, ts], added in ascending (time, amount) order: what an
 * exact window says while it holds them all. @scratch has room for j. */
static double exact_sum(const struct events *ev, size_t j, int64_t w, struct held *scratch)
{
    size_t n = 0;
    double sum = 0.0;

    for (size_t i = 0; i < j; i++) {
        if (ev->card[i] == ev->card[j] && !isnan(ev->amount[i]) && ev->ts[i] <= ev->ts[j] &&
            ev->ts[i] > ev->ts[j] - w) {
            scratch[n].t = ev->ts[i];
            scratch[n++].v = ev->amount[i];
        }
    }
    qsort(scratch, n, sizeof(*scratch), held_cmp);
    for (size_t i = 0; i < n; i++) {
        sum += scratch[i].v;
    }
    return sum;
}

/* Redis's HyperLogLog (16384 registers, standard error 0.81%) against the
 * exact count: 3 standard errors, or one value at small counts, where the
 * error is a register collision. */
static double tol_redis(size_t exact)
{
    double t = 3 * 0.0081 * (double)exact;

    return (t > 1 ? t : 1) + 1e-9;
}

static int same_bits(double a, double b)
{
    return (isnan(a) && isnan(b)) || memcmp(&a, &b, sizeof(a)) == 0;
}

TEST(local_and_redis_agree)
{
    struct rts_errbuf eb = {0};
    char state[512];
    struct rts_pipeline *pl = build(NULL, &eb), *pr;
    struct rts_eval el = {0}, er = {0};
    struct rts_event evl[BATCH], evr[BATCH];
    struct events ev = {0};
    struct rts_feature_stats fst;
    struct rts_rstate_stats rst = {0};
    size_t nf, mismatch = 0, compared = 0, dense = 0, batches = 0, out_of_order = 0;
    size_t bad_redis = 0, present[32] = {0}, exact_checked = 0, exact_bad = 0, edge = 0;
    long allocs = 0;
    int *set_a = calloc(NEV, sizeof(int)), *set_b = calloc(NEV, sizeof(int));
    int64_t *newest = calloc(64, sizeof(int64_t));
    struct held *scratch = calloc(NEV, sizeof(*scratch));
    int d1h = -1, xs1hall = -1, s1h = -1;

    redis_state(state, sizeof(state), "rts:agree:", "timeout: 10s");
    pr = build(state, &eb);
    CHECK(pl != NULL && pr != NULL && set_a && set_b && newest && scratch);
    if (!pl || !pr) {
        fprintf(stderr, "%s\n", eb.msg);
        goto out;
    }
    CHECK(pr->rstate != NULL && pl->rstate == NULL);
    CHECK(rts_eval_init(&el, pl, 100000, BATCH, &eb) == RTS_ERR_OK);
    CHECK(rts_eval_init(&er, pr, 100000, BATCH, &eb) == RTS_ERR_OK);
    CHECK(er.sw != NULL);
    CHECK_INT(make_events(&ev, pl->conf->schema, NEV, 12), 0);
    el.features_only = er.features_only = 1;
    nf = pl->nfeatures < 32 ? pl->nfeatures : 32;
    for (size_t k = 0; k < nf; k++) {
        if (strcmp(rts_features_name(pl->features, k), "d1h") == 0) {
            d1h = (int)k;
        }
        if (strcmp(rts_features_name(pl->features, k), "xs1hall") == 0) {
            xs1hall = (int)k;
        }
        if (strcmp(rts_features_name(pl->features, k), "s1h") == 0) {
            s1h = (int)k;
        }
    }
    for (size_t at = 0; at < ev.n; at += BATCH) {
        size_t n = ev.n - at < BATCH ? ev.n - at : BATCH;
        long a0;
        view_batch(pl, &el, &ev, at, n, evl);
        view_batch(pr, &er, &ev, at, n, evr);
        rts_pipeline_eval_batch(pl, &el, evl, n);
        a0 = atomic_load(&wrap_allocs);
        rts_pipeline_eval_batch(pr, &er, evr, n);
        allocs += atomic_load(&wrap_allocs) - a0; /* hiredis's own are not counted */
        batches++;
        for (size_t i = 0; i < n; i++) {
            const union rts_val *fl = el.rows[i].frame + pl->nfields;
            const union rts_val *fr = er.rows[i].frame + pr->nfields;
            size_t j = at + i;
            int ooo = ev.ts[j] < newest[ev.card[j]];
            int64_t before = newest[ev.card[j]];
            CHECK_INT(er.rows[i].degraded, 0);
            out_of_order += ooo;
            /* an exact window with room for every event: exact unless the
             * event is older than newest - S (an hour: S = W), the bucketed
             * sum differing where an event is within a bucket of the edge */
            if (xs1hall >= 0 && s1h >= 0 && ev.ts[j] >= before - 3600000) {
                double want = exact_sum(&ev, j, 3600000, scratch);
                exact_checked++;
                edge += !same_bits(fl[s1h].num, want);
                if (!same_bits(fl[xs1hall].num, want) && exact_bad++ < 5) {
                    fprintf(stderr, "event %zu xs1hall: local %.17g exact %.17g\n", j,
                            fl[xs1hall].num, want);
                }
            }
            newest[ev.card[j]] = ev.ts[j] > newest[ev.card[j]] ? ev.ts[j] : newest[ev.card[j]];
            for (size_t k = 0; k < nf; k++) {
                present[k] += !isnan(fl[k].num);
                if ((int)k == d1h || same_bits(fl[k].num, fr[k].num)) {
                    continue;
                }
                if (mismatch++ < 10) {
                    fprintf(stderr, "event %zu (%.*s) %s: local %.17g redis %.17g\n", j,
                            (int)evl[i].id.n, evl[i].id.p, rts_features_name(pl->features, k),
                            fl[k].num, fr[k].num);
                }
            }
            if (d1h >= 0) {
                size_t na = distinct_set(&ev, j, 0, set_a), nb = distinct_set(&ev, j, 1, set_b);
                double l = fl[d1h].num, r = fr[d1h].num;
                /* Redis: its HyperLogLog of the bucketed window, everywhere */
                if (!(fabs(r - (double)nb) <= tol_redis(nb)) && bad_redis++ < 5) {
                    fprintf(stderr, "event %zu (%.*s, %s) d1h: redis %.17g exact %zu\n", j,
                            (int)evl[i].id.n, evl[i].id.p, ooo ? "out of order" : "in order", r,
                            nb);
                }
                /* local: where both windows hold the same values, Redis's
                 * within 3 x 1.6% (two values at small counts: a register
                 * collision in either sketch) */
                if (!ooo && na == nb && memcmp(set_a, set_b, na * sizeof(int)) == 0) {
                    double tol = 3 * 0.016 * (double)nb > 2 ? 3 * 0.016 * (double)nb : 2;
                    compared++;
                    dense += nb > 16;
                    if (!(fabs(r - l) <= tol + 1e-9)) {
                        CHECK(fabs(r - l) <= tol + 1e-9);
                        fprintf(stderr, "event %zu d1h: local %.17g redis %.17g exact %zu\n", j,
                                l, r, nb);
                    }
                }
            }
        }
    }
    CHECK_INT(mismatch, 0);
    CHECK_INT(bad_redis, 0);
    CHECK_INT(allocs, 0); /* the project's code allocates nothing per batch */
    for (size_t k = 0; k < nf; k++) {
        CHECK(present[k] > ev.n / 2); /* no feature compared as missing throughout */
    }
    CHECK(out_of_order > ev.n / 50);
    CHECK(compared > ev.n / 3); /* the distinct comparison is not vacuous */
    CHECK(dense > 100);         /* and covers the local HyperLogLog */
    CHECK_INT(exact_bad, 0);
    CHECK(exact_checked > ev.n * 9 / 10);
    CHECK(edge > 100); /* where buckets are not exact, the held events are */
    rts_feature_worker_stats(el.fw, &fst);
    rts_rstate_worker_stats_add(er.sw, &rst);
    CHECK(fst.late > 10); /* the stream has events too old for a window */
    CHECK_INT(rst.late, fst.late);
    /* some keys hold fewer events than their window has: the buckets answer */
    CHECK(fst.exact_overflow > ev.n / 10 && fst.exact_overflow < ev.n);
    CHECK_INT(rst.exact_overflow, fst.exact_overflow);
    CHECK_INT(rst.batches, batches); /* one round trip per batch */
    CHECK_INT(rst.degraded, 0);
    CHECK_INT(rst.errors + rst.timeouts + rst.refused + rst.bad_replies, 0);
    fprintf(stderr,
            "  %zu events, %zu out of order, %llu late, d1h compared on %zu (%zu dense), "
            "%llu exact window overflows, xs1hall against every event on %zu (%zu differ from "
            "the bucketed s1h)\n",
            ev.n, out_of_order, (unsigned long long)fst.late, compared, dense,
            (unsigned long long)fst.exact_overflow, exact_checked, edge);
out:
    events_free(&ev);
    free(set_a);
    free(set_b);
    free(newest);
    free(scratch);
    rts_eval_fini(&el);
    rts_eval_fini(&er);
    rts_pipeline_free(pl);
    rts_pipeline_free(pr);
}

/* One batch of events [at, at + n) through @p; returns its wall time. */
static uint64_t run_batch(const struct rts_pipeline *p, struct rts_eval *e,
                          const struct events *ev, size_t at, size_t n)
{
    struct rts_event evs[BATCH];
    uint64_t t0 = rts_now_ns();

    view_batch(p, e, ev, at, n, evs);
    rts_pipeline_eval_batch(p, e, evs, n);
    return rts_now_ns() - t0;
}

/* The next batch of the stream (from the start again at its end). */
static uint64_t next_batch(const struct rts_pipeline *p, struct rts_eval *e,
                           const struct events *ev, size_t *at)
{
    batches_run++;
    if (*at + BATCH > ev->n) {
        *at = 0;
    }
    *at += BATCH;
    return run_batch(p, e, ev, *at - BATCH, BATCH);
}

static int slot_of(const struct rts_pipeline *p, const char *name)
{
    enum rts_type t;
    return rts_features_resolve(p->features, name, strlen(name), &t);
}

/* Every row of the last batch degraded for the state, its aggregates
 * missing, its other expressions computed. */
static int all_degraded(const struct rts_pipeline *p, const struct rts_eval *e, size_t n)
{
    int c5m = slot_of(p, "c5m"), amt2 = slot_of(p, "amt2"), amount = slot_of(p, "amount");

    for (size_t i = 0; i < n; i++) {
        const union rts_val *fr = e->rows[i].frame;
        if (!(e->rows[i].degraded & RTS_DEGRADED_STATE) || !isnan(fr[c5m].num) ||
            fr[amt2].num != fr[amount].num * 2) {
            return 0;
        }
    }
    return 1;
}

static int none_degraded(const struct rts_eval *e, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (e->rows[i].degraded) {
            return 0;
        }
    }
    return 1;
}

TEST(redis_down_degrades_and_recovers)
{
    struct rts_errbuf eb = {0};
    char state[512], rec[4096];
    struct rts_pipeline *p;
    struct rts_eval e = {0};
    struct events ev = {0};
    struct rts_rstate_stats st = {0};
    struct rts_event one;
    size_t at = 0, len, ndeg = 0;
    int closed = 0, ok = 0;

    redis_state(state, sizeof(state), "rts:down:",
                "timeout: 300ms, breaker: {window: 10s, min_calls: 3, failure_ratio: 0.5, "
                "open_for: 300ms, max_open: 300ms, probes: 1}");
    p = build(state, &eb);
    CHECK(p != NULL);
    if (!p) {
        fprintf(stderr, "%s\n", eb.msg);
        return;
    }
    CHECK(rts_eval_init(&e, p, 1000, BATCH, &eb) == RTS_ERR_OK);
    CHECK_INT(make_events(&ev, p->conf->schema, 20 * BATCH, 12), 0);

    CHECK(next_batch(p, &e, &ev, &at) < 60000 * MS);
    CHECK(none_degraded(&e, BATCH));

    /* stopped: the batch gives up at its deadline (300 ms), not later */
    redis_pause(&rs);
    CHECK(next_batch(p, &e, &ev, &at) < 3000 * MS);
    CHECK(all_degraded(p, &e, BATCH));
    ndeg++;
    /* the record lists the state among the degraded */
    rts_event_view(p->conf->schema, ev.arena + ev.off[at - 1], &one, e.rows[BATCH - 1].vals);
    len = rts_pipeline_format_score(p, &e.rows[BATCH - 1], &one, 1, 0, rec, sizeof(rec));
    CHECK(len > 0 && len < rts_pipeline_record_max(p));
    rec[len] = '\0';
    CHECK(strstr(rec, ",\"degraded\":[\"state\"]") != NULL);
    kill(rs.pid, SIGCONT);
    /* the next batch reconnects at once; on a busy machine the server may
     * take a while to run again (and the breaker to close), hence a loop */
    for (int i = 0; i < 200 && !ok; i++) {
        next_batch(p, &e, &ev, &at);
        ok = none_degraded(&e, BATCH) &&
             rts_breaker_state(rts_rstate_breaker(p->rstate)) == RTS_BREAKER_CLOSED;
        ndeg += !none_degraded(&e, BATCH);
        usleep(ok ? 0 : 50000);
    }
    CHECK(ok);

    /* killed: batches fail at once, and the breaker opens */
    redis_kill(&rs);
    for (int i = 0; i < 50 && rts_breaker_state(rts_rstate_breaker(p->rstate)) !=
                                  RTS_BREAKER_OPEN; i++) {
        CHECK(next_batch(p, &e, &ev, &at) < 2000 * MS); /* a refused connect takes microseconds */
        CHECK(all_degraded(p, &e, BATCH));
        ndeg++;
    }
    CHECK_INT(rts_breaker_state(rts_rstate_breaker(p->rstate)), RTS_BREAKER_OPEN);
    for (int i = 0; i < 3; i++) {
        CHECK(next_batch(p, &e, &ev, &at) < 2000 * MS);
        CHECK(all_degraded(p, &e, BATCH));
        ndeg++;
    }
    rts_rstate_worker_stats_add(e.sw, &st);
    CHECK(st.timeouts >= 1);
    CHECK(st.errors >= 1);
    CHECK(st.refused >= 1); /* the batch after the trip comes microseconds later */
    CHECK_INT(st.batches + st.refused, batches_run);
    CHECK_INT(st.degraded, ndeg * BATCH);

    /* back (empty): the breaker probes after open_for and closes */
    CHECK_INT(redis_launch(&rs), 0);
    for (int i = 0; i < 200 && !closed; i++) {
        usleep(50000);
        next_batch(p, &e, &ev, &at);
        closed = rts_breaker_state(rts_rstate_breaker(p->rstate)) == RTS_BREAKER_CLOSED &&
                 none_degraded(&e, BATCH);
    }
    CHECK(closed);
    CHECK(!isnan(e.rows[0].frame[slot_of(p, "c5m")].num));
    rts_eval_fini(&e);
    rts_pipeline_free(p);
    events_free(&ev);
}

static int conf_error(const char *state, const char *want)
{
    char yaml[4096];
    struct rts_errbuf eb = {0};
    struct rts_pipeline_conf *c;

    snprintf(yaml, sizeof(yaml), "%s%s", features_yaml, state);
    c = rts_pipeline_conf_parse("rs.yaml", yaml, strlen(yaml), &eb);
    rts_pipeline_conf_free(c);
    if (c || !strstr(eb.msg, want)) {
        fprintf(stderr, "state %s: got \"%s\", want \"%s\"\n", state, c ? "ok" : eb.msg, want);
        return 0;
    }
    return 1;
}

TEST(config)
{
    struct rts_errbuf eb = {0};
    struct rts_pipeline_conf *c;
    char yaml[4096];

    CHECK(conf_error("state: {type: mongo}\n", "state: unknown state type 'mongo'"));
    CHECK(conf_error("state: {type: local, addr: x}\n", "'addr' goes with type: redis"));
    CHECK(conf_error("state: {type: redis, adr: x}\n", "state"));
    CHECK(conf_error("state: {type: redis, timeout: 0}\n", "timeout >= 1ms"));
    CHECK(conf_error("state: {type: redis, breaker: {probes: 0}}\n", "state.breaker"));
    CHECK(conf_error("state: {type: redis, tls: {}}\n", "tls is not available"));
    snprintf(yaml, sizeof(yaml), "%sstate: {type: redis, addr: \"127.0.0.1:1\", db: 2}\n",
             features_yaml);
    c = rts_pipeline_conf_parse("rs.yaml", yaml, strlen(yaml), &eb);
    CHECK(c != NULL);
    if (c) {
        CHECK_INT(c->state.redis, 1);
        CHECK(c->state.prefix == NULL); /* rts:<pipeline>: */
        CHECK_INT(c->state.timeout_us, 100000);
        CHECK_INT(c->state.breaker.probe_calls, 3);
    }
    rts_pipeline_conf_free(c);
    snprintf(yaml, sizeof(yaml), "%s", features_yaml);
    c = rts_pipeline_conf_parse("rs.yaml", yaml, strlen(yaml), &eb);
    CHECK(c != NULL && !c->state.redis);
    rts_pipeline_conf_free(c);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN); /* hiredis writes with write(2) */
    rts_log_set_level(RTS_LOG_ERROR); /* the failure paths warn on purpose */
    if (redis_start(&rs, PASSWORD) != 0) {
        fprintf(stderr, "cannot start redis-server (is it installed? make deps-test)\n");
        redis_stop(&rs);
        return 1;
    }
    RUN(config);
    RUN(local_and_redis_agree);
    RUN(redis_down_degrades_and_recovers);
    redis_stop(&rs);
    return TEST_EXIT();
}
