/*
 * rstate.h - the Redis window state (`state: {type: redis}`): the aggregate
 * features of a batch of events read from, and applied to, Redis in one
 * pipelined round trip per batch, with the semantics of the local state
 * (engine.h, window.h, hll.h), so that several processes share one state.
 *
 * Per event, in batch order, the commands are its reads (the key's state
 * before the event) then its writes (the event applied); Redis runs one
 * connection's commands in order, so event i + 1 of a batch reads what
 * event i wrote: point in time holds within the batch as across batches.
 * Keys (docs/FEATURES.md, "Redis window state"), P the prefix, K the event's
 * key in a hash tag (all of a key's data in one cluster slot):
 *   P{K}:m                       zset: "t" = newest event time of the key,
 *                                "f:F" = newest time with a value of field F,
 *                                "n:F:N" = values pushed to the last-N list
 *   P{K}:w:F:W:B:O               zset per window bucket O (ordinal of event
 *                                time / resolution, as window.h): members
 *                                c:O s:O l:O h:O = count, sum, min, max
 *                                (ZINCRBY, ZADD LT / GT: double arithmetic,
 *                                the same as the local ring's)
 *   P{K}:d:F:W:B:O               HyperLogLog per distinct bucket (PFADD)
 *   P{K}:l:F:N                   list of the last N values (LPUSH + LTRIM)
 *   P{K}:x:F:W:B:N               zset of an exact window's held events
 *                                (window.h): score the event time, member
 *                                the value's bits in order-preserving hex
 *                                and the hash of the event id (ZADD,
 *                                ZREMRANGEBYRANK keeps N, ZREMRANGEBYSCORE
 *                                drops the old); its ring's buckets are
 *                                P{K}:w:F:W:B:xN:O
 * A window read is one ZUNION ... WITHSCORES over the buckets of the
 * window (or PFCOUNT over them); the reply rebuilds the local ring
 * (rts_win_load_*) and rts_win_query() answers; an exact window adds ZCARD,
 * its oldest member and its members newer than the window's edge, which
 * rebuild the held events beside the ring (rts_win_load_held). So count,
 * sum, mean, min, max (exact or not), velocity, last-N and since_last are
 * the local state's values bit for bit (the same rules: resolution, newest
 * bucket, late events, held events); distinct is
 * Redis's HyperLogLog over the window's buckets (its error, and the bucketed
 * window edge where the local sparse mode has an exact one).
 *
 * Expiry: bucket keys live window + 2 buckets + ttl_slack of wall time from
 * their last write, the meta zset and lists limits.key_ttl (none when 0). A
 * Redis key expires by the wall clock, a window moves by event time: replay
 * of old events is fine (keys live longer than needed); a consumer that
 * falls behind event time by more than ttl_slack loses buckets it still
 * reads.
 *
 * Failure: every batch asks the breaker ("state") first; a refused batch, a
 * failed or timed-out round trip leaves the aggregates of the events whose
 * reads did not all come back missing (NaN) and those events degraded (the
 * caller marks its records). Nothing is retried: a timed-out batch may or
 * may not have been applied, never twice.
 *
 * Threads: struct rts_rstate is built at start-up and shared (read-only but
 * for its breaker, which is thread safe); each worker owns a struct
 * rts_rstate_worker (connection, command buffers sized for its largest
 * batch); rts_rstate_batch() allocates nothing in this code (hiredis
 * allocates its output buffer and reply objects).
 */
#ifndef RTS_FEATURE_RSTATE_H
#define RTS_FEATURE_RSTATE_H

#include <stddef.h>
#include <stdint.h>

#include "conf/conf.h"
#include "core/err.h"
#include "event/decode.h"
#include "event/schema.h"
#include "feature/engine.h"
#include "guard/breaker.h"

/* The `state:` section as parsed. A zeroed struct is the local state. */
struct rts_rstate_conf {
    int redis;                          /* 0: local (in-process), 1: redis */
    const struct rts_conf_node *node;   /* the mapping (the connection's keys) */
    const char *prefix;                 /* key prefix; NULL = "rts:<pipeline>:" */
    int64_t timeout_us;                 /* a batch's round trip at most */
    int64_t ttl_slack_us;               /* bucket keys outlive their window by this */
    const struct rts_conf_node *breaker_node; /* keys of model.breaker; config.c parses */
    struct rts_breaker_opts breaker;
};

