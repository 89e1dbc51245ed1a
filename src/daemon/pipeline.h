/*
 * pipeline.h - the compiled pipeline: features, fallback score, rules and
 * alerts over one frame, plus the record formats. Immutable after
 * rts_pipeline_new and shared by every worker; all per-event scratch lives in
 * a struct rts_eval owned by one thread.
 *
 * `rtscore run` (daemon.c) and `rtscore backfill` (backfill.c) both score an
 * event with rts_pipeline_eval(), which is why their features agree byte for
 * byte.
 *
 * Frame: [fields][features][score][decision][p0..pK-1]. The score is the
 * model's output when the pipeline has a model, else the fallback
 * expression; a multi-class model's probabilities are p0..pK-1 (NaN while
 * the fallback scores) and its score is the manifest's score_class.
 */
#ifndef RTS_DAEMON_PIPELINE_H
#define RTS_DAEMON_PIPELINE_H

#include <stddef.h>
#include <stdint.h>

#include "daemon/config.h"
#include "event/decode.h"
#include "feature/engine.h"
#include "feature/lookup.h"
#include "guard/breaker.h"
#include "model/bundle.h"

struct rts_pipeline {
    struct rts_pipeline_conf *conf; /* owned */
    struct rts_features *features;
    size_t nfields, nfeatures, nslots;
    int slot_score, slot_decision;
    int slot_probs;       /* first of nprobs slots p0..pK-1; nprobs = 0 below 2 classes */
    size_t nprobs;
    struct rts_expr *fallback;
    struct rts_rule *rules;
    size_t nrules;
    struct rts_expr *alert_when; /* NULL without alerts */
    struct rts_bundle *bundle;   /* NULL: the score is fallback.score */
    struct rts_model_ctx *model_ctx; /* for p->bundle (rts_eval's default live model) */
    struct rts_lookup *lookup;   /* stores and lookup features; NULL without */
    struct rts_rstate *rstate;   /* state: redis: the aggregates' state; NULL = local */
    struct rts_breaker *breaker; /* with model.timeout: open = score by fallback */
    char **feature_keys;         /* "\"name\":" for emit_features, pre-escaped */
    double warmup_ms;            /* rts_pipeline_warm_up: how long, and the settled cost */
    double warmup_row_ns;
};

struct rts_rule {
    struct rts_expr *when; /* NULL: always */
    struct rts_str decision;
    char *reason_json; /* ["..."] or [] */
};

/* Build from a parsed config, taking ownership of @conf (freed on failure
 * too). Compiles every expression; errors name file:line and key path. */
struct rts_pipeline *rts_pipeline_new(struct rts_pipeline_conf *conf, struct rts_errbuf *eb)
    __attribute__((warn_unused_result));
void rts_pipeline_free(struct rts_pipeline *p);

/* Score generated rows with the model until the cost per row settles (the
 * model's memory paged in, caches and branch predictors trained), so that
 * the first events are not the slow ones; sets warmup_ms and warmup_row_ns.
 * A no-op without a model. Thread: start-up, before any worker runs. */
void rts_pipeline_warm_up(struct rts_pipeline *p);
/* The same for any bundle: returns the milliseconds it took, and the
 * settled cost per row in *@row_ns. */
double rts_bundle_warm_up(const struct rts_bundle *b, double *row_ns);

/* What workers need to score with one bundle: where its inputs are in the
 * frame, and (with workers > 0) its drift counters, one per worker. The
 * registry's validate hook builds one per loaded bundle. Immutable but for
 * the counters, each written by its worker only. */
struct rts_model_ctx {
    const struct rts_bundle *bundle;
    int *slots; /* frame slot of each input, model order */
    size_t nx;
    struct rts_drift *drift;
    struct rts_drift_counts **counts;
    int nworkers;
};

/* Check @b against @p (every input a numeric field or feature, as many
 * outputs as the rules were compiled for) and build its context; NULL with
 * @eb saying why. Thread: any (off the hot path). */
struct rts_model_ctx *rts_model_ctx_new(const struct rts_pipeline *p, const struct rts_bundle *b,
                                       int nworkers, struct rts_errbuf *eb);
void rts_model_ctx_free(struct rts_model_ctx *c); /* NULL is a no-op */

