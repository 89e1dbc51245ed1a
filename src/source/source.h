/*
 * source.h - where events come from: an ops table per source type (file,
 * generator, later kafka) plus a declarative option table.
 *
 * The core allocates ctx_size zeroed bytes, applies the option table to the
 * `source:` mapping (offsets are into ctx), then calls init. poll() is called
 * by the one source thread only; the messages it returns stay valid until the
 * next poll(). A source never drops a message silently: a message too large
 * to deliver whole is delivered truncated with `truncated` set, and the
 * pipeline dead-letters it as too_large.
 */
#ifndef RTS_SOURCE_SOURCE_H
#define RTS_SOURCE_SOURCE_H

#include <stddef.h>
#include <stdint.h>

#include "conf/conf.h"
#include "core/err.h"

struct rts_msg {
    const char *data;
    size_t len;
    int32_t partition; /* -1 when the source has none */
    int64_t offset;    /* line number, sequence number or Kafka offset */
    int truncated;     /* the message was longer than the source's limit */
};

enum rts_src_status {
    RTS_SRC_OK,    /* *n >= 0 messages returned */
    RTS_SRC_EOF,   /* no more messages, ever (a file without follow) */
    RTS_SRC_ERROR, /* a failure the operator must see; @eb says what */
};

struct rts_source_env {
    size_t max_event_bytes; /* limits.max_event_bytes */
};

struct rts_source_ops {
    const char *name;
    const char *description;
    const struct rts_opt *opts;
    size_t ctx_size;
    enum rts_err (*init)(void *ctx, const struct rts_source_env *env, struct rts_errbuf *eb);
    /* Return up to @max messages in @msgs (*n set). Waits at most @timeout_ms
     * when none is ready, then returns OK with *n == 0. */
    enum rts_src_status (*poll)(void *ctx, struct rts_msg *msgs, size_t max, size_t *n,
                                int timeout_ms, struct rts_errbuf *eb);
    /* "transactions/3" or a file name: the DLQ record's source is LABEL@OFFSET */
    const char *(*label)(void *ctx);
    void (*fini)(void *ctx);
};

extern const struct rts_source_ops rts_source_file;
extern const struct rts_source_ops rts_source_generator;

/* The registry of source types, NULL-terminated. */
extern const struct rts_source_ops *const rts_sources[];
const struct rts_source_ops *rts_source_find(const char *name);

#endif /* RTS_SOURCE_SOURCE_H */