/* The section's own keys (the connection's are store type redis's). */
extern const struct rts_opt rts_rstate_opts[];

/* Parse mapping @node (NULL: local) at key path @path into @out: the
 * section's keys, then for type redis the connection's keys (checked, no
 * I/O). Unknown keys are errors at file:line. Thread: start-up. */
enum rts_err rts_rstate_parse(const struct rts_conf_node *node, const char *path,
                              struct rts_rstate_conf *out, struct rts_errbuf *eb);

struct rts_rstate;
struct rts_rstate_worker;

/* The state of the aggregate features among @defs (positions in @defs are
 * feature indexes, as for rts_features_compile) for pipeline @pipeline:
 * opens the connection settings (a password file is read now), makes the
 * breaker "state". @key_ttl_ms: life of a key's meta zset and lists, 0 =
 * none. @conf, @defs and @schema must outlive it. NULL with @eb filled.
 * Thread: start-up. */
struct rts_rstate *rts_rstate_new(const struct rts_schema *schema,
                                  const struct rts_feature_def *defs, size_t ndefs,
                                  const struct rts_rstate_conf *conf, const char *pipeline,
                                  int64_t key_ttl_ms, struct rts_errbuf *eb)
    __attribute__((warn_unused_result));
void rts_rstate_free(struct rts_rstate *rs); /* NULL is a no-op; workers first */

struct rts_breaker *rts_rstate_breaker(const struct rts_rstate *rs); /* Thread: any */
const char *rts_rstate_label(const struct rts_rstate *rs); /* "redis 127.0.0.1:6379 db 0" */
size_t rts_rstate_count(const struct rts_rstate *rs);     /* aggregate features */

/* A worker's connection (connected now; an unreachable server is not an
 * error: batches fail until it answers) and buffers for batches of up to
 * @max_batch events. NULL with @eb filled. Thread: any, before the worker
 * runs; the result belongs to one worker. */
struct rts_rstate_worker *rts_rstate_worker_new(const struct rts_rstate *rs, size_t max_batch,
                                                struct rts_errbuf *eb)
    __attribute__((warn_unused_result));
void rts_rstate_worker_free(struct rts_rstate_worker *w); /* NULL is a no-op */

/* Compute the aggregates of @n <= max_batch events @evs (decoded views, the
 * array rts_pipeline_eval_batch takes) and apply them, one round trip, at
 * most until @now_ns + the state's timeout; @now_ns is rts_now_ns() at the
 * start (the breaker's clock). Results stay in @w until the next batch.
 * Never allocates in this code. Thread: @w's worker. */
void rts_rstate_batch(struct rts_rstate_worker *w, const struct rts_event *evs, size_t n,
                      uint64_t now_ns);

/* Write event @i's aggregates into their frame slots (frame[nfields + feature
 * index]); returns 1 if the event is degraded (its aggregates are missing),
 * else 0. Thread: @w's worker. */
int rts_rstate_fill(const struct rts_rstate_worker *w, size_t i, union rts_val *frame,
                    size_t nfields);

struct rts_rstate_stats {
    uint64_t batches;    /* batches sent (round trips tried) */
    uint64_t errors;     /* round trips that failed (connection, refused AUTH, ...) */
    uint64_t timeouts;   /* round trips past the deadline */
    uint64_t refused;    /* batches the open breaker kept from Redis */
    uint64_t degraded;   /* events whose aggregates are missing */
    uint64_t late;       /* events too old for one of their windows: scored, not applied */
    uint64_t exact_overflow; /* events an exact window answered from its buckets */
    uint64_t bad_replies; /* error replies (e.g. WRONGTYPE), reads and writes */
};
/* Add @w's counters into @out. Counters may be a moment old. Thread: any. */
void rts_rstate_worker_stats_add(const struct rts_rstate_worker *w, struct rts_rstate_stats *out);

#endif /* RTS_FEATURE_RSTATE_H */
