/*
 * pipeline.c - compile the expressions of a pipeline over one frame and
 * evaluate an event through features, score and rules; format the score and
 * DLQ records. See pipeline.h.
 */
#include "daemon/pipeline.h"

#include <math.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/fmt.h"
#include "core/path.h"
#include "core/text.h"
#include "expr/expr.h"
#include "model/drift.h"

struct scope_ctx {
    const struct rts_pipeline *p;
    int with_score; /* rules and alerts see score and decision; fallback does not */
};

static int scope_resolve(void *ctx, const char *name, size_t len, enum rts_type *type)
{
    const struct scope_ctx *sc = ctx;

    if (sc->with_score && len == 5 && memcmp(name, "score", 5) == 0) {
        *type = RTS_T_NUM;
        return sc->p->slot_score;
    }
    if (sc->with_score && len == 8 && memcmp(name, "decision", 8) == 0) {
        *type = RTS_T_STR;
        return sc->p->slot_decision;
    }
    if (sc->with_score && len >= 2 && len <= 5 && name[0] == 'p' && sc->p->nprobs) {
        size_t k = 0, i = 1;
        while (i < len && name[i] >= '0' && name[i] <= '9' && !(i == 1 && name[i] == '0' && len > 2)) {
            k = k * 10 + (size_t)(name[i++] - '0');
        }
        if (i == len && k < sc->p->nprobs) {
            *type = RTS_T_NUM;
            return sc->p->slot_probs + (int)k;
        }
    }
    return rts_features_resolve(sc->p->features, name, len, type);
}

static struct rts_expr *compile_at(const struct rts_pipeline *p, const struct rts_conf_expr *ce,
                                   int with_score, int want_bool, struct rts_errbuf *eb)
{
    struct scope_ctx sc = {p, with_score};
    struct rts_expr_scope scope = {scope_resolve, &sc};
    struct rts_expr *e = rts_expr_compile(ce->src, &scope, eb);
    enum rts_type t;
    char msg[sizeof(eb->msg)];

    if (!e) {
        memcpy(msg, eb->msg, sizeof(msg));
        rts_errf(eb, RTS_ERR_INVAL, ce->line, ce->column, "%s:%d:%d: %s: %s (column %d of \"%s\")",
                 p->conf->file, ce->line, ce->column, ce->path, msg, eb->column, ce->src);
        return NULL;
    }
    t = rts_expr_type(e);
    if (want_bool ? (t != RTS_T_BOOL && t != RTS_T_NUM) : t == RTS_T_STR) {
        rts_errf(eb, RTS_ERR_INVAL, ce->line, ce->column, "%s:%d:%d: %s: expected a %s, got a %s",
                 p->conf->file, ce->line, ce->column, ce->path,
                 want_bool ? "condition" : "number", rts_type_name(t));
        rts_expr_free(e);
        return NULL;
    }
    return e;
}

/* "\"text\"" escaped into a new string, with @pre and @post around it. */
static char *json_quoted(const char *pre, const char *s, const char *post)
{
    size_t n = strlen(s), cap = strlen(pre) + 6 * n + 3 + strlen(post) + 1;
    char *out = malloc(cap);
    size_t o;

    if (!out) {
        return NULL;
    }
    o = (size_t)snprintf(out, cap, "%s", pre);
    o += rts_fmt_json_str(out + o, cap - o, s, n);
    snprintf(out + o, cap - o, "%s", post);
    return out;
}

static enum rts_err make_breaker(struct rts_pipeline *p, struct rts_errbuf *eb)
{
    const struct rts_pipeline_conf *c = p->conf;
    struct rts_breaker_opts o;

    memset(&o, 0, sizeof(o));
    if (rts_breaker_conf_opts(&c->breaker, &o)) {
        return rts_errf(eb, RTS_ERR_INVAL, 0, 0, "model.breaker: %s", RTS_BREAKER_CONF_RANGES);
    }
    o.timeout_ns = (uint64_t)c->model_timeout_us * 1000;
    o.on_transition = rts_breaker_log_transition;
    p->breaker = rts_breaker_new("model", &o, eb);
    if (!p->breaker) {
        rts_err_prefix(eb, "model.breaker");
        return RTS_ERR_INVAL;
    }
    return RTS_ERR_OK;
}

