/*
 * sink.h - where records go: an ops table per sink type (file, null, later
 * kafka) plus a declarative option table.
 *
 * A batch is a run of complete records (JSON lines, each ending in '\n')
 * laid out back to back in one buffer, with per-record metadata so that a
 * message-oriented sink (Kafka) can send them one by one. write() may be
 * called by several threads at once (workers, the source thread for DLQ):
 * a sink serialises internally; callers batch so that this is not per event.
 */
#ifndef RTS_SINK_SINK_H
#define RTS_SINK_SINK_H

#include <stddef.h>
#include <stdint.h>

#include "conf/conf.h"
#include "core/err.h"
#include "event/value.h"

struct rts_rec {
    uint32_t off, len;    /* the record's bytes in batch->buf, '\n' included */
    struct rts_str key;   /* message key (the event key) */
    struct rts_str id;    /* event id */
    struct rts_str model; /* "fraud@3" of the score's model; empty when none */
    uint64_t token;       /* the source's acknowledgement token; 0 = none */
};

struct rts_batch {
    const char *buf;
    size_t len; /* all records, back to back */
    const struct rts_rec *recs;
    size_t n;
};

enum rts_sink_status { RTS_SINK_OK, RTS_SINK_RETRY, RTS_SINK_ERROR };

/* Objects that several sinks of one pipeline share, found by a kind and a
 * key (the kafka sinks: one producer per brokers and librdkafka options).
 * The daemon creates one registry, passes it to every sink's init in
 * env->share, and frees it after every sink's fini; a sink that adds an
 * object removes it again before its last user's fini returns. The sinks of
 * one registry are opened and closed by one thread at a time (the daemon
 * opens and closes them in turn), so the registry takes no lock. */
struct rts_sink_share;

struct rts_sink_share *rts_sink_share_new(void) __attribute__((warn_unused_result));
/* NULL is a no-op. Every object must have been removed. */
void rts_sink_share_free(struct rts_sink_share *sh);
/* The object added under @kind and @key, or NULL. */
void *rts_sink_share_find(const struct rts_sink_share *sh, const char *kind, const char *key);
/* Add @obj (not owned: the adder frees it) under @kind and @key (copied).
 * RTS_ERR_NOMEM with @eb filled. */
enum rts_err rts_sink_share_add(struct rts_sink_share *sh, const char *kind, const char *key,
                                void *obj, struct rts_errbuf *eb);
/* Forget @obj; not found is a no-op. */
void rts_sink_share_remove(struct rts_sink_share *sh, const void *obj);
/* How many objects are registered (0 for NULL). */
size_t rts_sink_share_count(const struct rts_sink_share *sh);

/* What the daemon gives a sink at init. */
struct rts_sink_env {
    /* An asynchronous sink (ops->async_ack) calls ack once per record with a
     * non-zero token when the record is delivered (ok = 1) or has failed for
     * good (ok = 0; @why says why). A synchronous sink never calls it: the
     * daemon acknowledges a batch when write() returns OK. Any thread. */
    void (*ack)(void *arg, uint64_t token, int ok, const char *why);
    void *ack_arg;
    const char *path;    /* the sink's key path ("sink", "alerts.sink", "dlq") for
                            messages; NULL = "sink" */
    const char *brokers; /* the kafka source's brokers: the default of a kafka
                            sink without its own; NULL = none */
    struct rts_sink_share *share; /* objects shared with the pipeline's other
                                     sinks; NULL = share nothing */
};

struct rts_sink_ops {
    const char *name;
    const char *description;
    const struct rts_opt *opts;
    size_t ctx_size;
    int async_ack; /* records are acknowledged through env->ack, not by write() */
    enum rts_err (*init)(void *ctx, const struct rts_sink_env *env, struct rts_errbuf *eb);
    enum rts_sink_status (*write)(void *ctx, const struct rts_batch *b, struct rts_errbuf *eb);
    enum rts_err (*flush)(void *ctx, struct rts_errbuf *eb); /* everything written is durable */
    void (*fini)(void *ctx);
    /* Optional: checks beyond the option table that need no connection
     * (e.g. librdkafka properties), for `rtscore check`; init runs them too.
     * @ctx has the options applied; @path is the sink's key path. */
    enum rts_err (*check)(void *ctx, const char *path, struct rts_errbuf *eb);
};

extern const struct rts_sink_ops rts_sink_file;
extern const struct rts_sink_ops rts_sink_null;
extern const struct rts_sink_ops rts_sink_kafka;

extern const struct rts_sink_ops *const rts_sinks[];
const struct rts_sink_ops *rts_sink_find(const char *name);

#endif /* RTS_SINK_SINK_H */
