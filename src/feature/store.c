/*
 * store.c - the registry of store types, the keys every store mapping
 * shares, and store instances: the thin layer that applies a type's option
 * table, runs its init and checks calls, so that the lookup stage and
 * `rtscore store` use stores alike. See store.h.
 *
 * A type's init may fail half way; its fini is then still called and must
 * cope with a partly built context (as sinks do).
 */
#include "feature/store.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define MAX_KEYS 48 /* keys of one store type's option table, common keys included */

const struct rts_store_ops *const rts_stores[] = {
    &rts_store_redis,
    &rts_store_file,
    NULL,
};

const struct rts_store_ops *rts_store_find(const char *name)
{
    for (size_t i = 0; rts_stores[i]; i++) {
        if (strcmp(rts_stores[i]->name, name) == 0) {
            return rts_stores[i];
        }
    }
    return NULL;
}

const struct rts_opt rts_store_common_opts[] = {
    RTS_OPT_STR_REQ("type", offsetof(struct rts_store_common, type), "redis | file"),
    RTS_OPT_STR("updated_field", "_updated_at", offsetof(struct rts_store_common, updated_field),
                "field (redis hash) or column (file) with the value's update time, epoch ms; "
                "\"\" = none (then max_age treats every value as too old)"),
    RTS_OPT_DURATION("cache_ttl", "0", offsetof(struct rts_store_common, cache_ttl_us),
                     "each worker caches what it read for this long (also keys not found); "
                     "0 = no cache"),
    RTS_OPT_SIZE("cache_max", "65536", offsetof(struct rts_store_common, cache_max),
                 "cache entries per worker (fixed memory: about 32 bytes + the longest key + "
                 "8 per field each)"),
    RTS_OPT_NODE("breaker", offsetof(struct rts_store_common, breaker),
                 "circuit breaker of this store: the keys of model.breaker; while open, lookups "
                 "answer from the cache or the defaults without calling the store"),
    RTS_OPT_END,
};

/* The names of @opts into @out (room for MAX_KEYS + 1), NULL-terminated. */
static void opt_names(const struct rts_opt *opts, const char **out)
{
    size_t n = 0;

    for (const struct rts_opt *o = opts; o && o->name && n < MAX_KEYS; o++) {
        out[n++] = o->name;
    }
    out[n] = NULL;
}

enum rts_err rts_store_parse(const struct rts_conf_node *node, const char *path,
                             struct rts_store_common *common, const struct rts_store_ops **ops,
                             struct rts_errbuf *eb)
{
    const char *own[MAX_KEYS + 1], *shared[MAX_KEYS + 1];
    const struct rts_conf_node *t;
    const char *type;

    if (!node || node->kind != RTS_CONF_MAP) {
        return rts_conf_errf(eb, node, path, "expected a mapping like {type: redis, addr: "
                                             "127.0.0.1:6379}");
    }
    t = rts_conf_get(node, "type");
    if (!t) {
        return rts_conf_errf(eb, node, path, "missing required key 'type' (redis | file)");
    }
    if (rts_conf_string(t, path, &type, eb)) {
        return RTS_ERR_INVAL;
    }
    *ops = rts_store_find(type);
    if (!*ops) {
        return rts_conf_errf(eb, t, path, "unknown store type '%s'; expected redis or file", type);
    }
    opt_names((*ops)->opts, own);
    opt_names(rts_store_common_opts, shared);
    if (rts_opt_apply(rts_store_common_opts, node, path, own, common, eb)) {
        return RTS_ERR_INVAL;
    }
    return rts_store_check_opts(*ops, node, path, shared, eb);
}

enum rts_err rts_store_check_opts(const struct rts_store_ops *ops, const struct rts_conf_node *node,
                                  const char *path, const char *const *ignore,
                                  struct rts_errbuf *eb)
{
    void *ctx = rts_opt_ctx_new(ops->opts, ops->ctx_size, node, path, ignore, eb);
    enum rts_err rc = RTS_ERR_OK;

    if (!ctx) {
        return RTS_ERR_INVAL;
    }
    if (ops->check) {
        rc = ops->check(ctx, node, path, eb);
    }
    free(ctx);
    return rc;
}

/* ---- instances ---- */

struct rts_store {
    const struct rts_store_ops *ops;
    void *ctx;
    struct rts_store_env env;
};

struct rts_store *rts_store_open(const struct rts_store_ops *ops, const struct rts_conf_node *node,
                                 const char *path, const struct rts_store_env *env,
                                 struct rts_errbuf *eb)
{
    const char *shared[MAX_KEYS + 1];

    opt_names(rts_store_common_opts, shared);
    return rts_store_open_with(ops, node, path, env, shared, eb);
}

struct rts_store *rts_store_open_with(const struct rts_store_ops *ops,
                                      const struct rts_conf_node *node, const char *path,
                                      const struct rts_store_env *env, const char *const *ignore,
                                      struct rts_errbuf *eb)
{
    struct rts_store *s = calloc(1, sizeof(*s));