struct rts_model_ctx *rts_model_ctx_new(const struct rts_pipeline *p, const struct rts_bundle *b,
                                       int nworkers, struct rts_errbuf *eb)
{
    struct rts_model_ctx *c = calloc(1, sizeof(*c));
    size_t ny = rts_model_noutputs(b->model);

    if (!c) {
        rts_errf(eb, RTS_ERR_NOMEM, 0, 0, "out of memory");
        return NULL;
    }
    c->bundle = b;
    c->nx = b->nfeatures;
    if ((p->nprobs ? p->nprobs : 1) != ny) {
        rts_errf(eb, RTS_ERR_INVAL, 0, 0,
                 "%s: the model gives %zu outputs per row, the pipeline's rules were built for "
                 "%zu",
                 b->label, ny, p->nprobs ? p->nprobs : (size_t)1);
        goto fail;
    }
    if (c->nx > p->nslots) {
        rts_errf(eb, RTS_ERR_INVAL, 0, 0, "%s: %zu inputs, more than the pipeline has values",
                 b->label, c->nx);
        goto fail;
    }
    c->slots = calloc(c->nx ? c->nx : 1, sizeof(*c->slots));
    if (!c->slots) {
        rts_errf(eb, RTS_ERR_NOMEM, 0, 0, "out of memory");
        goto fail;
    }
    for (size_t i = 0; i < c->nx; i++) {
        const char *name = b->features[i];
        enum rts_type t;
        int slot = rts_features_resolve(p->features, name, strlen(name), &t);
        if (slot < 0 || t == RTS_T_STR) {
            rts_errf(eb, RTS_ERR_INVAL, 0, 0, "%s: the model reads '%s', which is %s of the pipeline",
                     b->label, name, slot < 0 ? "not a field or feature" : "a string field");
            goto fail;
        }
        c->slots[i] = slot;
    }
    if (nworkers > 0) {
        struct rts_drift_opts o = {0};
        o.sub_windows = 60;
        o.sub_window_us = p->conf->drift_window_us / 60 > 0 ? p->conf->drift_window_us / 60 : 0;
        c->drift = rts_drift_new(b, &o, eb);
        c->counts = calloc((size_t)nworkers, sizeof(*c->counts));
        if (!c->drift || !c->counts) {
            goto fail;
        }
        c->nworkers = nworkers;
        for (int i = 0; i < nworkers; i++) {
            c->counts[i] = rts_drift_worker_new(c->drift, eb);
            if (!c->counts[i]) {
                goto fail;
            }
        }
    }
    return c;
fail:
    rts_model_ctx_free(c);
    return NULL;
}

void rts_model_ctx_free(struct rts_model_ctx *c)
{
    if (!c) {
        return;
    }
    for (int i = 0; c->counts && i < c->nworkers; i++) {
        rts_drift_worker_free(c->counts[i]);
    }
    free(c->counts);
    rts_drift_free(c->drift);
    free(c->slots);
    free(c);
}

/* Load the bundle and find each model input among the pipeline's fields and
 * features, by name. */
static enum rts_err load_model(struct rts_pipeline *p, struct rts_errbuf *eb)
{
    char alt[PATH_MAX];
    const char *dir = rts_path_resolve(p->conf->model_path, alt, sizeof(alt));

    p->bundle = rts_bundle_load(dir, eb);
    if (!p->bundle) {
        rts_err_prefix(eb, "model.path");
        return RTS_ERR_INVAL;
    }
    if (rts_model_noutputs(p->bundle->model) > 1) {
        p->nprobs = rts_model_noutputs(p->bundle->model);
        p->slot_probs = p->slot_decision + 1;
        p->nslots = (size_t)p->slot_probs + p->nprobs;
    }
    p->model_ctx = rts_model_ctx_new(p, p->bundle, 0, eb);
    if (!p->model_ctx) {
        rts_err_prefix(eb, "model.path");
        return RTS_ERR_INVAL;
    }
    return p->conf->model_timeout_us ? make_breaker(p, eb) : RTS_ERR_OK;
}

