/*
 * lookup.h - the lookup stage of a worker: features read from online stores
 * (feature/store.h) by a key built from the event, with a per-worker cache,
 * freshness checks, defaults and one circuit breaker per store.
 *
 * A lookup feature is {name, lookup: {store, key, field, max_age, default}}.
 * Its key template ("card:{card_id}") names event fields in braces ({{ and
 * }} are literal braces); features with the same store and template share
 * one key. The stage works on a micro-batch of events: keys are built, the
 * worker's cache answers what it holds fresh (younger than cache_ttl), and
 * the misses of the batch (each distinct key once) go to each store in one
 * pipelined call. A value is used when it is present and, with max_age, no
 * older than max_age at the event's time (event time - update time); else
 * the feature takes its default (NaN when none: a missing value). Each
 * default is counted by cause; each present value's staleness goes to a
 * per-feature histogram.
 *
 * Breaker: every store call is an outcome of its store's breaker (errors and
 * timeouts are failures). While it is open, misses are not sent: they are
 * answered from the cache - even entries past cache_ttl ("stale if error";
 * max_age still applies) - or take the defaults, without waiting. An event
 * whose lookup of a store was not answered by that store (failed call, open
 * circuit) is degraded for that store: a bit in its degraded mask.
 *
 * Output: for n events and L = rts_lookup_count() lookup features, a row of
 * L numbers per event, in the order the lookup features appear in the
 * feature list. rts_lookup_fill() copies a row into a frame: the feature
 * engine leaves lookup features' slots to the caller (engine.h).
 *
 * Ownership and threads: struct rts_lookup is built at start-up, owns its
 * store instances and breakers, and is shared by every worker; it needs the
 * config (schema, definitions, option tree) it was built from to outlive
 * it. Each worker owns one struct rts_lookup_worker (cache, store
 * connections, scratch, counters), built at start-up; rts_lookup_batch()
 * never allocates in this code (hiredis allocates its reply objects) and
 * takes no lock.
 */
#ifndef RTS_FEATURE_LOOKUP_H
#define RTS_FEATURE_LOOKUP_H

#include <stddef.h>
#include <stdint.h>

#include "conf/conf.h"
#include "core/err.h"
#include "core/hist.h"
#include "event/decode.h"
#include "event/schema.h"
#include "feature/engine.h"
#include "feature/store.h"
#include "guard/breaker.h"

#define RTS_LOOKUP_MAX_STORES 31     /* bits of a degraded mask, but the state's */
#define RTS_DEGRADED_STATE (1u << 31) /* the Redis window state did not answer (rstate.h) */
#define RTS_LOOKUP_MAX_BATCH 4096    /* events per rts_lookup_batch chunk */
#define RTS_LOOKUP_CACHE_KEY_MAX 128 /* longer keys are not cached (always asked) */

/* One `stores.NAME` entry as the config parsed it. */
struct rts_store_def {
    const char *name; /* an identifier: metrics, logs, the degraded list */
    const char *path; /* "stores.profiles", for messages */
    const struct rts_store_ops *ops;
    const struct rts_conf_node *node; /* the mapping: the type's own options */
    const char *updated_field;        /* NULL or "" = none */
    int64_t cache_ttl_ms;             /* 0 = no cache */
    uint64_t cache_max;               /* entries per worker */
    struct rts_breaker_opts breaker;
};

/* Check key template @tmpl against @schema: every {field} must be a field
 * of the schema, braces must pair up. RTS_ERR_INVAL with a message naming
 * the problem and its column ("unknown field 'crd' at column 6 of
 * \"card:{crd}\""), to be positioned by the caller. Thread: any. */
enum rts_err rts_lookup_template_check(const struct rts_schema *schema, const char *tmpl,
                                       struct rts_errbuf *eb);

struct rts_lookup;
struct rts_lookup_worker;

/* Build the stage for the RTS_FEAT_LOOKUP features among @defs (feature
 * indexes are positions in @defs) over @nstores stores: opens every store
 * (a file store loads its file; a Redis store reads its password file) and
 * makes one breaker per store ("store:NAME"). Unknown store names and bad
 * templates are errors. Returns NULL with @eb filled. Thread: start-up. */
struct rts_lookup *rts_lookup_new(const struct rts_schema *schema,
                                  const struct rts_feature_def *defs, size_t ndefs,
                                  const struct rts_store_def *stores, size_t nstores,
                                  struct rts_errbuf *eb) __attribute__((warn_unused_result));
/* NULL is a no-op; every worker must be freed first. */
void rts_lookup_free(struct rts_lookup *l);

