/*
 * engine.h - the feature engine: turns the `features:` list into per-key
 * state and per-event feature values.
 *
 * Compiled once (struct rts_features, immutable, shared by all workers);
 * each worker owns a struct rts_feature_worker (its keyed state table and
 * sketch pools), so the per-event path takes no lock and calls no malloc.
 *
 * Point in time: rts_features_process() computes every feature of an event
 * from the key's state *before* the event, then applies the event to the
 * state. `rtscore run` and `rtscore backfill` call exactly this function, so
 * training and serving see the same values.
 *
 * Frame layout: slots [0, nfields) are the schema's fields (the caller
 * copies the event's values there); slots [nfields, nfields + nfeatures) are
 * the features in definition order. Every feature is a number (bools are 0
 * or 1; missing is NaN). Feature expressions may name fields and other
 * features, in any order; cycles are refused.
 *
 * External features: a RTS_FEAT_LOOKUP feature is supplied per event by the
 * caller (the lookup stage, feature/lookup.h), which writes its slot before
 * rts_features_process(); the engine never writes it, and expressions that
 * name it read what the caller put there. With the Redis window state the
 * aggregates are external too: the caller fills them and calls
 * rts_features_exprs() instead of rts_features_process().
 */
#ifndef RTS_FEATURE_ENGINE_H
#define RTS_FEATURE_ENGINE_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"
#include "event/decode.h"
#include "event/schema.h"
#include "event/value.h"

#define RTS_AGGS(X)                                                                                \
    X(COUNT, "count")                                                                              \
    X(SUM, "sum")                                                                                  \
    X(MEAN, "mean")                                                                                \
    X(MIN, "min")                                                                                  \
    X(MAX, "max")                                                                                  \
    X(DISTINCT, "distinct")                                                                        \
    X(LAST, "last")                                                                                \
    X(SINCE_LAST, "since_last")                                                                    \
    X(VELOCITY, "velocity")

enum rts_agg {
#define RTS_AGG_ENUM(name, text) RTS_AGG_##name,
    RTS_AGGS(RTS_AGG_ENUM)
#undef RTS_AGG_ENUM
        RTS_AGG__COUNT
};

const char *rts_agg_name(enum rts_agg a);
int rts_agg_parse(const char *s, enum rts_agg *out); /* 0 ok, -1 unknown */

enum rts_feat_kind { RTS_FEAT_EXPR = 1, RTS_FEAT_AGG, RTS_FEAT_LOOKUP };

struct rts_feature_def {
    const char *name;
    enum rts_feat_kind kind;
    /* RTS_FEAT_EXPR */
    const char *expr;
    /* RTS_FEAT_AGG */
    enum rts_agg agg;
    int of;            /* schema field index, -1 for none (count, since_last, velocity) */
    int64_t window_ms; /* sliding window width, 0 with last_n */
    uint32_t buckets;  /* ring buckets of the window (resolution = window / buckets) */
    uint32_t last_n;   /* last-N aggregate over the N most recent values, 0 with window */
    uint32_t exact;    /* distinct: values counted exactly per key before HyperLogLog;
                        * count, sum, mean, min, max over a window: events held exactly
                        * (window.h), 0 = none */
    /* RTS_FEAT_LOOKUP (external: filled by the caller, see above) */
    const char *store;  /* stores.NAME */
    const char *key;    /* key template, e.g. "card:{card_id}" */
    const char *field;  /* field of the store's record */
    int64_t max_age_ms; /* older values take the default; 0 = any age */
    double def;         /* the default; NaN = missing */
    /* where it was written, for error messages */
    const char *file;
    int line, column;
};

struct rts_features;
struct rts_feature_worker;

/* Compile @n definitions (copied; names and expressions are copied too).
 * Errors name the feature ("features[3] (amount_ratio): unknown name 'x'").
 * Thread: start-up. */
struct rts_features *rts_features_compile(const struct rts_schema *schema,
                                          const struct rts_feature_def *defs, size_t n,
                                          struct rts_errbuf *eb)
    __attribute__((warn_unused_result));
void rts_features_free(struct rts_features *f);
size_t rts_features_count(const struct rts_features *f);
const char *rts_features_name(const struct rts_features *f, size_t i);
size_t rts_features_state_size(const struct rts_features *f); /* value bytes per key */
/* Resolve a field or feature name to its frame slot (-1 if unknown); the
 * scope rules, fallback and alerts start from. */
int rts_features_resolve(const struct rts_features *f, const char *name, size_t len,
                         enum rts_type *type);

struct rts_feature_limits {
    uint64_t max_keys;      /* keys this worker keeps */
    uint32_t max_key_bytes; /* longest key */
    int64_t key_ttl_ms;     /* 0 = keys never expire */
    uint64_t max_sketches;  /* dense HLL sketches per distinct feature */
};

struct rts_feature_worker *rts_feature_worker_new(const struct rts_features *f,
                                                  const struct rts_feature_limits *lim,
                                                  struct rts_errbuf *eb);
void rts_feature_worker_free(struct rts_feature_worker *w);

/* Fill frame[nfields + i] for every feature of @ev, then apply @ev to its
 * key's state. frame[0, nfields) must already hold @ev's values. Never
 * allocates. Thread: the worker that owns @w. */
void rts_features_process(const struct rts_features *f, struct rts_feature_worker *w,
                          const struct rts_event *ev, union rts_val *frame);

/* The expression features of a frame whose other features are filled
 * (lookups, and aggregates computed elsewhere: the Redis window state,
 * feature/rstate.h), in dependency order. Touches no state; never
 * allocates. Thread: any. */
void rts_features_exprs(const struct rts_features *f, union rts_val *frame);

/* Prefetch the state of a key coming @stage + 1 events from now (stages 2,
 * 1, 0 for the events 1, 2 and 3 ahead): memory-level parallelism for a
 * worker that can see its queue. Thread: the worker that owns @w. */
void rts_features_prefetch(const struct rts_feature_worker *w, uint64_t key_hash, int stage);

/* Commit ahead of need, in one step of at most @chunk bytes (a multiple of
 * 4 KiB), the memory that the next new keys and dense sketches will take, so
 * that their page faults are not paid on the per-event path. Returns 1 while
 * there is more to do. Thread: any, several at once (the worker in its idle
 * time, the daemon's housekeeper). */
int rts_feature_worker_prefault(struct rts_feature_worker *w, size_t chunk);

struct rts_feature_stats {
    uint64_t keys, evicted, expired, late; /* late: events too old for a window, not applied */
    uint64_t exact_overflow; /* events an exact window answered from its buckets (window.h) */
    uint64_t sketches_in_use, sketches_exhausted;
    uint64_t lists_in_use;  /* keys whose distinct values are kept exactly out of line */
    size_t key_bytes;       /* bytes of one key's entry (state + bookkeeping) */
    size_t bytes_committed; /* memory in use for state */
};
/* Any thread; counters may be a moment old. */
void rts_feature_worker_stats(const struct rts_feature_worker *w, struct rts_feature_stats *out);

#endif /* RTS_FEATURE_ENGINE_H */