struct rts_pipeline *rts_pipeline_new(struct rts_pipeline_conf *conf, struct rts_errbuf *eb)
{
    struct rts_pipeline *p = calloc(1, sizeof(*p));

    if (!p) {
        rts_pipeline_conf_free(conf);
        rts_errf(eb, RTS_ERR_NOMEM, 0, 0, "out of memory");
        return NULL;
    }
    p->conf = conf;
    p->features = rts_features_compile(conf->schema, conf->features, conf->nfeatures, eb);
    if (!p->features) {
        goto fail;
    }
    p->nfields = rts_schema_nfields(conf->schema);
    p->nfeatures = conf->nfeatures;
    p->slot_score = (int)(p->nfields + p->nfeatures);
    p->slot_decision = p->slot_score + 1;
    p->nslots = (size_t)p->slot_decision + 1;
    if (conf->model_path && load_model(p, eb)) {
        goto fail; /* first: a multi-class model adds p0..pK-1 to the rules' scope */
    }
    if (conf->nstores) {
        p->lookup = rts_lookup_new(conf->schema, conf->features, conf->nfeatures, conf->stores,
                                   conf->nstores, eb);
        if (!p->lookup) {
            goto fail;
        }
    }
    if (conf->state.redis) {
        p->rstate = rts_rstate_new(conf->schema, conf->features, conf->nfeatures, &conf->state,
                                   conf->name, conf->limits.key_ttl_us / 1000, eb);
        if (!p->rstate) {
            goto fail;
        }
    }
    p->fallback = compile_at(p, &conf->fallback_score, 0, 0, eb);
    if (!p->fallback) {
        goto fail;
    }
    p->rules = calloc(conf->nrules ? conf->nrules : 1, sizeof(*p->rules));
    p->feature_keys = calloc(p->nfeatures ? p->nfeatures : 1, sizeof(*p->feature_keys));
    if (!p->rules || !p->feature_keys) {
        goto nomem;
    }
    for (size_t i = 0; i < conf->nrules; i++) {
        const struct rts_rule_conf *rc = &conf->rules[i];
        struct rts_rule *r = &p->rules[i];

        p->nrules++;
        if (rc->when.src) {
            r->when = compile_at(p, &rc->when, 1, 1, eb);
            if (!r->when) {
                goto fail;
            }
        }
        r->decision.p = rc->decision;
        r->decision.n = (uint32_t)strlen(rc->decision);
        r->reason_json = rc->reason ? json_quoted("[", rc->reason, "]") : strdup("[]");
        if (!r->reason_json) {
            goto nomem;
        }
    }
    if (conf->alerts.ops) {
        p->alert_when = compile_at(p, &conf->alerts_when, 1, 1, eb);
        if (!p->alert_when) {
            goto fail;
        }
    }
    for (size_t i = 0; i < p->nfeatures; i++) {
        p->feature_keys[i] = json_quoted("", rts_features_name(p->features, i), ":");
        if (!p->feature_keys[i]) {
            goto nomem;
        }
    }
    return p;
nomem:
    rts_errf(eb, RTS_ERR_NOMEM, 0, 0, "out of memory");
fail:
    rts_pipeline_free(p);
    return NULL;
}

void rts_pipeline_free(struct rts_pipeline *p)
{
    if (!p) {
        return;
    }
    for (size_t i = 0; i < p->nrules; i++) {
        rts_expr_free(p->rules[i].when);
        free(p->rules[i].reason_json);
    }
    for (size_t i = 0; p->feature_keys && i < p->nfeatures; i++) {
        free(p->feature_keys[i]);
    }
    free(p->feature_keys);
    free(p->rules);
    rts_expr_free(p->fallback);
    rts_expr_free(p->alert_when);
    rts_features_free(p->features);
    rts_model_ctx_free(p->model_ctx);
    rts_lookup_free(p->lookup);
    rts_rstate_free(p->rstate);
    rts_bundle_free(p->bundle);
    rts_breaker_free(p->breaker);
    rts_pipeline_conf_free(p->conf);
    free(p);
}