/* One event of a batch: its frame and what became of it. */
struct rts_eval_row {
    union rts_val *frame; /* nslots */
    union rts_val *vals;  /* event view scratch, nfields: rts_event_view(.., row->vals) */
    int rule;             /* matched rule, -1 = none */
    int by_model;         /* the score came from a model (else the fallback) */
    const struct rts_model_ctx *model; /* the model that scored it; NULL: the fallback */
    double shadow_score;  /* the candidate's score in shadow mode, else NaN */
    int shadow_rule;      /* the rule the shadow score would match */
    int as_shadow;        /* format the record as the candidate's: "path":"shadow" */
    uint32_t degraded;    /* stores that did not answer this event's lookups (bit per store),
                             RTS_DEGRADED_STATE: the Redis state did not give its aggregates */
    double fallback_score; /* with e->with_fallback: what the fallback says, and */
    int fallback_rule;     /* the rule it would match (to compare the two) */
    uint64_t features_ns, rules_ns;
};

/* Per-thread evaluation state: room for a batch of batch_max events. */
struct rts_eval {
    struct rts_eval_row *rows;
    size_t batch_max;
    struct rts_feature_worker *fw;
    uint64_t model_ns; /* the last batch's model call; 0 when the fallback scored it */
    uint64_t end_ns;   /* clock when the last rts_pipeline_eval_batch returned */
    int features_only; /* backfill: no score, no rules */
    int no_prefetch;   /* benchmarks: no state prefetch within a batch */
    int with_fallback; /* also score rows scored by the model with the fallback */
    union rts_val *frames, *vals;
    float *mx, *my; /* model inputs and outputs, batch_max rows */
    uint32_t *idx;  /* rows of one model call */
    struct rts_lookup_worker *lw; /* this thread's store connections and caches */
    double *lout;                 /* looked-up values, batch_max x lookups */
    uint32_t *degraded;           /* per event: stores that did not answer */
    uint64_t lookup_ns;           /* the last batch's lookup stage */
    struct rts_rstate_worker *sw; /* with p->rstate: this thread's Redis state connection */
    /* the models of the next batch (the daemon sets them from the registry's
     * view; by default the pipeline's own): live, and the candidate for keys
     * whose low 32 hash bits are below canary_cut, or for shadow scoring */
    const struct rts_model_ctx *live, *cand;
    uint64_t canary_cut;
    int shadow;
    int worker; /* index of the drift counters to write */
};

/* @max_keys: this thread's share of limits.max_keys; @batch_max: the most
 * events one rts_pipeline_eval_batch call takes (1 .. RTS_BATCH_MAX). */
enum rts_err rts_eval_init(struct rts_eval *e, const struct rts_pipeline *p, uint64_t max_keys,
                           size_t batch_max, struct rts_errbuf *eb);
void rts_eval_fini(struct rts_eval *e);

/* Features, score and decision of @n <= batch_max events into e->rows[i]:
 * features event by event in order (each from the state before it), then
 * one model call for the batch, then the rules. The events' values must be
 * viewed through rows[i].vals or stay valid otherwise. Never allocates. */
void rts_pipeline_eval_batch(const struct rts_pipeline *p, struct rts_eval *e,
                             const struct rts_event *evs, size_t n);
/* The same for one event, into e->rows[0]. */
void rts_pipeline_eval(const struct rts_pipeline *p, struct rts_eval *e,
                       const struct rts_event *ev);
/* 1 if the evaluated event of @r is an alert. */
int rts_pipeline_is_alert(const struct rts_pipeline *p, const struct rts_eval_row *r);

/* Upper bound of one score record's bytes. */
size_t rts_pipeline_record_max(const struct rts_pipeline *p);
/* The score record (DESIGN.md section 4) of the evaluated event of @r, one
 * JSON line with '\n'; returns its length (cap >= rts_pipeline_record_max). */
size_t rts_pipeline_format_score(const struct rts_pipeline *p, const struct rts_eval_row *r,
                                 const struct rts_event *ev, uint64_t latency_us, int features,
                                 char *buf, size_t cap);

/* A DLQ record (DESIGN.md section 4); payload is written as a JSON string
 * when it is valid UTF-8, else base64 in payload_base64. Returns its length,
 * 0 if @cap is too small (cap >= rts_dlq_record_max(payload_len) suffices). */
size_t rts_dlq_record_max(size_t payload_len);
size_t rts_dlq_format(char *buf, size_t cap, const char *reason, const char *field,
                      const char *stage, const char *source, int32_t partition, int64_t offset,
                      const char *error, const char *payload, size_t payload_len, int truncated);

#endif /* RTS_DAEMON_PIPELINE_H */
