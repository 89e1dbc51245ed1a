/*
 * serve.c - the daemon's control plane over HTTP (DESIGN.md section 5):
 * /metrics in the Prometheus text format, /healthz, /readyz and /status,
 * and the admin API over the model registry (/admin/models...).
 *
 * Handlers run on the HTTP server's threads and only read: counters and
 * histograms are merged from the workers' single-writer copies
 * (rts_daemon_stats), so a scrape never stops the pipeline. The server
 * lives from rts_serve_new to rts_serve_free, inside the daemon's life.
 */
#include "daemon/serve.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/fmt.h"
#include "core/log.h"
#include "model/drift.h"
#include "model/registry.h"
#include "serve/http.h"
#include "serve/prom.h"

#define HEALTH_STALL_NS (10ull * 1000 * 1000 * 1000) /* a thread silent this long is unhealthy */

struct rts_serve {
    struct rts_daemon *d;
    struct rts_http *http;
};

static const double score_bounds[] = {0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5,
                                      0.6,  0.7, 0.8,  0.9, 0.95, 0.99};
static const double batch_bounds[] = {1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024};

static void put_u64(struct rts_prom *pm, const char *name, const char *help, uint64_t v,
                    enum rts_prom_type type)
{
    rts_prom_family(pm, name, type, help);
    rts_prom_sample_u64(pm, NULL, 0, v);
}

static void slot_info(struct rts_prom *pm, const struct rts_registry_model_info *mi,
                      const char *slot)
{
    char ver[24];

    if (mi->present) {
        snprintf(ver, sizeof(ver), "%ld", mi->version);
        rts_prom_sample(pm,
                        (const struct rts_prom_label[]){
                            {"model", mi->name}, {"version", ver}, {"slot", slot}},
                        3, 1);
    }
}

/* PSI of the live model's inputs and score over the drift window. */
static void drift_metrics(struct rts_serve *sv, struct rts_prom *pm)
{
    struct rts_registry *reg = rts_daemon_registry(sv->d);
    struct rts_errbuf eb = {0};
    struct rts_registry_reader *rd = reg ? rts_registry_reader_new(reg, &eb) : NULL;
    const struct rts_registry_view *v;
    const struct rts_model_ctx *m;

    rts_prom_family(pm, "rtscore_drift_psi", RTS_PROM_GAUGE,
                    "Population stability index of each model input and of the score (feature="
                    "\"score\") against the training reference, over the drift window.");
    if (!rd) {
        return;
    }
    v = rts_registry_view(rd);
    m = v->live.ctx;
    if (m && m->drift && rts_drift_active(m->drift)) {
        size_t n = rts_drift_nfeatures(m->drift);
        double *psi = calloc(n ? n : 1, sizeof(*psi)), psi_score = NAN;
        if (psi && rts_drift_psi(m->drift, m->counts, (size_t)m->nworkers, rts_wall_ms() * 1000,
                                 psi, &psi_score, NULL) == RTS_ERR_OK) {
            for (size_t i = 0; i < n; i++) {
                if (!isnan(psi[i])) {
                    rts_prom_sample(pm,
                                    (const struct rts_prom_label[]){
                                        {"feature", rts_drift_feature_name(m->drift, i)}},
                                    1, psi[i]);
                }
            }
            if (!isnan(psi_score)) {
                rts_prom_sample(pm, (const struct rts_prom_label[]){{"feature", "score"}}, 1,
                                psi_score);
            }
        }
        free(psi);
    }
    rts_registry_reader_idle(rd);
    rts_registry_reader_free(rd);
}