enum rts_err rts_eval_init(struct rts_eval *e, const struct rts_pipeline *p, uint64_t max_keys,
                           size_t batch_max, struct rts_errbuf *eb)
{
    const struct rts_limits *l = &p->conf->limits;
    const struct rts_field_spec *key =
        rts_schema_field(p->conf->schema, (size_t)rts_schema_role(p->conf->schema, RTS_ROLE_KEY));
    struct rts_feature_limits fl = {
        .max_keys = max_keys && !p->rstate ? max_keys : 1, /* redis: the table is unused */
        /* keys are stored inline: as long as the schema lets them be */
        .max_key_bytes = key->max_len && key->max_len < RTS_KEY_MAX_BYTES ? key->max_len
                                                                          : RTS_KEY_MAX_BYTES,
        .key_ttl_ms = l->key_ttl_us / 1000,
        .max_sketches = (uint64_t)l->max_sketches,
    };
    size_t nx = p->nslots, ny = p->nprobs ? p->nprobs : 1; /* any model reads <= nslots */

    memset(e, 0, sizeof(*e));
    e->batch_max = batch_max < 1 ? 1 : batch_max > RTS_BATCH_MAX ? RTS_BATCH_MAX : batch_max;
    e->rows = calloc(e->batch_max, sizeof(*e->rows));
    e->frames = calloc(e->batch_max * p->nslots, sizeof(*e->frames));
    e->vals = calloc(e->batch_max * (p->nfields ? p->nfields : 1), sizeof(*e->vals));
    e->mx = calloc(e->batch_max * (nx ? nx : 1), sizeof(*e->mx));
    e->my = calloc(e->batch_max * ny, sizeof(*e->my));
    e->idx = calloc(e->batch_max, sizeof(*e->idx));
    e->live = p->model_ctx;
    if (!e->rows || !e->frames || !e->vals || !e->mx || !e->my || !e->idx) {
        rts_eval_fini(e);
        return rts_errf(eb, RTS_ERR_NOMEM, 0, 0, "out of memory");
    }
    for (size_t i = 0; i < e->batch_max; i++) {
        e->rows[i].frame = e->frames + i * p->nslots;
        e->rows[i].vals = e->vals + i * (p->nfields ? p->nfields : 1);
    }
    e->fw = rts_feature_worker_new(p->features, &fl, eb);
    if (!e->fw) {
        rts_eval_fini(e);
        return eb ? eb->code : RTS_ERR_NOMEM;
    }
    if (p->lookup) {
        size_t nl = rts_lookup_count(p->lookup);
        e->lout = calloc(e->batch_max * (nl ? nl : 1), sizeof(*e->lout));
        e->degraded = calloc(e->batch_max, sizeof(*e->degraded));
        e->lw = rts_lookup_worker_new(p->lookup, e->batch_max, eb);
        if (!e->lout || !e->degraded || !e->lw) {
            rts_eval_fini(e);
            return eb && eb->code ? eb->code : RTS_ERR_NOMEM;
        }
    }
    if (p->rstate && !(e->sw = rts_rstate_worker_new(p->rstate, e->batch_max, eb))) {
        rts_eval_fini(e);
        return eb && eb->code ? eb->code : RTS_ERR_NOMEM;
    }
    return RTS_ERR_OK;
}

void rts_eval_fini(struct rts_eval *e)
{
    rts_feature_worker_free(e->fw);
    rts_lookup_worker_free(e->lw);
    rts_rstate_worker_free(e->sw);
    free(e->lout);
    free(e->degraded);
    free(e->rows);
    free(e->frames);
    free(e->vals);
    free(e->mx);
    free(e->my);
    free(e->idx);
    memset(e, 0, sizeof(*e));
}

/* One call of model @m for the @n rows listed in e->idx; the outputs go to
 * e->my, row after row. Returns the call's status; @t0 is its start. */
static enum rts_err predict_rows(struct rts_eval *e, const struct rts_model_ctx *m, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const union rts_val *fr = e->rows[e->idx[i]].frame;
        float *x = e->mx + i * m->nx;
        for (size_t k = 0; k < m->nx; k++) {
            x[k] = (float)fr[m->slots[k]].num; /* NaN stays NaN: missing */
        }
    }
    return rts_model_predict(m->bundle->model, e->mx, n, m->nx, e->my);
}

/* Score the rows listed in e->idx with @m (one model call); 1 when the
 * model scored them, 0 when the call failed. */
