/*
 * source.h - where events come from: an ops table per source type (file,
 * generator, later kafka) plus a declarative option table.
 *
 * The core allocates ctx_size zeroed bytes, applies the option table to the
 * `source:` mapping (offsets are into ctx), then calls init. poll() is called
 * by the one source thread only; the messages it returns stay valid until the
 * next poll() that may return messages (max > 0): a poll with max 0, made to
 * keep a paused source alive while the batch is still being queued, leaves
 * them valid. A source never drops a message silently: a message too large
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
    uint64_t token;    /* non-zero: the source waits for this message's outputs (hold/release) */
};

/* Consumer lag of one partition, for metrics and the progress line. */
struct rts_lag {
    const char *topic; /* owned by the source, valid until fini */
    int32_t partition;
    int64_t lag; /* messages behind the end of the partition; -1 = not known yet */
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
    /* The topic or file name of the last poll's messages (a kafka poll
     * returns one topic only): the DLQ record's source is
     * LABEL/PARTITION@OFFSET, or LABEL@OFFSET without a partition. */
    const char *(*label)(void *ctx);
    void (*fini)(void *ctx);

    /* Optional, for sources that commit offsets (NULL otherwise).
     * Acknowledgement protocol: a message returned with a non-zero token is
     * held once (its processing). The daemon adds one hold per output it
     * emits for it (score, alert, DLQ record), then releases the processing
     * hold; each sink releases one hold when that output is delivered. The
     * source commits an offset only when every earlier message of its
     * partition has no hold left. A token of a partition revoked since must
     * be accepted and ignored. hold/release: any thread, lock-free. */
    void (*hold)(void *ctx, uint64_t token, unsigned n);
    void (*release)(void *ctx, uint64_t token);
    /* Backpressure: while paused, poll() still serves the group protocol
     * but returns no messages (max may be 0, which also keeps the last
     * poll's messages valid). Source thread only. */
    void (*pause)(void *ctx, int paused);
    /* Lag of up to @max assigned partitions into @out; returns how many.
     * Any thread. */
    size_t (*lag)(void *ctx, struct rts_lag *out, size_t max);
    /* Optional: checks beyond the option table that need no connection
     * (e.g. librdkafka properties), for `rtscore check`; init runs them too.
     * @ctx has the options applied; @path is the section ("source"). */
    enum rts_err (*check)(void *ctx, const char *path, struct rts_errbuf *eb);
};

extern const struct rts_source_ops rts_source_file;
extern const struct rts_source_ops rts_source_generator;
extern const struct rts_source_ops rts_source_kafka;

/* The registry of source types, NULL-terminated. */
extern const struct rts_source_ops *const rts_sources[];
const struct rts_source_ops *rts_source_find(const char *name);

#endif /* RTS_SOURCE_SOURCE_H */