static void model_metrics(struct rts_serve *sv, struct rts_prom *pm,
                          const struct rts_daemon_stats *s)
{
    struct rts_registry *reg = rts_daemon_registry(sv->d);
    static const double diff_bounds[] = {0.001, 0.01, 0.05, 0.1, 0.2, 0.5, 1};
    char ver[24];

    rts_prom_family(pm, "rtscore_predictions_total", RTS_PROM_COUNTER,
                    "Scores by model, version and path: model, shadow (the candidate beside the "
                    "live model), or fallback (no model, or its circuit open).");
    for (int k = 0; k < s->npreds; k++) {
        snprintf(ver, sizeof(ver), "%ld", s->preds[k].version);
        rts_prom_sample_u64(pm,
                            (const struct rts_prom_label[]){
                                {"model", s->preds[k].name}, {"version", ver}, {"path", "model"}},
                            3, s->preds[k].model);
        if (s->preds[k].shadow) {
            rts_prom_sample_u64(pm,
                                (const struct rts_prom_label[]){{"model", s->preds[k].name},
                                                                {"version", ver},
                                                                {"path", "shadow"}},
                                3, s->preds[k].shadow);
        }
    }
    rts_prom_sample_u64(pm,
                        (const struct rts_prom_label[]){
                            {"model", ""}, {"version", ""}, {"path", "fallback"}},
                        3, s->by_fallback + (reg ? 0 : s->scored));
    rts_prom_family(pm, "rtscore_score", RTS_PROM_HISTOGRAM, "Scores given.");
    rts_prom_hist_scaled(pm, NULL, 0, &s->score, 1e6, score_bounds,
                         sizeof(score_bounds) / sizeof(score_bounds[0]));
    rts_prom_family(pm, "rtscore_batch_size", RTS_PROM_HISTOGRAM,
                    "Events per worker batch (one model call each).");
    rts_prom_hist_scaled(pm, NULL, 0, &s->batch, 1, batch_bounds,
                         sizeof(batch_bounds) / sizeof(batch_bounds[0]));
    if (!reg) {
        return;
    }
    {
        struct rts_registry_info ri;
        rts_registry_info(reg, &ri);
        rts_prom_family(pm, "rtscore_model_info", RTS_PROM_GAUGE,
                        "The models in their slots (value 1).");
        slot_info(pm, &ri.live, "live");
        slot_info(pm, &ri.candidate, "candidate");
        slot_info(pm, &ri.previous, "previous");
        rts_prom_family(pm, "rtscore_canary_percent", RTS_PROM_GAUGE,
                        "Share of keys scored by the candidate.");
        rts_prom_sample(pm, NULL, 0, ri.canary_percent);
    }
    rts_prom_family(pm, "rtscore_shadow_decisions_total", RTS_PROM_COUNTER,
                    "Shadow scores, by whether the candidate's decision equals the live one.");
    rts_prom_sample_u64(pm, (const struct rts_prom_label[]){{"agree", "true"}}, 1,
                        s->shadow_agree);
    rts_prom_sample_u64(pm, (const struct rts_prom_label[]){{"agree", "false"}}, 1,
                        s->shadow - s->shadow_agree);
    rts_prom_family(pm, "rtscore_shadow_score_difference", RTS_PROM_HISTOGRAM,
                    "Absolute difference between the candidate's and the live score.");
    rts_prom_hist_scaled(pm, NULL, 0, &s->shadow_diff, 1e6, diff_bounds,
                         sizeof(diff_bounds) / sizeof(diff_bounds[0]));
    drift_metrics(sv, pm);
}

static double breaker_gauge(const struct rts_breaker *b)
{
    enum rts_breaker_state st = rts_breaker_state(b);
    return st == RTS_BREAKER_CLOSED ? 0 : st == RTS_BREAKER_HALF_OPEN ? 1 : 2;
}

static void circuits(struct rts_prom *pm, const struct rts_pipeline *p)
{
    size_t ns = p->lookup ? rts_lookup_nstores(p->lookup) : 0;

    if (!p->breaker && !ns && !p->rstate) {
        return;
    }
    rts_prom_family(pm, "rtscore_circuit_state", RTS_PROM_GAUGE,
                    "Circuit breakers: 0 closed, 1 half-open, 2 open.");
    if (p->breaker) {
        rts_prom_sample(pm, (const struct rts_prom_label[]){{"dependency", "model"}}, 1,
                        breaker_gauge(p->breaker));
    }
    if (p->rstate) {
        rts_prom_sample(pm, (const struct rts_prom_label[]){{"dependency", "state"}}, 1,
                        breaker_gauge(rts_rstate_breaker(p->rstate)));
    }
    for (size_t i = 0; i < ns; i++) {
        char dep[96];
        snprintf(dep, sizeof(dep), "store:%s", rts_lookup_store_name(p->lookup, i));
        rts_prom_sample(pm, (const struct rts_prom_label[]){{"dependency", dep}}, 1,
                        breaker_gauge(rts_lookup_breaker(p->lookup, i)));
    }
}