static int score_group(const struct rts_pipeline *p, struct rts_eval *e,
                       const struct rts_model_ctx *m, size_t n, uint64_t t0)
{
    size_t ny = p->nprobs ? p->nprobs : 1;
    enum rts_err rc = predict_rows(e, m, n);
    uint64_t t1 = rts_now_ns();

    e->model_ns += t1 - t0;
    if (rc != RTS_ERR_OK) {
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        struct rts_eval_row *r = &e->rows[e->idx[i]];
        union rts_val *fr = r->frame;
        const float *y = e->my + i * ny;
        fr[p->slot_score].num = (double)y[m->bundle->score_class];
        for (size_t k = 0; k < p->nprobs; k++) {
            fr[p->slot_probs + (int)k].num = (double)y[k];
        }
        r->model = m;
        if (m->counts && e->worker < m->nworkers) {
            rts_drift_add(m->counts[e->worker], e->mx + i * m->nx, y[m->bundle->score_class]);
        }
    }
    return 1;
}

/* The model stage: each row goes to the live model, or to the candidate for
 * the canary share of keys, one call per model; with shadow on, the
 * candidate also scores the live rows, into shadow_score. Rows no model
 * scored (no model, circuit open, a failed call) keep model == NULL. */
static void score_by_models(const struct rts_pipeline *p, struct rts_eval *e,
                            const struct rts_event *evs, size_t n)
{
    const struct rts_model_ctx *groups[2] = {e->live, e->cand};
    uint64_t t0 = rts_now_ns(), t1;
    int ok = 1;

    for (size_t i = 0; i < n; i++) {
        e->rows[i].shadow_score = NAN;
    }
    if (!e->live || (p->breaker && !rts_breaker_allow(p->breaker, t0))) {
        return;
    }
    for (int g = 0; g < 2 && ok; g++) {
        size_t k = 0;
        if (!groups[g]) {
            continue;
        }
        for (size_t i = 0; i < n; i++) {
            int to_cand = e->cand && (uint32_t)evs[i].key_hash < e->canary_cut;
            if (to_cand == g) {
                e->idx[k++] = (uint32_t)i;
            }
        }
        ok = !k || score_group(p, e, groups[g], k, rts_now_ns());
    }
    t1 = rts_now_ns();
    if (p->breaker) {
        /* one outcome per allowed batch; slow counts as failed */
        rts_breaker_record(p->breaker, t1, ok, t1 - t0);
    }
    if (!ok) {
        return; /* what no model scored goes to the fallback */
    }
    if (e->shadow && e->cand) {
        size_t k = 0, ny = p->nprobs ? p->nprobs : 1;
        for (size_t i = 0; i < n; i++) {
            if (e->rows[i].model == e->live) {
                e->idx[k++] = (uint32_t)i;
            }
        }
        if (k && predict_rows(e, e->cand, k) == RTS_ERR_OK) {
            for (size_t i = 0; i < k; i++) {
                e->rows[e->idx[i]].shadow_score =
                    (double)e->my[i * ny + e->cand->bundle->score_class];
            }
        }
    }
}

/* The first rule that matches frame @fr (which it sets the decision of);
 * -1 = none. */
static int match_rules(const struct rts_pipeline *p, union rts_val *fr)
{
    fr[p->slot_decision].str.p = NULL;
    fr[p->slot_decision].str.n = 0;
    for (size_t k = 0; k < p->nrules; k++) {
        const struct rts_rule *r = &p->rules[k];
        if (!r->when || rts_expr_truthy(RTS_T_BOOL, rts_expr_eval(r->when, fr))) {
            fr[p->slot_decision].str = r->decision;
            return (int)k;
        }
    }
    return -1;
}

