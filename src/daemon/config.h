/*
 * config.h - the pipeline configuration (DESIGN.md section 2), parsed and
 * checked. Everything that can be checked without running is checked here:
 * unknown keys, types, durations, field references, feature definitions,
 * sink and source options. Expressions are compiled later, by the pipeline,
 * against the frame they read (config.c keeps their positions for errors).
 *
 * A struct rts_pipeline_conf owns its YAML tree; strings point into it.
 * Thread: start-up only; read-only afterwards.
 */
#ifndef RTS_DAEMON_CONFIG_H
#define RTS_DAEMON_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "conf/conf.h"
#include "core/err.h"
#include "event/schema.h"
#include "feature/engine.h"
#include "feature/lookup.h"
#include "feature/rstate.h"
#include "sink/sink.h"
#include "source/source.h"

#define RTS_BATCH_MAX 1024 /* the largest model.batch.max */

/* An expression as written, with its position for error messages. */
struct rts_conf_expr {
    const char *src; /* NULL = absent */
    const char *path;
    int line, column;
};

struct rts_rule_conf {
    struct rts_conf_expr when; /* absent: always matches */
    const char *decision;
    const char *reason; /* recorded reason; defaults to the text of `when` */
};

struct rts_sink_conf {
    const struct rts_sink_ops *ops; /* NULL = not configured */
    const struct rts_conf_node *node;
    const char *path; /* key path, for messages */
    int emit_features;
};

#define RTS_STAGES(X)                                                                              \
    X(DECODE, "decode")                                                                            \
    X(FEATURES, "features")                                                                        \
    X(LOOKUP, "lookup")                                                                            \
    X(MODEL, "model")                                                                              \
    X(RULES, "rules")                                                                              \
    X(EMIT, "emit")                                                                                \
    X(TOTAL, "total")

enum rts_stage {
#define RTS_STAGE_ENUM(name, text) RTS_STAGE_##name,
    RTS_STAGES(RTS_STAGE_ENUM)
#undef RTS_STAGE_ENUM
        RTS_STAGE__COUNT
};
const char *rts_stage_name(enum rts_stage s);

struct rts_limits {
    int64_t queue;            /* events per worker queue */
    uint64_t queue_bytes;     /* bytes per worker queue */
    uint64_t max_event_bytes; /* larger messages are dead-lettered as too_large */
    int64_t max_keys;         /* keys of keyed state, all workers together */
    int64_t key_ttl_us;       /* 0 = keys never expire */
    int64_t max_sketches;     /* dense HLL sketches per distinct feature per worker */
};

struct rts_pipeline_conf {
    struct rts_conf *doc;
    const char *file;
    const char *name;
    int workers; /* 0 = auto */
    const struct rts_source_ops *source_ops;
    const struct rts_conf_node *source_node;
    struct rts_schema *schema;
    struct rts_feature_def *features;
    size_t nfeatures;
    struct rts_store_def *stores; /* stores: in file order; lookup features name them */
    size_t nstores;
    struct rts_rule_conf *rules;
    size_t nrules;
    const char *model_path; /* bundle folder; NULL = score with fallback.score */
    const char *model_registry; /* model.registry: folder of NAME/VERSION/ bundles, or NULL */
    int64_t drift_window_us;    /* model.drift_window */
    double drift_warn;          /* model.drift_warn; 0 = no warning */
    int64_t model_timeout_us; /* a slower model call counts as a failure; 0 = no breaker */
    int batch_max;            /* events per worker batch (model.batch.max; 64 by default) */
    struct rts_dedup_conf {
        int on;
        int64_t horizon_us, max_ids;
    } dedup;
    struct rts_http_conf {
        const char *listen;           /* NULL: no HTTP server */
        const char *admin_token_file; /* NULL: no token (loopback only) */
    } http;
    int64_t batch_wait_us;    /* model.batch.max_wait */
    struct rts_breaker_conf {
        int64_t window_us, open_us, max_open_us;
        int64_t min_calls, probes, consecutive;
        double failure_ratio;
    } breaker;
    struct rts_conf_expr fallback_score;
    struct rts_sink_conf sink, alerts, dlq, shadow;
    struct rts_conf_expr alerts_when;
    struct rts_limits limits;
    int64_t budget_us[RTS_STAGE__COUNT]; /* 0 = no budget */
    struct rts_rstate_conf state;        /* state: local (zeroed) or redis */
};

/* Parse and check the YAML @text named @file. Returns NULL with @eb filled
 * ("pipeline.yaml:12:5: features[3].window: expected a duration like 5m"). */
struct rts_pipeline_conf *rts_pipeline_conf_parse(const char *file, const char *text, size_t len,
                                                  struct rts_errbuf *eb)
    __attribute__((warn_unused_result));
struct rts_pipeline_conf *rts_pipeline_conf_load(const char *path, struct rts_errbuf *eb)
    __attribute__((warn_unused_result));
void rts_pipeline_conf_free(struct rts_pipeline_conf *c);

/* The breaker options of @bc (model.breaker, a store's or the state's
 * breaker) into @o's window, counts, ratio and open times; the other fields
 * are left as they are. -1 if a value is out of range. */
struct rts_breaker_opts;
#define RTS_BREAKER_CONF_RANGES                                                                    \
    "window and open_for >= 1ms, min_calls and probes >= 1, consecutive >= 0"
int rts_breaker_conf_opts(const struct rts_breaker_conf *bc, struct rts_breaker_opts *o);

/* Markdown reference of every section and plugin option (docs/CONFIG.md). */
struct rts_buf;
enum rts_err rts_pipeline_conf_doc(struct rts_buf *out);

#endif /* RTS_DAEMON_CONFIG_H */
