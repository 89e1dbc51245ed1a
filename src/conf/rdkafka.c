/*
 * rdkafka.c - the `kafka:` pass-through map into rd_kafka_conf_t, and
 * librdkafka's log lines into rts_log.
 *
 * Errors point at the key (its own line and column, not the value's), since
 * an unknown property is a mistake in the key. librdkafka's own message for
 * a refused value is kept: it names the accepted values and ranges.
 */
#include "conf/rdkafka.h"

#include <stdio.h>
#include <string.h>

#include "core/log.h"

enum rts_err rts_rdkafka_set(rd_kafka_conf_t *conf, const char *key, const char *value,
                             const char *what, struct rts_errbuf *eb)
{
    char errstr[256];

    if (rd_kafka_conf_set(conf, key, value, errstr, sizeof(errstr)) != RD_KAFKA_CONF_OK) {
        return rts_errf(eb, RTS_ERR_INVAL, 0, 0, "%s: %s", what, errstr);
    }
    return RTS_ERR_OK;
}

enum rts_err rts_rdkafka_apply(rd_kafka_conf_t *conf, const struct rts_conf_node *map,
                               const char *path, const struct rts_rdkafka_managed *managed,
                               struct rts_errbuf *eb)
{
    if (rts_conf_is_null(map)) {
        return RTS_ERR_OK;
    }
    if (map->kind != RTS_CONF_MAP) {
        return rts_conf_errf(eb, map, path,
                             "expected a mapping of librdkafka properties, like "
                             "{security.protocol: ssl}");
    }
    for (size_t i = 0; i < map->len; i++) {
        const char *key = map->keys[i];
        const struct rts_conf_node *v = map->items[i];
        struct rts_conf_node at = {0}; /* the key's position, for messages */
        char kpath[256], errstr[256];
        rd_kafka_conf_res_t res;

        at.kind = RTS_CONF_SCALAR;
        at.file = map->file;
        at.line = map->key_lines[i];
        at.column = map->key_columns[i];
        snprintf(kpath, sizeof(kpath), "%s.%s", path, key);
        for (size_t m = 0; managed && managed[m].key; m++) {
            if (strcmp(key, managed[m].key) == 0) {
                return rts_conf_errf(eb, &at, kpath, "set by rtscore; use %s", managed[m].instead);
            }
        }
        if (v->kind != RTS_CONF_SCALAR || rts_conf_is_null(v)) {
            return rts_conf_errf(eb, v->line ? v : &at, kpath,
                                 "expected a value (librdkafka properties are scalars)");
        }
        res = rd_kafka_conf_set(conf, key, v->str, errstr, sizeof(errstr));
        if (res == RD_KAFKA_CONF_UNKNOWN) {
            return rts_conf_errf(eb, &at, kpath, "unknown librdkafka property '%s' (librdkafka %s)",
                                 key, rd_kafka_version_str());
        }
        if (res != RD_KAFKA_CONF_OK) {
            return rts_conf_errf(eb, v, kpath, "%s", errstr);
        }
    }
    return RTS_ERR_OK;
}

void rts_rdkafka_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    enum rts_log_level l = level <= 3   ? RTS_LOG_ERROR
                           : level == 4 ? RTS_LOG_WARN
                           : level <= 6 ? RTS_LOG_INFO
                                        : RTS_LOG_DEBUG;

    rts_log(l, "librdkafka", "client=%s facility=%s log=\"%s\"", rd_kafka_name(rk), fac, buf);
}