void rts_pipeline_eval_batch(const struct rts_pipeline *p, struct rts_eval *e,
                             const struct rts_event *evs, size_t n)
{
    uint64_t t = rts_now_ns(), t1;

    e->lookup_ns = 0;
    if (e->lw) {
        /* one pipelined round trip per store for the whole batch, bounded by
         * the lookup budget; values the stores did not give take defaults */
        const int64_t budget_us = p->conf->budget_us[RTS_STAGE_LOOKUP];
        rts_lookup_batch(e->lw, evs, n, t, budget_us ? t + (uint64_t)budget_us * 1000 : 0,
                         e->lout, e->degraded);
        t1 = rts_now_ns();
        e->lookup_ns = t1 - t;
        t = t1;
    }
    if (e->sw) {
        /* state: redis: every aggregate of the batch in one round trip, each
         * event's from the state before it (rstate.h); expressions below */
        rts_rstate_batch(e->sw, evs, n, t);
    }
    for (size_t i = 0; i < n; i++) {
        struct rts_eval_row *r = &e->rows[i];

        /* the state of the next keys is fetched while this event is processed:
         * with millions of keys a lookup is a chain of cache misses, and three
         * events in flight overlap them */
        for (size_t d = 1; d <= 3 && i + d < n && !e->no_prefetch && !e->sw; d++) {
            rts_features_prefetch(e->fw, evs[i + d].key_hash, 3 - (int)d);
        }
        memcpy(r->frame, evs[i].vals, p->nfields * sizeof(*r->frame));
        r->degraded = 0;
        if (e->lw) {
            rts_lookup_fill(p->lookup, e->lout + i * rts_lookup_count(p->lookup), r->frame,
                            p->nfields);
            r->degraded = e->degraded[i];
        }
        if (e->sw) {
            r->degraded |= rts_rstate_fill(e->sw, i, r->frame, p->nfields) ? RTS_DEGRADED_STATE : 0;
            rts_features_exprs(p->features, r->frame);
        } else {
            rts_features_process(p->features, e->fw, &evs[i], r->frame);
        }
        t1 = rts_now_ns();
        r->features_ns = t1 - t;
        r->model = NULL;
        t = t1;
    }
    e->model_ns = 0;
    if (e->features_only) {
        e->end_ns = t;
        return;
    }
    score_by_models(p, e, evs, n);
    if (e->model_ns) {
        t = rts_now_ns();
    }
    for (size_t i = 0; i < n; i++) {
        union rts_val *fr = e->rows[i].frame;
        e->rows[i].by_model = e->rows[i].model != NULL;
        if (!e->rows[i].model) {
            /* no model, or its circuit is open: the rule-based score */
            fr[p->slot_score] = rts_expr_eval(p->fallback, fr);
            for (size_t k = 0; k < p->nprobs; k++) {
                fr[p->slot_probs + (int)k].num = NAN;
            }
        }
    }
    for (size_t i = 0; i < n; i++) {
        struct rts_eval_row *row = &e->rows[i];
        union rts_val *fr = row->frame;

        if (e->with_fallback) {
            union rts_val served = fr[p->slot_score];
            fr[p->slot_score] = row->by_model ? rts_expr_eval(p->fallback, fr) : served;
            row->fallback_score = fr[p->slot_score].num;
            row->fallback_rule = match_rules(p, fr);
            fr[p->slot_score] = served;
        }
        if (!isnan(row->shadow_score)) {
            union rts_val served = fr[p->slot_score];
            fr[p->slot_score].num = row->shadow_score;
            row->shadow_rule = match_rules(p, fr);
            fr[p->slot_score] = served;
        }
        row->rule = match_rules(p, fr);
        t1 = rts_now_ns();
        row->rules_ns = t1 - t;
        t = t1;
    }
    e->end_ns = t;
}

void rts_pipeline_eval(const struct rts_pipeline *p, struct rts_eval *e,
                       const struct rts_event *ev)
{
    rts_pipeline_eval_batch(p, e, ev, 1);
}

/* Warm-up rows: per feature a mix of missing, zero, small and large values of
 * both signs, so that every branch of the model sees both directions. */
static void warm_rows(float *x, size_t n, size_t nx, uint64_t *seed)
{
    for (size_t i = 0; i < n * nx; i++) {
        uint64_t r;
        *seed = *seed * 6364136223846793005u + 1442695040888963407u;
        r = *seed >> 33;
        switch (r & 7) {
        case 0:
            x[i] = NAN;
            break;
        case 1:
            x[i] = 0;
            break;
        default:
            x[i] = (float)((double)(r >> 3) / (double)(1u << 28) * 2 - 1) *
                   (float)pow(10.0, (double)((r >> 8) % 6) - 1);
        }
    }
}