/* Lookups: staleness and defaults per feature, calls and outcomes per store. */
static void lookup_metrics(struct rts_prom *pm, const struct rts_pipeline *p,
                           const struct rts_daemon_stats *s)
{
    size_t nf, ns;

    if (!p->lookup || !s->lookup_feat) {
        return;
    }
    nf = rts_lookup_count(p->lookup);
    ns = rts_lookup_nstores(p->lookup);
    rts_prom_family(pm, "rtscore_feature_staleness_seconds", RTS_PROM_HISTOGRAM,
                    "Event time minus the store's update time of each looked-up value.");
    for (size_t j = 0; j < nf; j++) {
        rts_prom_hist_scaled(pm,
                             (const struct rts_prom_label[]){
                                 {"feature", rts_lookup_feature_name(p->lookup, j)}},
                             1, &s->lookup_feat[j].staleness, 1e9, rts_prom_age_bounds,
                             RTS_PROM_AGE_BOUNDS);
    }
    rts_prom_family(pm, "rtscore_feature_default_total", RTS_PROM_COUNTER,
                    "Lookups answered with the feature's default (missing, stale or degraded).");
    for (size_t j = 0; j < nf; j++) {
        rts_prom_sample_u64(pm,
                            (const struct rts_prom_label[]){
                                {"feature", rts_lookup_feature_name(p->lookup, j)}},
                            1, s->lookup_feat[j].defaults);
    }
    rts_prom_family(pm, "rtscore_store_lookups_total", RTS_PROM_COUNTER,
                    "Keys looked up per store, by how they were answered.");
    for (size_t i = 0; i < ns; i++) {
        const struct rts_lookup_store_stats *st = &s->lookup_store[i];
        const char *name = rts_lookup_store_name(p->lookup, i);
        const char *what[] = {"cache", "fetched", "degraded"};
        uint64_t v[] = {st->hits, st->fetched, st->degraded};
        for (int k = 0; k < 3; k++) {
            rts_prom_sample_u64(pm,
                                (const struct rts_prom_label[]){{"store", name}, {"via", what[k]}},
                                2, v[k]);
        }
    }
    rts_prom_family(pm, "rtscore_store_errors_total", RTS_PROM_COUNTER,
                    "Failed store calls, by kind.");
    for (size_t i = 0; i < ns; i++) {
        const struct rts_lookup_store_stats *st = &s->lookup_store[i];
        const char *name = rts_lookup_store_name(p->lookup, i);
        rts_prom_sample_u64(pm, (const struct rts_prom_label[]){{"store", name}, {"kind", "error"}},
                            2, st->errors);
        rts_prom_sample_u64(pm,
                            (const struct rts_prom_label[]){{"store", name}, {"kind", "timeout"}},
                            2, st->timeouts);
    }
}