size_t rts_lookup_count(const struct rts_lookup *l);                 /* L: lookup features */
size_t rts_lookup_feature_index(const struct rts_lookup *l, size_t j); /* position in defs */
const char *rts_lookup_feature_name(const struct rts_lookup *l, size_t j);
size_t rts_lookup_nstores(const struct rts_lookup *l);
const char *rts_lookup_store_name(const struct rts_lookup *l, size_t s); /* bit s of a mask */
struct rts_store *rts_lookup_store(const struct rts_lookup *l, size_t s);
struct rts_breaker *rts_lookup_breaker(const struct rts_lookup *l, size_t s);

/* A worker's state: a connection to every store, a cache per store with a
 * ttl, scratch for batches of up to @max_batch events (larger batches are
 * processed in chunks: one store call per chunk). Memory is fixed here.
 * NULL with @eb filled. Thread: any, before the worker runs; the result
 * belongs to one worker. */
struct rts_lookup_worker *rts_lookup_worker_new(const struct rts_lookup *l, size_t max_batch,
                                                struct rts_errbuf *eb)
    __attribute__((warn_unused_result));
void rts_lookup_worker_free(struct rts_lookup_worker *w); /* NULL is a no-op */

/* The lookup stage for the @n events @evs (decoded views, the same array
 * rts_pipeline_eval_batch takes; event time and field values are read):
 * out[i * L + j] is lookup feature j of event i, and
 * degraded[i] has bit s set when store s did not answer event i's lookup
 * (@degraded may be NULL). @now_ns is rts_now_ns() at the start (cache ages
 * and breakers use it; tests pass their own clock); @deadline_ns is the
 * rts_now_ns() time by which every store call must end, 0 = each store's
 * own timeout. Waits for a store at most until the earlier of the two;
 * never waits on an open circuit. Never allocates. Thread: @w's worker. */
void rts_lookup_batch(struct rts_lookup_worker *w, const struct rts_event *evs, size_t n,
                      uint64_t now_ns, uint64_t deadline_ns, double *out, uint32_t *degraded);

/* The stores of degraded mask @mask as a JSON array, e.g.
 * ["profiles","merchants"] (empty mask: []), and "state" last for
 * RTS_DEGRADED_STATE, into @buf; returns its length (no NUL counted; one is
 * written when it fits). @l may be NULL (no stores). @cap >=
 * rts_lookup_degraded_max(l) always suffices. Never allocates. Any thread. */
size_t rts_lookup_degraded_json(const struct rts_lookup *l, uint32_t mask, char *buf, size_t cap);
size_t rts_lookup_degraded_max(const struct rts_lookup *l);

/* Copy one output row (L values) into the frame slots of the lookup
 * features: frame[nfields + feature index].num. Thread: any. */
void rts_lookup_fill(const struct rts_lookup *l, const double *row, union rts_val *frame,
                     size_t nfields);
/* A row of every lookup feature's default (e.g. for backfill, which has no
 * online store at the event's time). Thread: any. */
void rts_lookup_defaults(const struct rts_lookup *l, double *row);

/* Periodic upkeep of every store (file stores: watch and reload, free old
 * tables). Thread: one thread, e.g. the housekeeper, about every second. */
void rts_lookup_tick(struct rts_lookup *l, uint64_t now_ns);
/* Reload store @name now (a file store rereads its file; others: no-op).
 * On failure the old data keeps serving. Thread: one control thread. */
enum rts_err rts_lookup_reload(struct rts_lookup *l, const char *name, struct rts_errbuf *eb);

/* ---- counters (per worker, single writer; readers add them up) ---- */

struct rts_lookup_feature_stats {
    uint64_t values;   /* events given the store's value */
    uint64_t defaults; /* events given the default: missing + stale + degraded */
    uint64_t missing;  /* no key (a template field missing), no such key or field, not a number */
    uint64_t stale;    /* older than max_age at the event's time, or no update time */
    uint64_t degraded; /* the store did not answer and the cache held nothing */
    struct rts_hist staleness; /* event time - update time of present values, ns (>= 0) */
};

struct rts_lookup_store_stats {
    uint64_t keys;         /* keys looked up (events x key templates) */
    uint64_t hits;         /* answered by a fresh cache entry */
    uint64_t fetched;      /* distinct keys asked of the store */
    uint64_t calls;        /* store calls made (one per batch with misses) */
    uint64_t errors;       /* calls that failed */
    uint64_t timeouts;     /* calls that timed out */
    uint64_t refused;      /* batches whose misses the open circuit kept from the store */
    uint64_t stale_served; /* keys answered by an expired cache entry while degraded */
    uint64_t bad_keys;     /* keys not built: a template field missing, or too long */
    uint64_t degraded;     /* events degraded by this store */
};

/* Add worker @w's counters into @feat (rts_lookup_count entries) and @store
 * (rts_lookup_nstores entries); either may be NULL. Counters may be a moment
 * old. Thread: any. */
void rts_lookup_worker_stats_add(const struct rts_lookup_worker *w,
                                 struct rts_lookup_feature_stats *feat,
                                 struct rts_lookup_store_stats *store);

#endif /* RTS_FEATURE_LOOKUP_H */