    if (!s) {
        rts_errf(eb, RTS_ERR_NOMEM, 0, 0, "%s: out of memory", path);
        return NULL;
    }
    s->ops = ops;
    s->env = *env;
    if (s->env.updated_field && !*s->env.updated_field) {
        s->env.updated_field = NULL;
    }
    s->ctx = rts_opt_ctx_new(ops->opts, ops->ctx_size, node, path, ignore, eb);
    if (!s->ctx) {
        free(s);
        return NULL;
    }
    if ((ops->check && ops->check(s->ctx, node, path, eb)) || ops->init(s->ctx, &s->env, eb)) {
        ops->fini(s->ctx);
        free(s->ctx);
        free(s);
        return NULL;
    }
    return s;
}

void rts_store_close(struct rts_store *s)
{
    if (!s) {
        return;
    }
    s->ops->fini(s->ctx);
    free(s->ctx);
    free(s);
}

void *rts_store_conn_new(struct rts_store *s, struct rts_errbuf *eb)
{
    void *conn = calloc(1, s->ops->conn_size ? s->ops->conn_size : 1);

    if (!conn) {
        rts_errf(eb, RTS_ERR_NOMEM, 0, 0, "store %s: out of memory", s->env.name);
        return NULL;
    }
    if (s->ops->conn_init(s->ctx, conn, eb)) {
        free(conn);
        return NULL;
    }
    return conn;
}

void rts_store_conn_free(struct rts_store *s, void *conn)
{
    if (!conn) {
        return;
    }
    s->ops->conn_fini(s->ctx, conn);
    free(conn);
}

enum rts_store_status rts_store_lookup(struct rts_store *s, void *conn,
                                       const struct rts_store_query *q, struct rts_errbuf *eb)
{
    if (q->nfields < 1 || q->nfields > RTS_STORE_MAX_FIELDS) {
        rts_errf(eb, RTS_ERR_INVAL, 0, 0, "store %s: %zu fields in one lookup (1..%d)",
                 s->env.name, q->nfields, RTS_STORE_MAX_FIELDS);
        return RTS_STORE_ERROR;
    }
    if (q->n == 0) {
        return RTS_STORE_OK;
    }
    return s->ops->lookup(s->ctx, conn, q, eb);
}

enum rts_err rts_store_write(struct rts_store *s, void *conn, const struct rts_store_rows *r,
                             struct rts_errbuf *eb)
{
    if (!s->ops->write) {
        return rts_errf(eb, RTS_ERR_INVAL, 0, 0,
                        "store %s: a %s store is read-only (it is loaded from its file)",
                        s->env.name, s->ops->name);
    }
    if (r->nfields > RTS_STORE_MAX_FIELDS) {
        return rts_errf(eb, RTS_ERR_LIMIT, 0, 0, "store %s: %zu fields in one write (most %d)",
                        s->env.name, r->nfields, RTS_STORE_MAX_FIELDS);
    }
    return r->n ? s->ops->write(s->ctx, conn, r, eb) : RTS_ERR_OK;
}

enum rts_err rts_store_reload(struct rts_store *s, struct rts_errbuf *eb)
{
    return s->ops->reload ? s->ops->reload(s->ctx, eb) : RTS_ERR_OK;
}

enum rts_store_status rts_store_exec(struct rts_store *s, void *conn, struct rts_store_cmds *c,
                                     struct rts_errbuf *eb)
{
    c->done = 0;
    if (!s->ops->exec) {
        rts_errf(eb, RTS_ERR_INVAL, 0, 0, "store %s: a %s store takes no commands", s->env.name,
                 s->ops->name);
        return RTS_STORE_ERROR;
    }
    return c->n ? s->ops->exec(s->ctx, conn, c, eb) : RTS_STORE_OK;
}

void rts_store_tick(struct rts_store *s, uint64_t now_ns)
{
    if (s->ops->tick) {
        s->ops->tick(s->ctx, now_ns);
    }
}

const struct rts_store_ops *rts_store_ops_of(const struct rts_store *s)
{
    return s->ops;
}

const char *rts_store_label(const struct rts_store *s)
{
    return s->ops->label ? s->ops->label(s->ctx) : s->ops->name;
}

const char *rts_store_name(const struct rts_store *s)
{
    return s->env.name;
}

const char *rts_store_updated_field(const struct rts_store *s)
{
    return s->env.updated_field;
}

double rts_store_parse_num(const char *s, size_t n)
{
    char tmp[64];
    char *end;
    double v;

    while (n && (*s == ' ' || *s == '\t')) {
        s++;
        n--;
    }
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r')) {
        n--;
    }
    if (n == 0 || n >= sizeof(tmp)) {
        return NAN;
    }
    for (size_t i = 0; i < n; i++) {
        if (!memchr("0123456789+-.eE", s[i], 15)) {
            return NAN; /* also refuses "nan", "inf" and hex floats that strtod would take */
        }
    }
    memcpy(tmp, s, n);
    tmp[n] = '\0';
    v = strtod(tmp, &end);
    return *end == '\0' && isfinite(v) ? v : NAN;
}
