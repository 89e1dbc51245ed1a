/*
 * rdkafka.h - librdkafka configuration from the pipeline's YAML: the
 * `kafka:` pass-through map of the Kafka source and sinks, and librdkafka's
 * logs through rts_log.
 *
 * The pass-through map goes to librdkafka verbatim, key by key, so any
 * property of the installed librdkafka is accepted (security.protocol,
 * sasl.*, ssl.*, fetch and batch sizes, ...) and anything else is refused
 * with the key path and line. Properties that rtscore sets itself from its
 * own options (brokers, group) or that its delivery guarantees depend on
 * (offset commits) are refused too, with what to use instead.
 *
 * Thread: any; nothing is shared.
 */
#ifndef RTS_CONF_RDKAFKA_H
#define RTS_CONF_RDKAFKA_H

#include <librdkafka/rdkafka.h>

#include "conf/conf.h"
#include "core/err.h"

/* A pass-through key that rtscore sets itself, and what to use instead. */
struct rts_rdkafka_managed {
    const char *key;     /* "group.id" */
    const char *instead; /* "source.group" */
};

/* Set @key to @value in @conf. On failure returns RTS_ERR_INVAL with @eb as
 * "@what: librdkafka's reason" (@what names the option, e.g. "source.group"). */
enum rts_err rts_rdkafka_set(rd_kafka_conf_t *conf, const char *key, const char *value,
                             const char *what, struct rts_errbuf *eb);

/* Apply the MAP @map (NULL or a null scalar: nothing) to @conf. @path is the
 * map's key path ("source.kafka"). @managed lists the refused keys, ended by
 * one with a NULL key; may be NULL. Errors (RTS_ERR_INVAL) name "FILE:LINE:COL: @path.KEY: ...": a
 * value that is not a scalar or is empty, an unknown property, a value
 * librdkafka refuses, a managed key. */
enum rts_err rts_rdkafka_apply(rd_kafka_conf_t *conf, const struct rts_conf_node *map,
                               const char *path, const struct rts_rdkafka_managed *managed,
                               struct rts_errbuf *eb);

/* A log_cb for rd_kafka_conf_set_log_cb: one rts_log line per librdkafka
 * line, at the matching level (syslog 0-3 error, 4 warn, 5-6 info, 7 debug),
 * with the client name and facility. */
void rts_rdkafka_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf);

#endif /* RTS_CONF_RDKAFKA_H */