static void metrics(void *arg, const struct rts_http_req *req, struct rts_http_resp *resp)
{
    struct rts_serve *sv = arg;
    const struct rts_pipeline *p = rts_daemon_pipeline(sv->d);
    struct rts_daemon_stats s;
    struct rts_errbuf eb = {0};
    struct rts_prom pm;

    (void)req;
    rts_daemon_stats(sv->d, &s);
    resp->content_type = RTS_PROM_CONTENT_TYPE;
    rts_prom_init(&pm, &resp->body, 0);

    rts_prom_family(&pm, "rtscore_events_total", RTS_PROM_COUNTER,
                    "Events by final outcome; every event ends as exactly one of them.");
    rts_prom_sample_u64(&pm, (const struct rts_prom_label[]){{"outcome", "scored"}}, 1, s.scored);
    rts_prom_sample_u64(&pm, (const struct rts_prom_label[]){{"outcome", "dlq"}}, 1, s.dlq);
    rts_prom_sample_u64(&pm, (const struct rts_prom_label[]){{"outcome", "shed"}}, 1, s.shed);
    rts_prom_sample_u64(&pm, (const struct rts_prom_label[]){{"outcome", "duplicate"}}, 1,
                        s.duplicates);

    rts_prom_family(&pm, "rtscore_dlq_total", RTS_PROM_COUNTER,
                    "Dead-lettered events by reason.");
    for (int r = 0; r < RTS_DLQ__COUNT; r++) {
        rts_prom_sample_u64(
            &pm,
            (const struct rts_prom_label[]){{"reason", rts_dlq_reason_name((enum rts_dlq_reason)r)}},
            1, s.dlq_by_reason[r]);
    }

    rts_prom_family(&pm, "rtscore_stage_latency_seconds", RTS_PROM_HISTOGRAM,
                    "Time per event in each stage; total is ingest to emitted.");
    for (int st = 0; st < RTS_STAGE__COUNT; st++) {
        rts_prom_hist_seconds(
            &pm, (const struct rts_prom_label[]){{"stage", rts_stage_name((enum rts_stage)st)}}, 1,
            &s.hist[st]);
    }
    rts_prom_family(&pm, "rtscore_e2e_latency_seconds", RTS_PROM_HISTOGRAM,
                    "Event time to emitted, for events stamped in the past.");
    rts_prom_hist_seconds(&pm, NULL, 0, &s.e2e);

    rts_prom_family(&pm, "rtscore_budget_exceeded_total", RTS_PROM_COUNTER,
                    "Events whose stage took longer than its latency_budget.");
    for (int st = 0; st < RTS_STAGE__COUNT; st++) {
        rts_prom_sample_u64(
            &pm, (const struct rts_prom_label[]){{"stage", rts_stage_name((enum rts_stage)st)}}, 1,
            s.budget_exceeded[st]);
    }

    model_metrics(sv, &pm, &s);
    circuits(&pm, p);
    lookup_metrics(&pm, p, &s);
    {
        struct rts_lag lags[256];
        size_t nl = rts_daemon_lag(sv->d, lags, 256);
        rts_prom_family(&pm, "rtscore_consumer_lag", RTS_PROM_GAUGE,
                        "Messages behind the end of each assigned partition (-1: not known yet).");
        for (size_t i = 0; i < nl; i++) {
            char part[16];
            snprintf(part, sizeof(part), "%d", (int)lags[i].partition);
            rts_prom_sample(&pm,
                            (const struct rts_prom_label[]){{"topic", lags[i].topic},
                                                            {"partition", part}},
                            2, (double)lags[i].lag);
        }
    }
    rts_prom_family(&pm, "rtscore_queue_depth", RTS_PROM_GAUGE, "Events queued per worker.");
    for (int i = 0; i < rts_daemon_nworkers(sv->d); i++) {
        struct rts_daemon_worker_info wi;
        char wid[16];
        rts_daemon_worker_info(sv->d, i, &wi);
        snprintf(wid, sizeof(wid), "%d", i);
        rts_prom_sample_u64(&pm, (const struct rts_prom_label[]){{"worker", wid}}, 1, wi.queued);
    }
    rts_prom_family(&pm, "rtscore_keys", RTS_PROM_GAUGE, "Keys held in state per worker.");
    for (int i = 0; i < rts_daemon_nworkers(sv->d); i++) {
        struct rts_daemon_worker_info wi;
        char wid[16];
        rts_daemon_worker_info(sv->d, i, &wi);
        snprintf(wid, sizeof(wid), "%d", i);
        rts_prom_sample_u64(&pm, (const struct rts_prom_label[]){{"worker", wid}}, 1, wi.keys);
    }
    put_u64(&pm, "rtscore_source_events_total", "Events read from the source.", s.in,
            RTS_PROM_COUNTER);
    put_u64(&pm, "rtscore_source_pauses_total",
            "Times full worker queues paused the source (backpressure).", s.pauses,
            RTS_PROM_COUNTER);
    put_u64(&pm, "rtscore_keys_evicted_total", "Keys evicted at limits.max_keys.",
            s.state.evicted, RTS_PROM_COUNTER);
    put_u64(&pm, "rtscore_keys_expired_total", "Keys expired after limits.key_ttl.",
            s.state.expired, RTS_PROM_COUNTER);
    put_u64(&pm, "rtscore_late_events_total",
            "Events older than a window: scored, not applied to it.", s.state.late,
            RTS_PROM_COUNTER);
    put_u64(&pm, "rtscore_exact_window_overflow_total",
            "Events an exact window (exact: N) answered from its buckets: its N held events did "
            "not cover the window.",
            s.state.exact_overflow, RTS_PROM_COUNTER);
    put_u64(&pm, "rtscore_state_bytes", "Memory in use for keyed state.",
            s.state.bytes_committed, RTS_PROM_GAUGE);
    rts_prom_family(&pm, "rtscore_uptime_seconds", RTS_PROM_GAUGE, "Seconds since the start.");
    rts_prom_sample(&pm, NULL, 0, s.elapsed_s);
    rts_daemon_stats_fini(&s);
    if (rts_prom_finish(&pm, &eb)) {
        rts_buf_fini(&resp->body);
        rts_http_error(resp, 500, eb.msg);
    }
}

