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
 * Frame: [fields][features][score][decision]. The score is the model's
 * output when the pipeline has a model, else the fallback expression.
 */
#ifndef RTS_DAEMON_PIPELINE_H
#define RTS_DAEMON_PIPELINE_H

#include <stddef.h>
#include <stdint.h>

#include "daemon/config.h"
#include "event/decode.h"
#include "feature/engine.h"
#include "guard/breaker.h"
#include "model/bundle.h"

struct rts_pipeline {
    struct rts_pipeline_conf *conf; /* owned */
    struct rts_features *features;
    size_t nfields, nfeatures, nslots;
    int slot_score, slot_decision;
    struct rts_expr *fallback;
    struct rts_rule *rules;
    size_t nrules;
    struct rts_expr *alert_when; /* NULL without alerts */
    struct rts_bundle *bundle;   /* NULL: the score is fallback.score */
    int *model_slots;            /* frame slot of each model input, model order */
    struct rts_breaker *breaker; /* with model.timeout: open = score by fallback */
    char **feature_keys;         /* "\"name\":" for emit_features, pre-escaped */
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

/* Per-thread evaluation state. */
struct rts_eval {
    union rts_val *frame;
    union rts_val *vals; /* event view scratch, nfields */
    struct rts_feature_worker *fw;
    int rule;            /* matched rule of the last event, -1 = none */
    uint64_t stage_ns[RTS_STAGE__COUNT];
    uint64_t end_ns;     /* clock when rts_pipeline_eval returned */
    int features_only;   /* backfill: no score, no rules */
    int by_model;        /* the last score came from the model (else the fallback) */
    float *mx, *my;      /* model input row and outputs */
};

/* @max_keys: this thread's share of limits.max_keys. */
enum rts_err rts_eval_init(struct rts_eval *e, const struct rts_pipeline *p, uint64_t max_keys,
                           struct rts_errbuf *eb);
void rts_eval_fini(struct rts_eval *e);

/* Features, score and decision of @ev into e->frame; stage times of
 * features and rules into e->stage_ns. Never allocates. */
void rts_pipeline_eval(const struct rts_pipeline *p, struct rts_eval *e,
                       const struct rts_event *ev);
/* 1 if the last evaluated event is an alert. */
int rts_pipeline_is_alert(const struct rts_pipeline *p, const struct rts_eval *e);

/* Upper bound of one score record's bytes. */
size_t rts_pipeline_record_max(const struct rts_pipeline *p);
/* The score record (DESIGN.md section 4) of the last evaluated event, one
 * JSON line with '\n'; returns its length (cap >= rts_pipeline_record_max). */
size_t rts_pipeline_format_score(const struct rts_pipeline *p, const struct rts_eval *e,
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