double rts_bundle_warm_up(const struct rts_bundle *b, double *row_ns)
{
    enum { ROWS = 64, ROUND = 8, MAX_ROUNDS = 200 };
    size_t nx = b->nfeatures, ny = rts_model_noutputs(b->model);
    float *x = malloc(ROWS * (nx ? nx : 1) * sizeof(*x)), *y = malloc(ROWS * ny * sizeof(*y));
    uint64_t seed = 42, t0 = rts_now_ns(), prev = UINT64_MAX, best = UINT64_MAX;
    int settled = 0;

    /* rounds of ROUND batches; settled when a round's fastest batch is within
     * 5% of the previous round's twice in a row */
    for (int round = 0; x && y && round < MAX_ROUNDS && settled < 2; round++) {
        uint64_t fastest = UINT64_MAX;
        for (int k = 0; k < ROUND; k++) {
            uint64_t t;
            warm_rows(x, ROWS, nx, &seed);
            t = rts_now_ns();
            rts_model_predict(b->model, x, ROWS, nx, y);
            t = rts_now_ns() - t;
            fastest = t < fastest ? t : fastest;
        }
        settled = prev != UINT64_MAX && fastest * 100 <= prev * 105 && prev * 100 <= fastest * 105
                      ? settled + 1
                      : 0;
        prev = fastest;
        best = fastest < best ? fastest : best;
    }
    if (row_ns) {
        *row_ns = best == UINT64_MAX ? 0 : (double)best / ROWS;
    }
    free(x);
    free(y);
    return (double)(rts_now_ns() - t0) / 1e6;
}

void rts_pipeline_warm_up(struct rts_pipeline *p)
{
    if (p->bundle) {
        p->warmup_ms = rts_bundle_warm_up(p->bundle, &p->warmup_row_ns);
    }
}

int rts_pipeline_is_alert(const struct rts_pipeline *p, const struct rts_eval_row *r)
{
    return p->alert_when &&
           rts_expr_truthy(RTS_T_BOOL, rts_expr_eval(p->alert_when, r->frame));
}

size_t rts_pipeline_record_max(const struct rts_pipeline *p)
{
    size_t n = 512 + 2 * (6 * 256 + 2), reason = 0; /* fixed keys; id and key escaped */

    for (size_t i = 0; i < p->nrules; i++) {
        size_t r = strlen(p->rules[i].reason_json);
        reason = r > reason ? r : reason;
    }
    for (size_t i = 0; i < p->nfeatures; i++) {
        n += strlen(p->feature_keys[i]) + 34; /* ,"name":<number> */
    }
    n += 12 + 33 * p->nprobs; /* ,"probs":[...] */
    if (p->lookup || p->rstate) {
        n += 14 + rts_lookup_degraded_max(p->lookup); /* ,"degraded":[...] */
    }
    return n + reason;
}

#define PUT_LIT(s)                                                                                 \
    do {                                                                                           \
        memcpy(buf + o, s, sizeof(s) - 1);                                                         \
        o += sizeof(s) - 1;                                                                        \
    } while (0)

static size_t put_num(char *buf, double v)
{
    if (isnan(v)) {
        memcpy(buf, "null", 4);
        return 4;
    }
    return rts_fmt_double(buf, v);
}