static void text(struct rts_http_resp *resp, int ok, const char *why)
{
    resp->status = ok ? 200 : 503;
    resp->content_type = "text/plain; charset=utf-8";
    rts_buf_printf(&resp->body, "%s\n", why);
}

static void healthz(void *arg, const struct rts_http_req *req, struct rts_http_resp *resp)
{
    struct rts_serve *sv = arg;
    char why[256];

    (void)req;
    text(resp, rts_daemon_health(sv->d, HEALTH_STALL_NS, why, sizeof(why)), why);
}

static void readyz(void *arg, const struct rts_http_req *req, struct rts_http_resp *resp)
{
    struct rts_serve *sv = arg;
    char why[256];

    (void)req;
    text(resp, rts_daemon_ready(sv->d, why, sizeof(why)), why);
}

static void json_str(struct rts_buf *b, const char *s)
{
    char tmp[6 * 256 + 3];
    size_t n = strnlen(s, 256);
    rts_buf_append(b, tmp, rts_fmt_json_str(tmp, sizeof(tmp), s, n));
}

static void status(void *arg, const struct rts_http_req *req, struct rts_http_resp *resp)
{
    struct rts_serve *sv = arg;
    const struct rts_pipeline *p = rts_daemon_pipeline(sv->d);
    struct rts_daemon_stats s;
    struct rts_buf *b = &resp->body;
    char why[256];

    (void)req;
    rts_daemon_stats(sv->d, &s);
    resp->content_type = "application/json";
    rts_buf_printf(b, "{\"pipeline\":");
    json_str(b, p->conf->name);
    rts_buf_printf(b, ",\"source\":");
    json_str(b, rts_daemon_source_name(sv->d));
    rts_buf_printf(b, ",\"uptime_s\":%.3f,\"healthy\":%s", s.elapsed_s,
                   rts_daemon_health(sv->d, HEALTH_STALL_NS, why, sizeof(why)) ? "true" : "false");
    rts_buf_printf(b, ",\"ready\":%s",
                   rts_daemon_ready(sv->d, why, sizeof(why)) ? "true" : "false");
    rts_buf_printf(b,
                   ",\"events\":{\"in\":%llu,\"scored\":%llu,\"dlq\":%llu,\"shed\":%llu,"
                   "\"duplicate\":%llu},\"events_per_s\":%.1f",
                   (unsigned long long)s.in, (unsigned long long)s.scored,
                   (unsigned long long)s.dlq, (unsigned long long)s.shed,
                   (unsigned long long)s.duplicates,
                   s.elapsed_s > 0 ? (double)(s.scored + s.dlq) / s.elapsed_s : 0.0);
    rts_buf_printf(b, ",\"latency_us\":{\"p50\":%.1f,\"p99\":%.1f}",
                   (double)rts_hist_quantile(&s.hist[RTS_STAGE_TOTAL], 0.5) / 1e3,
                   (double)rts_hist_quantile(&s.hist[RTS_STAGE_TOTAL], 0.99) / 1e3);
    rts_buf_printf(b, ",\"workers\":[");
    for (int i = 0; i < rts_daemon_nworkers(sv->d); i++) {
        struct rts_daemon_worker_info wi;
        rts_daemon_worker_info(sv->d, i, &wi);
        rts_buf_printf(b, "%s{\"id\":%d,\"queued\":%llu,\"keys\":%llu,\"scored\":%llu}",
                       i ? "," : "", i, (unsigned long long)wi.queued,
                       (unsigned long long)wi.keys, (unsigned long long)wi.scored);
    }
    rts_buf_printf(b, "],\"model\":");
    if (rts_daemon_registry(sv->d)) {
        rts_registry_describe(rts_daemon_registry(sv->d), b);
    } else {
        rts_buf_printf(b, "null");
    }
    rts_buf_printf(b, ",\"circuits\":{");
    if (p->breaker) {
        rts_buf_printf(b, "\"model\":\"%s\"",
                       rts_breaker_state_name(rts_breaker_state(p->breaker)));
    }
    rts_buf_printf(b, "}}\n");
    rts_daemon_stats_fini(&s);
}

/* ---- admin API ---- */

/* The answer to a registry change: the slots, or the error with its status
 * (registry.h's mapping; a refused load is 422). */
static void admin_result(struct rts_serve *sv, struct rts_http_resp *resp, enum rts_err rc,
                         const struct rts_errbuf *eb, int is_load, const char *what)
{
    struct rts_registry *reg = rts_daemon_registry(sv->d);

    if (rc == RTS_ERR_OK) {
        resp->content_type = "application/json";
        rts_registry_describe(reg, &resp->body);
        rts_log(RTS_LOG_INFO, "admin", "action=%s", what);
        return;
    }
    rts_log(RTS_LOG_WARN, "admin refused", "action=%s error=\"%s\"", what, eb->msg);
    rts_http_error(resp,
                   rc == RTS_ERR_CONFLICT ? 409
                   : rc == RTS_ERR_AGAIN  ? 503
                   : is_load              ? 422
                   : rc == RTS_ERR_INVAL  ? 400
                                          : 500,
                   eb->msg);
}

/* The JSON object body of @req, or NULL after answering 400. */
static json_t *admin_body(const struct rts_http_req *req, struct rts_http_resp *resp)
{
    json_error_t je;
    json_t *j = json_loadb(req->body ? req->body : "", req->body_len, 0, &je);

    if (!j || !json_is_object(j)) {
        json_decref(j);
        rts_http_error(resp, 400, "expected a JSON object body");
        return NULL;
    }
    return j;
}

static struct rts_registry *admin_registry(struct rts_serve *sv, struct rts_http_resp *resp)
{
    struct rts_registry *reg = rts_daemon_registry(sv->d);

    if (!reg) {
        rts_http_error(resp, 409, "the pipeline has no model section");
    }
    return reg;
}

static void admin_models(void *arg, const struct rts_http_req *req, struct rts_http_resp *resp)
{
    struct rts_serve *sv = arg;
    struct rts_registry *reg = admin_registry(sv, resp);

    (void)req;
    if (reg) {
        resp->content_type = "application/json";
        rts_registry_describe(reg, &resp->body);
    }
}

static void admin_load(void *arg, const struct rts_http_req *req, struct rts_http_resp *resp)
{
    struct rts_serve *sv = arg;
    struct rts_registry *reg = admin_registry(sv, resp);
    struct rts_errbuf eb = {0};
    json_t *j, *path, *ver;
    enum rts_err rc;

    if (!reg || !(j = admin_body(req, resp))) {
        return;
    }
    path = json_object_get(j, "path");
    ver = json_object_get(j, "version");
    if (json_is_string(path) && !ver) {
        rc = rts_daemon_load_model(sv->d, json_string_value(path), 0, &eb);
    } else if (json_is_integer(ver) && !path) {
        rc = rts_daemon_load_model(sv->d, NULL, (long)json_integer_value(ver), &eb);
    } else {
        json_decref(j);
        rts_http_error(resp, 400, "expected {\"path\": DIR} or {\"version\": N}");
        return;
    }
    json_decref(j);
    admin_result(sv, resp, rc, &eb, 1, "load");
}