size_t rts_pipeline_format_score(const struct rts_pipeline *p, const struct rts_eval_row *e,
                                 const struct rts_event *ev, uint64_t latency_us, int features,
                                 char *buf, size_t cap)
{
    const union rts_val *fr = e->frame;
    size_t o = 0;

    (void)cap; /* bounded by rts_pipeline_record_max */
    PUT_LIT("{\"id\":");
    o += rts_fmt_json_str(buf + o, cap - o, ev->id.p, ev->id.n);
    PUT_LIT(",\"key\":");
    o += rts_fmt_json_str(buf + o, cap - o, ev->key.p, ev->key.n);
    PUT_LIT(",\"ts\":");
    o += rts_fmt_i64(buf + o, ev->ts_ms);
    PUT_LIT(",\"score\":");
    o += put_num(buf + o, fr[p->slot_score].num);
    if (p->nprobs && e->by_model) {
        PUT_LIT(",\"probs\":[");
        for (size_t k = 0; k < p->nprobs; k++) {
            if (k) {
                buf[o++] = ',';
            }
            o += put_num(buf + o, fr[p->slot_probs + (int)k].num);
        }
        buf[o++] = ']';
    }
    PUT_LIT(",\"decision\":");
    if (e->rule >= 0) {
        const struct rts_rule *r = &p->rules[e->rule];
        buf[o++] = '"';
        memcpy(buf + o, r->decision.p, r->decision.n);
        o += r->decision.n;
        PUT_LIT("\",\"reasons\":");
        memcpy(buf + o, r->reason_json, strlen(r->reason_json));
        o += strlen(r->reason_json);
    } else {
        PUT_LIT("null,\"reasons\":[]");
    }
    if (e->by_model) {
        PUT_LIT(",\"model\":\"");
        memcpy(buf + o, e->model->bundle->label, strlen(e->model->bundle->label));
        o += strlen(e->model->bundle->label);
        if (e->as_shadow) {
            PUT_LIT("\",\"path\":\"shadow\",\"latency_us\":");
        } else {
            PUT_LIT("\",\"path\":\"model\",\"latency_us\":");
        }
    } else {
        PUT_LIT(",\"model\":null,\"path\":\"fallback\",\"latency_us\":");
    }
    o += rts_fmt_u64(buf + o, latency_us);
    if (e->degraded) {
        PUT_LIT(",\"degraded\":");
        o += rts_lookup_degraded_json(p->lookup, e->degraded, buf + o, cap - o);
    }
    if (features) {
        PUT_LIT(",\"features\":{");
        for (size_t i = 0; i < p->nfeatures; i++) {
            size_t kl = strlen(p->feature_keys[i]);
            if (i) {
                buf[o++] = ',';
            }
            memcpy(buf + o, p->feature_keys[i], kl);
            o += kl;
            o += put_num(buf + o, fr[p->nfields + i].num);
        }
        buf[o++] = '}';
    }
    PUT_LIT("}\n");
    return o;
}

size_t rts_dlq_record_max(size_t payload_len)
{
    /* fixed text, then error (<= 255 bytes), source (<= 319) and payload escaped */
    return 256 + 6 * 255 + 6 * 319 + 6 * payload_len + 4;
}

size_t rts_dlq_format(char *buf, size_t cap, const char *reason, const char *field,
                      const char *stage, const char *source, int32_t partition, int64_t offset,
                      const char *error, const char *payload, size_t payload_len, int truncated)
{
    char src[320];
    size_t o = 0;
    int n;

    if (cap < rts_dlq_record_max(payload_len)) {
        return 0;
    }
    if (partition >= 0) {
        n = snprintf(src, sizeof(src), "%s/%d@%lld", source, (int)partition, (long long)offset);
    } else {
        n = snprintf(src, sizeof(src), "%s@%lld", source, (long long)offset);
    }
    (void)n;
    PUT_LIT("{\"reason\":\"");
    o += (size_t)snprintf(buf + o, 64, "%s", reason);
    PUT_LIT("\",\"field\":");
    if (field) {
        o += rts_fmt_json_str(buf + o, cap - o, field, strlen(field));
    } else {
        PUT_LIT("null");
    }
    PUT_LIT(",\"stage\":\"");
    o += (size_t)snprintf(buf + o, 32, "%s", stage);
    PUT_LIT("\",\"source\":");
    o += rts_fmt_json_str(buf + o, cap - o, src, strlen(src));
    PUT_LIT(",\"error\":");
    o += rts_fmt_json_str(buf + o, cap - o, error, strnlen(error, 255));
    if (rts_utf8_valid(payload, payload_len)) {
        PUT_LIT(",\"payload\":");
        o += rts_fmt_json_str(buf + o, cap - o, payload, payload_len);
    } else {
        PUT_LIT(",\"payload_base64\":\"");
        o += rts_base64(buf + o, payload, payload_len);
        buf[o++] = '"';
    }
    if (truncated) {
        PUT_LIT(",\"payload_truncated\":true");
    }
    PUT_LIT("}\n");
    return o;
}