static void admin_promote(void *arg, const struct rts_http_req *req, struct rts_http_resp *resp)
{
    struct rts_serve *sv = arg;
    struct rts_registry *reg = admin_registry(sv, resp);
    struct rts_errbuf eb = {0};

    (void)req;
    if (reg) {
        admin_result(sv, resp, rts_registry_promote(reg, &eb), &eb, 0, "promote");
    }
}

static void admin_rollback(void *arg, const struct rts_http_req *req, struct rts_http_resp *resp)
{
    struct rts_serve *sv = arg;
    struct rts_registry *reg = admin_registry(sv, resp);
    struct rts_errbuf eb = {0};

    (void)req;
    if (reg) {
        admin_result(sv, resp, rts_registry_rollback(reg, &eb), &eb, 0, "rollback");
    }
}

static void admin_canary(void *arg, const struct rts_http_req *req, struct rts_http_resp *resp)
{
    struct rts_serve *sv = arg;
    struct rts_registry *reg = admin_registry(sv, resp);
    struct rts_errbuf eb = {0};
    json_t *j, *pc;

    if (!reg || !(j = admin_body(req, resp))) {
        return;
    }
    pc = json_object_get(j, "percent");
    if (!json_is_number(pc)) {
        json_decref(j);
        rts_http_error(resp, 400, "expected {\"percent\": 0..100}");
        return;
    }
    admin_result(sv, resp, rts_registry_set_canary(reg, json_number_value(pc), &eb), &eb, 0,
                 "canary");
    json_decref(j);
}

static void admin_shadow(void *arg, const struct rts_http_req *req, struct rts_http_resp *resp)
{
    struct rts_serve *sv = arg;
    struct rts_registry *reg = admin_registry(sv, resp);
    struct rts_errbuf eb = {0};
    json_t *j, *on;

    if (!reg || !(j = admin_body(req, resp))) {
        return;
    }
    on = json_object_get(j, "enabled");
    if (!json_is_boolean(on)) {
        json_decref(j);
        rts_http_error(resp, 400, "expected {\"enabled\": true|false}");
        return;
    }
    admin_result(sv, resp, rts_registry_set_shadow(reg, json_is_true(on), &eb), &eb, 0,
                 "shadow");
    json_decref(j);
}

struct rts_serve *rts_serve_new(struct rts_daemon *d, struct rts_errbuf *eb)
{
    const struct rts_http_conf *hc = &rts_daemon_pipeline(d)->conf->http;
    struct rts_serve *sv;
    char token[RTS_HTTP_TOKEN_MAX + 1] = "";

    if (!hc->listen) {
        return NULL;
    }
    if (hc->admin_token_file &&
        rts_http_read_token(hc->admin_token_file, token, sizeof(token), eb)) {
        rts_err_prefix(eb, "http.admin_token_file");
        return NULL;
    }
    sv = calloc(1, sizeof(*sv));
    if (!sv) {
        rts_errf(eb, RTS_ERR_NOMEM, 0, 0, "out of memory");
        return NULL;
    }
    sv->d = d;
    {
        const struct rts_http_route routes[] = {
            {"GET", "/metrics", metrics, sv},
            {"GET", "/healthz", healthz, sv},
            {"GET", "/readyz", readyz, sv},
            {"GET", "/status", status, sv},
            {"GET", "/admin/models", admin_models, sv},
            {"POST", "/admin/models/load", admin_load, sv},
            {"POST", "/admin/models/promote", admin_promote, sv},
            {"POST", "/admin/models/rollback", admin_rollback, sv},
            {"POST", "/admin/models/canary", admin_canary, sv},
            {"POST", "/admin/models/shadow", admin_shadow, sv},
        };
        sv->http = rts_http_new(hc->listen, token[0] ? token : NULL, routes,
                                sizeof(routes) / sizeof(routes[0]), eb);
    }
    memset(token, 0, sizeof(token));
    if (!sv->http) {
        rts_err_prefix(eb, "http.listen");
        free(sv);
        return NULL;
    }
    rts_log(RTS_LOG_INFO, "http listening", "listen=%s port=%u", hc->listen,
            (unsigned)rts_http_port(sv->http));
    return sv;
}

void rts_serve_free(struct rts_serve *sv)
{
    if (sv) {
        rts_http_free(sv->http);
        free(sv);
    }
}
