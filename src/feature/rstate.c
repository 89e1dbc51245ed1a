/*
 * rstate.c - the Redis window state of rstate.h: the plan (groups, key
 * parts, per-event bounds) built once, then per batch the commands, one
 * round trip through the redis store's connection handling, and the
 * replies turned into feature values.
 *
 * Groups follow the engine's (engine.c): one ring per (of, window,
 * buckets, exact) shared by that window's count, sum, mean, min, max and
 * velocity, with a zset of held events when exact; one list per (of, N);
 * one HyperLogLog series per distinct feature. Registers are the members
 * of a key's meta zset, read with one ZMSCORE per event: "t" (newest event
 * time: since_last and the rings of every event), "f:F" (newest time with a
 * value of F: the rings and distinct of F) and "n:F:N" (pushes to a list).
 * A ring's newest ordinal is floor(register / resolution), which is what
 * the local ring keeps.
 *
 * Commands are written in RESP straight into the worker's buffer (one
 * append to hiredis per batch, no allocation per command).
 *
 * Bounds: everything a batch builds lives in the worker's buffers, sized at
 * start for the longest key and the largest batch (per event: its commands
 * and their bytes, plan_bounds); an event that would not fit cannot happen,
 * and is degraded rather than overrun if it did.
 */
#include "feature/rstate.h"

#include <hiredis/hiredis.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/fmt.h"
#include "core/hash.h"
#include "core/log.h"
#include "feature/store.h"
#include "feature/window.h"

#define TAG_MAX 160 /* key part of a group: kind, field name, window, buckets */
#define NUM_MAX 32  /* a number as text */
#define NAME_MAX_LEN 100

/* ---- options ---- */

struct state_opts {
    const char *type, *prefix;
    int64_t timeout_us, ttl_slack_us;
    const struct rts_conf_node *breaker;
};

const struct rts_opt rts_rstate_opts[] = {
    RTS_OPT_STR("type", "local", offsetof(struct state_opts, type),
                "local (in-process, per worker; the default) | redis (shared by processes: "
                "docs/FEATURES.md); with redis also the connection keys of store type redis "
                "(addr, db, password, password_file, connect_timeout, backoff, max_backoff)"),
    RTS_OPT_STR("prefix", NULL, offsetof(struct state_opts, prefix),
                "redis: prefix of every key; default rts:<pipeline>:"),
    RTS_OPT_DURATION("timeout", "100ms", offsetof(struct state_opts, timeout_us),
                     "redis: one batch (one round trip) waits at most this long; then its "
                     "events are scored with missing aggregates, degraded (a batch of 64 demo "
                     "events takes about 5-20 ms: docs/FEATURES.md)"),
    RTS_OPT_DURATION("ttl_slack", "5m", offsetof(struct state_opts, ttl_slack_us),
                     "redis: a bucket key expires window + 2 buckets + this after its last "
                     "write (wall clock); covers event time lagging behind"),
    RTS_OPT_NODE("breaker", offsetof(struct state_opts, breaker),
                 "redis: circuit breaker (the keys of model.breaker); while open, batches are "
                 "degraded at once, without calling Redis"),
    RTS_OPT_END,
};

/* The names of @opts that @but does not have, NULL-terminated, into @out
 * (room for @max + 1). */
static void opt_names(const struct rts_opt *opts, const struct rts_opt *but, const char **out,
                      size_t max)
{
    size_t n = 0;

    for (const struct rts_opt *o = opts; o->name && n < max; o++) {
        const struct rts_opt *b = but;
        while (b && b->name && strcmp(b->name, o->name) != 0) {
            b++;
        }
        if (!b || !b->name) {
            out[n++] = o->name;
        }
    }
    out[n] = NULL;
}

enum rts_err rts_rstate_parse(const struct rts_conf_node *node, const char *path,
                              struct rts_rstate_conf *out, struct rts_errbuf *eb)
{
    const char *conn_keys[48], *own_keys[16];
    struct state_opts so = {0};

    memset(out, 0, sizeof(*out));
    if (!node) {
        return RTS_ERR_OK;
    }
    if (node->kind != RTS_CONF_MAP) {
        return rts_conf_errf(eb, node, path, "expected a mapping like {type: redis, addr: "
                                             "127.0.0.1:6379}");
    }
    /* timeout is in both tables: the state's is the batch's deadline, the
     * connection's (the same value) is not used */
    opt_names(rts_store_redis.opts, rts_rstate_opts, conn_keys, 47);
    opt_names(rts_rstate_opts, rts_store_redis.opts, own_keys, 15);
    if (rts_opt_apply(rts_rstate_opts, node, path, conn_keys, &so, eb)) {
        return RTS_ERR_INVAL;
    }
    if (strcmp(so.type, "local") == 0) {
        for (size_t i = 0; i < node->len; i++) {
            if (strcmp(node->keys[i], "type") != 0) {
                return rts_conf_errf(eb, node->items[i], path,
                                     "'%s' goes with type: redis; the local state has no "
                                     "options here (see limits)", node->keys[i]);
            }
        }
        return RTS_ERR_OK;
    }
    if (strcmp(so.type, "redis") != 0) {
        return rts_conf_errf(eb, rts_conf_get(node, "type"), path,
                             "unknown state type '%s'; expected local or redis", so.type);
    }
    if (so.timeout_us < 1000 || so.ttl_slack_us < 0) {
        return rts_conf_errf(eb, node, path, "timeout >= 1ms, ttl_slack >= 0");
    }
    if (so.prefix && strlen(so.prefix) > NAME_MAX_LEN) {
        return rts_conf_errf(eb, rts_conf_get(node, "prefix"), path,
                             "prefix: at most %d bytes", NAME_MAX_LEN);
    }
    if (rts_store_check_opts(&rts_store_redis, node, path, own_keys, eb)) {
        return RTS_ERR_INVAL;
    }
    out->redis = 1;
    out->node = node;
    out->prefix = so.prefix;
    out->timeout_us = so.timeout_us;
    out->ttl_slack_us = so.ttl_slack_us;
    out->breaker_node = so.breaker;
    return RTS_ERR_OK;
}

/* ---- the plan ---- */

enum agg_kind { K_WIN, K_LASTN, K_DIST, K_SINCE };

struct wgroup {
    struct rts_win_spec spec;
    int64_t res;          /* resolution, ms */
    int of;               /* field, -1: every event (count, velocity of events) */
    int reg;              /* register of the ring's newest event time */
    char tag[TAG_MAX];    /* "w:F:W:B:" (F = * for every event) */
    size_t taglen;
    char nb[NUM_MAX];     /* the bucket count, ZUNION's numkeys */
    size_t nblen;
    char ttl[NUM_MAX];    /* PEXPIRE of a bucket, ms */
    size_t ttllen;
    /* exact windows (spec.exact > 0): the held events, one zset */
    char xtag[TAG_MAX]; /* "x:F:W:B:N" */
    size_t xtaglen;
    char xttl[NUM_MAX]; /* PEXPIRE of the zset, ms */
    size_t xttllen;
    char xtrim[NUM_MAX]; /* -(N + 1): ZREMRANGEBYRANK keeps the N greatest */
    size_t xtrimlen;
    int64_t xkeep; /* held events at or before t - xkeep are dropped (W + S) */
};

struct lgroup {
    uint32_t n;
    int of;
    int reg;           /* the push counter */
    char tag[TAG_MAX]; /* "l:F:N" */
    size_t taglen;
    char last[NUM_MAX]; /* N - 1: LRANGE and LTRIM */
    size_t lastlen;
};

struct dgroup {
    struct rts_win_spec spec; /* width and buckets, for the resolution */
    int64_t res;
    int of;
    int reg;
    enum rts_type type;
    char tag[TAG_MAX]; /* "d:F:W:B:" */
    size_t taglen;
    char ttl[NUM_MAX];
    size_t ttllen;
};

struct agg {
    size_t feat; /* feature index */
    enum rts_agg agg;
    enum agg_kind kind;
    int group;
    int has_of;     /* velocity: of a sum */
    double per_sec; /* velocity */
};

struct rts_rstate {
    const struct rts_schema *schema;
    struct rts_store *store;
    struct rts_breaker *breaker;
    struct agg *a;
    size_t na;
    struct wgroup *wg;
    size_t nwg;
    struct lgroup *lg;
    size_t nlg;
    struct dgroup *dg;
    size_t ndg;
    char (*reg)[TAG_MAX]; /* register names */
    size_t *reglen, nreg;
    int *field_reg; /* per schema field: its "f:F" register, -1 */
    char prefix[NAME_MAX_LEN + 8];
    size_t prefixlen;
    char key_ttl[NUM_MAX]; /* PEXPIRE of the meta zset and lists; "" = none */
    size_t key_ttllen;
    uint64_t timeout_ns;
    size_t max_key;
    /* per event, at most */
    size_t cmds_ev, resp_ev, reads_ev;
    uint32_t max_buckets, max_lastn, max_exact;
    size_t ring_bytes;
};

static const char *field_name(const struct rts_rstate *rs, int of)
{
    return of < 0 ? "*" : rts_schema_field(rs->schema, (size_t)of)->name;
}

/* The register named @name (shorter than TAG_MAX: field names are bounded),
 * added if new. */
static int add_reg(struct rts_rstate *rs, const char *name)
{
    size_t n = strlen(name);

    for (size_t i = 0; i < rs->nreg; i++) {
        if (rs->reglen[i] == n && memcmp(rs->reg[i], name, n) == 0) {
            return (int)i;
        }
    }
    memcpy(rs->reg[rs->nreg], name, n + 1);
    rs->reglen[rs->nreg] = n;
    return (int)rs->nreg++;
}

static int field_reg(struct rts_rstate *rs, int of)
{
    char name[TAG_MAX];

    if (of < 0) {
        return 0; /* "t" */
    }
    if (rs->field_reg[of] < 0) {
        snprintf(name, sizeof(name), "f:%s", field_name(rs, of));
        rs->field_reg[of] = add_reg(rs, name);
    }
    return rs->field_reg[of];
}

static size_t ttl_text(char *buf, int64_t ms)
{
    return rts_fmt_i64(buf, ms);
}

static int add_wgroup(struct rts_rstate *rs, const struct rts_feature_def *d, int64_t slack_ms)
{
    int of = d->agg == RTS_AGG_COUNT || (d->agg == RTS_AGG_VELOCITY && d->of < 0) ? -1 : d->of;
    unsigned aggs = d->agg == RTS_AGG_SUM || d->agg == RTS_AGG_MEAN ||
                            (d->agg == RTS_AGG_VELOCITY && d->of >= 0)
                        ? RTS_WIN_SUM
                    : d->agg == RTS_AGG_MIN ? RTS_WIN_MIN
                    : d->agg == RTS_AGG_MAX ? RTS_WIN_MAX
                                            : 0;
    uint32_t exact = d->agg == RTS_AGG_VELOCITY ? 0 : d->exact; /* as engine.c */
    struct wgroup *g;
    uint64_t keep;

    for (size_t i = 0; i < rs->nwg; i++) {
        g = &rs->wg[i];
        if (g->of == of && g->spec.width_ms == d->window_ms && g->spec.nbuckets == d->buckets &&
            g->spec.exact == exact) {
            g->spec.aggs |= aggs;
            return (int)i;
        }
    }
    g = &rs->wg[rs->nwg];
    g->spec.width_ms = d->window_ms;
    g->spec.nbuckets = d->buckets;
    g->spec.aggs = aggs;
    g->spec.exact = exact;
    g->res = rts_win_resolution_ms(&g->spec);
    g->of = of;
    g->reg = field_reg(rs, of);
    /* an exact window has a ring of its own (engine.c): its buckets too */
    g->taglen =
        exact ? (size_t)snprintf(g->tag, sizeof(g->tag), "w:%s:%lld:%u:x%u:", field_name(rs, of),
                                 (long long)d->window_ms, d->buckets, exact)
              : (size_t)snprintf(g->tag, sizeof(g->tag), "w:%s:%lld:%u:", field_name(rs, of),
                                 (long long)d->window_ms, d->buckets);
    g->nblen = rts_fmt_i64(g->nb, d->buckets);
    g->ttllen = ttl_text(g->ttl, d->window_ms + 2 * g->res + slack_ms);
    if (exact) {
        /* window.h: held events at or before t - W - S are dropped */
        keep = (uint64_t)d->window_ms + (uint64_t)d->buckets * (uint64_t)g->res;
        g->xkeep = keep > (uint64_t)INT64_MAX / 2 ? INT64_MAX / 2 : (int64_t)keep;
        g->xtaglen =
            (size_t)snprintf(g->xtag, sizeof(g->xtag), "x:%s:%lld:%u:%u", field_name(rs, of),
                             (long long)d->window_ms, d->buckets, exact);
        g->xttllen = ttl_text(g->xttl, g->xkeep + slack_ms);
        g->xtrimlen = rts_fmt_i64(g->xtrim, -(int64_t)exact - 1);
    }
    return (int)rs->nwg++;
}

static int add_lgroup(struct rts_rstate *rs, const struct rts_feature_def *d)
{
    char name[TAG_MAX];
    struct lgroup *g;

    for (size_t i = 0; i < rs->nlg; i++) {
        if (rs->lg[i].of == d->of && rs->lg[i].n == d->last_n) {
            return (int)i;
        }
    }
    g = &rs->lg[rs->nlg];
    g->n = d->last_n;
    g->of = d->of;
    snprintf(name, sizeof(name), "n:%s:%u", field_name(rs, d->of), d->last_n);
    g->reg = add_reg(rs, name);
    g->taglen = (size_t)snprintf(g->tag, sizeof(g->tag), "l:%s:%u", field_name(rs, d->of),
                                 d->last_n);
    g->lastlen = rts_fmt_i64(g->last, (int64_t)d->last_n - 1);
    return (int)rs->nlg++;
}

static int add_dgroup(struct rts_rstate *rs, const struct rts_feature_def *d, int64_t slack_ms)
{
    struct dgroup *g = &rs->dg[rs->ndg];

    g->spec.width_ms = d->window_ms;
    g->spec.nbuckets = d->buckets;
    g->res = rts_win_resolution_ms(&g->spec);
    g->of = d->of;
    g->reg = field_reg(rs, d->of);
    g->type = rts_field_value_type(rts_schema_field(rs->schema, (size_t)d->of)->type);
    g->taglen = (size_t)snprintf(g->tag, sizeof(g->tag), "d:%s:%lld:%u:", field_name(rs, d->of),
                                 (long long)d->window_ms, d->buckets);
    g->ttllen = ttl_text(g->ttl, d->window_ms + 2 * g->res + slack_ms);
    return (int)rs->ndg++;
}

/* Per-event bounds of commands and of their RESP bytes: a key argument is
 * at most keymax bytes, any other at most ARG_SMALL (a number, a member, a
 * command name or flag) or a register name; each argument has a header
 * "$LEN" and two CRLFs, each command "*ARGC" and a CRLF. */
#define ARG_SMALL 32
#define ARG_HDR 25
#define CMD_HDR 23
static void plan_bounds(struct rts_rstate *rs)
{
    size_t tag = 0, reg = 0, keymax, keys, args, cmds;

    for (size_t i = 0; i < rs->nwg; i++) {
        tag = rs->wg[i].taglen > tag ? rs->wg[i].taglen : tag;
        tag = rs->wg[i].xtaglen > tag ? rs->wg[i].xtaglen : tag;
    }
    for (size_t i = 0; i < rs->ndg; i++) {
        tag = rs->dg[i].taglen > tag ? rs->dg[i].taglen : tag;
    }
    for (size_t i = 0; i < rs->nlg; i++) {
        tag = rs->lg[i].taglen > tag ? rs->lg[i].taglen : tag;
    }
    for (size_t i = 0; i < rs->nreg; i++) {
        reg = rs->reglen[i] > reg ? rs->reglen[i] : reg;
    }
    keymax = rs->prefixlen + 3 + rs->max_key + tag + RTS_FMT_INT_MAX;
    rs->reads_ev = 1 + rs->nwg + rs->ndg + rs->nlg;
    cmds = rs->reads_ev + 2 + rs->nlg;          /* + ZADD meta, PEXPIRE meta, ZINCRBY */
    args = 2 + rs->nreg + 3 + 2 * rs->nreg + 3; /* ZMSCORE, ZADD meta, PEXPIRE meta */
    keys = 3 + rs->nlg;                         /* the meta key in those and ZINCRBY */
    for (size_t i = 0; i < rs->nwg; i++) {
        keys += rs->wg[i].spec.nbuckets + 5;
        args += 3 + rs->wg[i].spec.nbuckets + 21; /* ZUNION; ZINCRBY x2, ZADD x2, PEXPIRE */
        cmds += 5;
        if (rs->wg[i].spec.exact) {
            /* ZCARD, ZRANGE 0 0, ZRANGE BYSCORE; ZADD, ZREMRANGEBYRANK,
             * ZREMRANGEBYSCORE, PEXPIRE */
            rs->reads_ev += 3;
            keys += 7;
            args += 2 + 5 + 6 + 4 + 4 + 4 + 3;
            cmds += 7;
        }
    }
    for (size_t i = 0; i < rs->ndg; i++) {
        keys += rs->dg[i].spec.nbuckets + 2;
        args += 1 + rs->dg[i].spec.nbuckets + 6; /* PFCOUNT; PFADD, PEXPIRE */
        cmds += 2;
    }
    for (size_t i = 0; i < rs->nlg; i++) {
        keys += 4;
        args += 4 + 4 + 3 + 4 + 3; /* LRANGE; ZINCRBY; LPUSH, LTRIM, PEXPIRE */
        cmds += 3;
    }
    rs->cmds_ev = cmds;
    rs->resp_ev = keys * (ARG_HDR + keymax) +
                  (args - keys) * (ARG_HDR + (reg > ARG_SMALL ? reg : ARG_SMALL)) + cmds * CMD_HDR;
}

struct rts_rstate *rts_rstate_new(const struct rts_schema *schema,
                                  const struct rts_feature_def *defs, size_t ndefs,
                                  const struct rts_rstate_conf *conf, const char *pipeline,
                                  int64_t key_ttl_ms, struct rts_errbuf *eb)
{
    const char *own_keys[16];
    struct rts_store_env env = {"state", NULL};
    struct rts_rstate *rs = calloc(1, sizeof(*rs));
    size_t nf = rts_schema_nfields(schema), n = ndefs ? ndefs : 1;
    const struct rts_field_spec *key;
    struct rts_breaker_opts bo;
    int64_t slack_ms = conf->ttl_slack_us / 1000;

    if (!rs) {
        goto nomem;
    }
    rs->schema = schema;
    rs->a = calloc(n, sizeof(*rs->a));
    rs->wg = calloc(n, sizeof(*rs->wg));
    rs->lg = calloc(n, sizeof(*rs->lg));
    rs->dg = calloc(n, sizeof(*rs->dg));
    rs->reg = calloc(2 * n + 1, sizeof(*rs->reg));
    rs->reglen = calloc(2 * n + 1, sizeof(*rs->reglen));
    rs->field_reg = malloc((nf ? nf : 1) * sizeof(*rs->field_reg));
    if (!rs->a || !rs->wg || !rs->lg || !rs->dg || !rs->reg || !rs->reglen || !rs->field_reg) {
        goto nomem;
    }
    for (size_t i = 0; i < nf; i++) {
        rs->field_reg[i] = -1;
    }
    key = rts_schema_field(schema, (size_t)rts_schema_role(schema, RTS_ROLE_KEY));
    rs->max_key = key->max_len && key->max_len < RTS_KEY_MAX_BYTES ? key->max_len
                                                                  : RTS_KEY_MAX_BYTES;
    if (conf->prefix) {
        rs->prefixlen = (size_t)snprintf(rs->prefix, sizeof(rs->prefix), "%s", conf->prefix);
    } else {
        rs->prefixlen = (size_t)snprintf(rs->prefix, sizeof(rs->prefix), "rts:%.*s:",
                                         NAME_MAX_LEN, pipeline ? pipeline : "pipeline");
    }
    rs->key_ttllen = key_ttl_ms > 0 ? ttl_text(rs->key_ttl, key_ttl_ms) : 0;
    rs->timeout_ns = (uint64_t)conf->timeout_us * 1000;
    add_reg(rs, "t");
    for (size_t i = 0; i < ndefs; i++) {
        const struct rts_feature_def *d = &defs[i];
        struct agg *a = &rs->a[rs->na];
        int g;

        if (d->kind != RTS_FEAT_AGG) {
            continue;
        }
        if (d->of >= 0 && strlen(field_name(rs, d->of)) > NAME_MAX_LEN) {
            rts_errf(eb, RTS_ERR_INVAL, d->line, d->column,
                     "state: field '%.40s...': names used in Redis keys have at most %d bytes",
                     field_name(rs, d->of), NAME_MAX_LEN);
            goto fail;
        }
        a->feat = i;
        a->agg = d->agg;
        if (d->agg == RTS_AGG_SINCE_LAST) {
            a->kind = K_SINCE;
            g = 0;
        } else if (d->agg == RTS_AGG_DISTINCT) {
            a->kind = K_DIST;
            g = add_dgroup(rs, d, slack_ms);
        } else if (d->window_ms > 0) {
            a->kind = K_WIN;
            g = add_wgroup(rs, d, slack_ms);
            a->has_of = d->of >= 0;
            a->per_sec = 1000.0 / (double)d->window_ms;
        } else {
            a->kind = K_LASTN;
            g = add_lgroup(rs, d);
        }
        a->group = g;
        rs->na++;
    }
    for (size_t i = 0; i < rs->nwg; i++) {
        size_t b = rts_win_size(&rs->wg[i].spec);
        rs->max_buckets =
            rs->wg[i].spec.nbuckets > rs->max_buckets ? rs->wg[i].spec.nbuckets : rs->max_buckets;
        rs->max_exact = rs->wg[i].spec.exact > rs->max_exact ? rs->wg[i].spec.exact : rs->max_exact;
        rs->ring_bytes = b > rs->ring_bytes ? b : rs->ring_bytes;
    }
    for (size_t i = 0; i < rs->nlg; i++) {
        rs->max_lastn = rs->lg[i].n > rs->max_lastn ? rs->lg[i].n : rs->max_lastn;
    }
    plan_bounds(rs);
    opt_names(rts_rstate_opts, rts_store_redis.opts, own_keys, 15);
    rs->store = rts_store_open_with(&rts_store_redis, conf->node, "state", &env, own_keys, eb);
    if (!rs->store) {
        goto fail;
    }
    bo = conf->breaker;
    if (!bo.on_transition) {
        bo.on_transition = rts_breaker_log_transition;
    }
    rs->breaker = rts_breaker_new("state", &bo, eb);
    if (!rs->breaker) {
        rts_err_prefix(eb, "state.breaker");
        goto fail;
    }
    return rs;
nomem:
    rts_errf(eb, RTS_ERR_NOMEM, 0, 0, "state: out of memory");
fail:
    rts_rstate_free(rs);
    return NULL;
}

void rts_rstate_free(struct rts_rstate *rs)
{
    if (!rs) {
        return;
    }
    rts_breaker_free(rs->breaker);
    rts_store_close(rs->store);
    free(rs->a);
    free(rs->wg);
    free(rs->lg);
    free(rs->dg);
    free(rs->reg);
    free(rs->reglen);
    free(rs->field_reg);
    free(rs);
}

struct rts_breaker *rts_rstate_breaker(const struct rts_rstate *rs)
{
    return rs->breaker;
}

const char *rts_rstate_label(const struct rts_rstate *rs)
{
    return rts_store_label(rs->store);
}

size_t rts_rstate_count(const struct rts_rstate *rs)
{
    return rs->na;
}

/* ---- per worker ---- */

enum cmd_kind { C_META, C_WIN, C_XCARD, C_XOLD, C_XWIN, C_DIST, C_LASTN, C_WRITE };

struct cmd_info {
    uint32_t ev;
    uint16_t kind, group;
};

struct rts_rstate_worker {
    const struct rts_rstate *rs;
    void *conn;
    size_t max_batch;
    /* the batch's commands, in RESP */
    struct rts_store_cmds cmds;
    struct cmd_info *info;
    char *buf;
    size_t ncmd, nbuf, cap_cmd, cap_buf;
    const struct rts_event *evs;
    /* results, per event */
    double *out;     /* max_batch x na */
    double *regv;    /* max_batch x nreg: the registers before the event */
    uint32_t *reads; /* reads answered */
    uint8_t *bad;    /* an error reply to a read, or not sent */
    uint8_t *late;
    uint8_t *xover; /* an exact window answered from its buckets */
    /* scratch for one reply (a group's replies are consecutive) */
    void *ring;
    struct rts_win_held *held; /* an exact window's events in the window */
    uint32_t xcard;            /* its held events in all */
    int64_t xold;              /* the oldest's time */
    uint32_t *bcount;
    double *bsum, *bmin, *bmax, *lastv;
    /* counters: single writer, relaxed atomic loads by readers */
    struct rts_rstate_stats st;
};

#define BUMP(field, k) __atomic_store_n(&(field), (field) + (k), __ATOMIC_RELAXED)

struct rts_rstate_worker *rts_rstate_worker_new(const struct rts_rstate *rs, size_t max_batch,
                                                struct rts_errbuf *eb)
{
    struct rts_rstate_worker *w = calloc(1, sizeof(*w));
    size_t nb = max_batch ? max_batch : 1;

    if (!w) {
        goto nomem;
    }
    w->rs = rs;
    w->max_batch = nb;
    w->cap_cmd = nb * rs->cmds_ev;
    w->cap_buf = nb * rs->resp_ev;
    w->info = malloc(w->cap_cmd * sizeof(*w->info));
    w->buf = malloc(w->cap_buf + 64); /* + room for the NUL the formatters write */
    w->out = malloc(nb * (rs->na ? rs->na : 1) * sizeof(*w->out));
    w->regv = malloc(nb * rs->nreg * sizeof(*w->regv));
    w->reads = calloc(nb, sizeof(*w->reads));
    w->bad = calloc(nb, 1);
    w->late = calloc(nb, 1);
    w->xover = calloc(nb, 1);
    w->held = calloc(rs->max_exact + 1, sizeof(*w->held));
    w->ring = calloc(1, rs->ring_bytes ? rs->ring_bytes : 8);
    w->bcount = calloc(rs->max_buckets + 1, sizeof(*w->bcount));
    w->bsum = calloc(rs->max_buckets + 1, sizeof(*w->bsum));
    w->bmin = calloc(rs->max_buckets + 1, sizeof(*w->bmin));
    w->bmax = calloc(rs->max_buckets + 1, sizeof(*w->bmax));
    w->lastv = calloc(rs->max_lastn + 1, sizeof(*w->lastv));
    if (!w->info || !w->buf || !w->out || !w->regv || !w->reads || !w->bad || !w->late ||
        !w->xover || !w->held || !w->ring || !w->bcount || !w->bsum || !w->bmin || !w->bmax ||
        !w->lastv) {
        goto nomem;
    }
    w->conn = rts_store_conn_new(rs->store, eb);
    if (!w->conn) {
        rts_rstate_worker_free(w);
        return NULL;
    }
    return w;
nomem:
    rts_rstate_worker_free(w);
    rts_errf(eb, RTS_ERR_NOMEM, 0, 0, "state: out of memory");
    return NULL;
}

void rts_rstate_worker_free(struct rts_rstate_worker *w)
{
    if (!w) {
        return;
    }
    if (w->conn) {
        rts_store_conn_free(w->rs->store, w->conn);
    }
    free(w->info);
    free(w->buf);
    free(w->out);
    free(w->regv);
    free(w->reads);
    free(w->bad);
    free(w->late);
    free(w->xover);
    free(w->held);
    free(w->ring);
    free(w->bcount);
    free(w->bsum);
    free(w->bmin);
    free(w->bmax);
    free(w->lastv);
    free(w);
}

/* ---- building commands ----
 *
 * Straight into the batch's buffer in RESP: "*ARGC\r\n" per command, then
 * "$LEN\r\nBYTES\r\n" per argument. Each command's argument count is known
 * when it starts. */

static void put_crlf(char *at)
{
    at[0] = '\r';
    at[1] = '\n';
}

static void cmd(struct rts_rstate_worker *w, size_t ev, enum cmd_kind kind, size_t group,
                size_t argc)
{
    char *at = w->buf + w->nbuf;
    size_t n;

    w->info[w->ncmd].ev = (uint32_t)ev;
    w->info[w->ncmd].kind = (uint16_t)kind;
    w->info[w->ncmd++].group = (uint16_t)group;
    at[0] = '*';
    n = 1 + rts_fmt_u64(at + 1, argc);
    put_crlf(at + n);
    w->nbuf += n + 2;
}

/* The header of an argument of @n bytes; returns where they go. */
static char *arg_begin(struct rts_rstate_worker *w, size_t n)
{
    char *at = w->buf + w->nbuf;
    size_t h;

    at[0] = '$';
    h = 1 + rts_fmt_u64(at + 1, n);
    put_crlf(at + h);
    w->nbuf += h + 2 + n + 2;
    put_crlf(at + h + 2 + n);
    return at + h + 2;
}

/* An argument of the @n bytes at @p (which may be an earlier argument's:
 * the buffer only grows at its end). Returns where its copy is. */
static const char *arg(struct rts_rstate_worker *w, const char *p, size_t n)
{
    char *at = arg_begin(w, n);

    memcpy(at, p, n);
    return at;
}

#define ARG_LIT(w, s) arg(w, s, sizeof(s) - 1)

/* The key P{K}:TAG[ORD]; returns it (for the commands that use it again). */
static struct rts_str arg_key(struct rts_rstate_worker *w, const struct rts_event *ev,
                              const char *tag, size_t taglen, int with_ord, int64_t ord)
{
    const struct rts_rstate *rs = w->rs;
    char num[RTS_FMT_INT_MAX];
    size_t nl = with_ord ? rts_fmt_i64(num, ord) : 0;
    size_t n = rs->prefixlen + 1 + ev->key.n + 2 + taglen + nl;
    char *at = arg_begin(w, n), *o = at;
    struct rts_str k = {at, (uint32_t)n};

    memcpy(o, rs->prefix, rs->prefixlen);
    o += rs->prefixlen;
    *o++ = '{';
    memcpy(o, ev->key.p, ev->key.n);
    o += ev->key.n;
    *o++ = '}';
    *o++ = ':';
    memcpy(o, tag, taglen);
    memcpy(o + taglen, num, nl);
    return k;
}

/* A number as text that Redis reads back as exactly @v. */
static void arg_num(struct rts_rstate_worker *w, double v)
{
    char num[RTS_FMT_DOUBLE_MAX];
    size_t n;

    if (isinf(v)) {
        n = v > 0 ? 3 : 4;
        memcpy(num, v > 0 ? "inf" : "-inf", n);
    } else {
        n = rts_fmt_double(num, v == 0 ? 0.0 : v);
    }
    arg(w, num, n);
}

/* "c:ORD" and friends */
static void arg_member(struct rts_rstate_worker *w, char kind, int64_t ord)
{
    char m[2 + RTS_FMT_INT_MAX];

    m[0] = kind;
    m[1] = ':';
    arg(w, m, 2 + rts_fmt_i64(m + 2, ord));
}

/* A distinct value as its 64-bit hash in hex, the hash the local state
 * counts (engine.c): the same values are the same, and any value fits. */
static void arg_hash(struct rts_rstate_worker *w, enum rts_type t, union rts_val v)
{
    static const char hex[] = "0123456789abcdef";
    double d = v.num == 0 ? 0.0 : v.num; /* -0 and 0 are one value */
    uint64_t h = t == RTS_T_STR ? rts_hash64(v.str.p, v.str.n) : rts_hash64(&d, sizeof(d));
    char *at = arg_begin(w, 16);

    for (int i = 15; i >= 0; i--, h >>= 4) {
        at[i] = hex[h & 15];
    }
}

/* The sign bit flipped for a positive double, every bit for a negative one:
 * unsigned order is then numeric order (-0 is held as 0, NaN never). */
static uint64_t held_bits(double v)
{
    uint64_t u;

    memcpy(&u, &v, sizeof(u));
    return u >> 63 ? ~u : u | (UINT64_C(1) << 63);
}

static double held_double(uint64_t u)
{
    double v;

    u = u >> 63 ? u & ~(UINT64_C(1) << 63) : ~u;
    memcpy(&v, &u, sizeof(v));
    return v;
}

static void put_hex16(char *at, uint64_t h)
{
    static const char hex[] = "0123456789abcdef";

    for (int i = 15; i >= 0; i--, h >>= 4) {
        at[i] = hex[h & 15];
    }
}

#define HELD_MEMBER 32
_Static_assert(HELD_MEMBER <= ARG_SMALL, "plan_bounds counts a member as a small argument");

/* An exact window's member for value @v of event @ev: the value's bits in
 * order-preserving hex (member order is value order for one score), then the
 * hash of the event id (of the payload when the event has none), so that
 * distinct events never collapse and a replayed one is held once. Fixed
 * width: any id fits the batch buffer. */
static void arg_held_member(struct rts_rstate_worker *w, double v, const struct rts_event *ev)
{
    char *at = arg_begin(w, HELD_MEMBER);

    put_hex16(at, held_bits(rts_win_held_value(v)));
    put_hex16(at + 16,
              ev->id.p ? rts_hash64(ev->id.p, ev->id.n) : rts_hash64(ev->payload.p, ev->payload.n));
}

/* The value of member @s (@n bytes); 0 ok. */
static int parse_held_member(const char *s, size_t n, double *v)
{
    uint64_t u = 0;

    if (n != HELD_MEMBER) {
        return -1;
    }
    for (size_t i = 0; i < 16; i++) {
        int c = s[i];
        int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
        if (d < 0) {
            return -1;
        }
        u = u << 4 | (uint64_t)d;
    }
    *v = held_double(u);
    return isnan(*v) ? -1 : 0;
}

/* A score bound: "(" when @open, then @t, or "-inf" when @t is INT64_MIN. */
static void arg_score(struct rts_rstate_worker *w, int open, int64_t t)
{
    char num[1 + RTS_FMT_INT_MAX];
    size_t n = 0;

    if (t == INT64_MIN) {
        ARG_LIT(w, "-inf");
        return;
    }
    if (open) {
        num[n++] = '(';
    }
    n += rts_fmt_i64(num + n, t);
    arg(w, num, n);
}

/* @t - @d, or INT64_MIN below it (d >= 0) */
static int64_t sub_sat(int64_t t, int64_t d)
{
    return t < INT64_MIN + d ? INT64_MIN : t - d;
}

static int present(const struct rts_rstate *rs, int of, const struct rts_event *ev)
{
    enum rts_type t;

    if (of < 0) {
        return 1;
    }
    t = rts_field_value_type(rts_schema_field(rs->schema, (size_t)of)->type);
    return !rts_val_missing(t, ev->vals[of]);
}

static void build_event(struct rts_rstate_worker *w, size_t i, const struct rts_event *ev)
{
    const struct rts_rstate *rs = w->rs;
    size_t nf = rts_schema_nfields(rs->schema), nset = 0;
    struct rts_str meta, ts;
    char ts_text[RTS_FMT_INT_MAX];

    /* reads: the state before the event */
    cmd(w, i, C_META, 0, 2 + rs->nreg);
    ARG_LIT(w, "ZMSCORE");
    meta = arg_key(w, ev, "m", 1, 0, 0);
    for (size_t r = 0; r < rs->nreg; r++) {
        arg(w, rs->reg[r], rs->reglen[r]);
    }
    for (size_t g = 0; g < rs->nwg; g++) {
        const struct wgroup *wg = &rs->wg[g];
        int64_t q = rts_floor_div(ev->ts_ms, wg->res);
        struct rts_str xk;
        cmd(w, i, C_WIN, g, 3 + wg->spec.nbuckets);
        ARG_LIT(w, "ZUNION");
        arg(w, wg->nb, wg->nblen);
        for (int64_t o = q - wg->spec.nbuckets + 1; o <= q; o++) {
            arg_key(w, ev, wg->tag, wg->taglen, 1, o);
        }
        ARG_LIT(w, "WITHSCORES");
        if (!wg->spec.exact) {
            continue;
        }
        /* the held events: how many, the oldest, those newer than t - W */
        cmd(w, i, C_XCARD, g, 2);
        ARG_LIT(w, "ZCARD");
        xk = arg_key(w, ev, wg->xtag, wg->xtaglen, 0, 0);
        cmd(w, i, C_XOLD, g, 5);
        ARG_LIT(w, "ZRANGE");
        arg(w, xk.p, xk.n);
        ARG_LIT(w, "0");
        ARG_LIT(w, "0");
        ARG_LIT(w, "WITHSCORES");
        cmd(w, i, C_XWIN, g, 6);
        ARG_LIT(w, "ZRANGE");
        arg(w, xk.p, xk.n);
        arg_score(w, 1, sub_sat(ev->ts_ms, wg->spec.width_ms));
        ARG_LIT(w, "+inf");
        ARG_LIT(w, "BYSCORE");
        ARG_LIT(w, "WITHSCORES");
    }
    for (size_t g = 0; g < rs->ndg; g++) {
        const struct dgroup *dg = &rs->dg[g];
        int64_t q = rts_floor_div(ev->ts_ms, dg->res);
        cmd(w, i, C_DIST, g, 1 + dg->spec.nbuckets);
        ARG_LIT(w, "PFCOUNT");
        for (int64_t o = q - dg->spec.nbuckets + 1; o <= q; o++) {
            arg_key(w, ev, dg->tag, dg->taglen, 1, o);
        }
    }
    for (size_t g = 0; g < rs->nlg; g++) {
        cmd(w, i, C_LASTN, g, 4);
        ARG_LIT(w, "LRANGE");
        arg_key(w, ev, rs->lg[g].tag, rs->lg[g].taglen, 0, 0);
        ARG_LIT(w, "0");
        arg(w, rs->lg[g].last, rs->lg[g].lastlen);
    }

    /* writes: the event applied. The registers first: ZADD GT keeps the
     * newest time, whatever order events come in. */
    ts.p = ts_text;
    ts.n = (uint32_t)rts_fmt_i64(ts_text, ev->ts_ms);
    for (size_t f = 0; f < nf; f++) {
        nset += rs->field_reg[f] >= 0 && present(rs, (int)f, ev);
    }
    cmd(w, i, C_WRITE, 0, 5 + 2 * nset);
    ARG_LIT(w, "ZADD");
    arg(w, meta.p, meta.n);
    ARG_LIT(w, "GT");
    arg(w, ts.p, ts.n);
    arg(w, rs->reg[0], rs->reglen[0]);
    for (size_t f = 0; f < nf; f++) {
        if (rs->field_reg[f] >= 0 && present(rs, (int)f, ev)) {
            arg(w, ts.p, ts.n);
            arg(w, rs->reg[rs->field_reg[f]], rs->reglen[rs->field_reg[f]]);
        }
    }
    for (size_t g = 0; g < rs->nlg; g++) {
        if (present(rs, rs->lg[g].of, ev)) {
            cmd(w, i, C_WRITE, 0, 4);
            ARG_LIT(w, "ZINCRBY");
            arg(w, meta.p, meta.n);
            ARG_LIT(w, "1");
            arg(w, rs->reg[rs->lg[g].reg], rs->reglen[rs->lg[g].reg]);
        }
    }
    if (rs->key_ttllen) {
        cmd(w, i, C_WRITE, 0, 3);
        ARG_LIT(w, "PEXPIRE");
        arg(w, meta.p, meta.n);
        arg(w, rs->key_ttl, rs->key_ttllen);
    }
    for (size_t g = 0; g < rs->nwg; g++) {
        const struct wgroup *wg = &rs->wg[g];
        int64_t e = rts_floor_div(ev->ts_ms, wg->res);
        double v = wg->of >= 0 ? ev->vals[wg->of].num : 0;
        struct rts_str bk;
        if (isnan(v)) {
            continue;
        }
        cmd(w, i, C_WRITE, 0, 4);
        ARG_LIT(w, "ZINCRBY");
        bk = arg_key(w, ev, wg->tag, wg->taglen, 1, e);
        ARG_LIT(w, "1");
        arg_member(w, 'c', e);
        if (wg->spec.aggs & RTS_WIN_SUM) {
            cmd(w, i, C_WRITE, 0, 4);
            ARG_LIT(w, "ZINCRBY");
            arg(w, bk.p, bk.n);
            arg_num(w, v);
            arg_member(w, 's', e);
        }
        if (wg->spec.aggs & RTS_WIN_MIN) {
            cmd(w, i, C_WRITE, 0, 5);
            ARG_LIT(w, "ZADD");
            arg(w, bk.p, bk.n);
            ARG_LIT(w, "LT");
            arg_num(w, v);
            arg_member(w, 'l', e);
        }
        if (wg->spec.aggs & RTS_WIN_MAX) {
            cmd(w, i, C_WRITE, 0, 5);
            ARG_LIT(w, "ZADD");
            arg(w, bk.p, bk.n);
            ARG_LIT(w, "GT");
            arg_num(w, v);
            arg_member(w, 'h', e);
        }
        cmd(w, i, C_WRITE, 0, 3);
        ARG_LIT(w, "PEXPIRE");
        arg(w, bk.p, bk.n);
        arg(w, wg->ttl, wg->ttllen);
        if (wg->spec.exact) {
            /* blind, as window.h's held_add: in, the least out when past N,
             * then what is too old for any window the ring accepts */
            struct rts_str xk;
            char ts_num[RTS_FMT_INT_MAX];
            cmd(w, i, C_WRITE, 0, 4);
            ARG_LIT(w, "ZADD");
            xk = arg_key(w, ev, wg->xtag, wg->xtaglen, 0, 0);
            arg(w, ts_num, rts_fmt_i64(ts_num, ev->ts_ms));
            arg_held_member(w, v, ev);
            cmd(w, i, C_WRITE, 0, 4);
            ARG_LIT(w, "ZREMRANGEBYRANK");
            arg(w, xk.p, xk.n);
            ARG_LIT(w, "0");
            arg(w, wg->xtrim, wg->xtrimlen);
            cmd(w, i, C_WRITE, 0, 4);
            ARG_LIT(w, "ZREMRANGEBYSCORE");
            arg(w, xk.p, xk.n);
            ARG_LIT(w, "-inf");
            arg_score(w, 0, sub_sat(ev->ts_ms, wg->xkeep));
            cmd(w, i, C_WRITE, 0, 3);
            ARG_LIT(w, "PEXPIRE");
            arg(w, xk.p, xk.n);
            arg(w, wg->xttl, wg->xttllen);
        }
    }
    for (size_t g = 0; g < rs->ndg; g++) {
        const struct dgroup *dg = &rs->dg[g];
        union rts_val v = ev->vals[dg->of];
        struct rts_str dk;
        if (rts_val_missing(dg->type, v)) {
            continue;
        }
        cmd(w, i, C_WRITE, 0, 3);
        ARG_LIT(w, "PFADD");
        dk = arg_key(w, ev, dg->tag, dg->taglen, 1, rts_floor_div(ev->ts_ms, dg->res));
        arg_hash(w, dg->type, v);
        cmd(w, i, C_WRITE, 0, 3);
        ARG_LIT(w, "PEXPIRE");
        arg(w, dk.p, dk.n);
        arg(w, dg->ttl, dg->ttllen);
    }
    for (size_t g = 0; g < rs->nlg; g++) {
        const struct lgroup *lg = &rs->lg[g];
        struct rts_str lk;
        if (!present(rs, lg->of, ev)) {
            continue;
        }
        cmd(w, i, C_WRITE, 0, 3);
        ARG_LIT(w, "LPUSH");
        lk = arg_key(w, ev, lg->tag, lg->taglen, 0, 0);
        arg_num(w, ev->vals[lg->of].num);
        cmd(w, i, C_WRITE, 0, 4);
        ARG_LIT(w, "LTRIM");
        arg(w, lk.p, lk.n);
        ARG_LIT(w, "0");
        arg(w, lg->last, lg->lastlen);
        if (rs->key_ttllen) {
            cmd(w, i, C_WRITE, 0, 3);
            ARG_LIT(w, "PEXPIRE");
            arg(w, lk.p, lk.n);
            arg(w, rs->key_ttl, rs->key_ttllen);
        }
    }
}

/* ---- replies ---- */

static double reply_num(const redisReply *r)
{
    if (r->type == REDIS_REPLY_INTEGER) {
        return (double)r->integer;
    }
    if (r->type == REDIS_REPLY_STRING) {
        char *end;
        double v = strtod(r->str, &end); /* hiredis NUL-terminates; Redis writes %.17g */
        return end != r->str && *end == '\0' ? v : NAN;
    }
    return NAN;
}

/* @s (a member "k:ORD") into *kind and *ord; 0 ok. */
static int parse_member(const char *s, size_t n, char *kind, int64_t *ord)
{
    int neg = 0;
    uint64_t v = 0;
    size_t i = 2;

    if (n < 3 || s[1] != ':') {
        return -1;
    }
    *kind = s[0];
    if (s[2] == '-') {
        neg = 1;
        i++;
    }
    if (i >= n || n - i > 19) {
        return -1;
    }
    for (; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return -1;
        }
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    *ord = neg ? -(int64_t)v : (int64_t)v;
    return 0;
}

static double *out_row(struct rts_rstate_worker *w, size_t ev)
{
    return w->out + ev * w->rs->na;
}

static double *reg_row(struct rts_rstate_worker *w, size_t ev)
{
    return w->regv + ev * w->rs->nreg;
}

static void on_meta(struct rts_rstate_worker *w, size_t ev, const redisReply *r)
{
    const struct rts_rstate *rs = w->rs;
    double *reg = reg_row(w, ev), *out = out_row(w, ev);
    int64_t ts = w->evs[ev].ts_ms;

    if (r->type != REDIS_REPLY_ARRAY || r->elements != rs->nreg) {
        w->bad[ev] = 1;
        return;
    }
    for (size_t k = 0; k < rs->nreg; k++) {
        double v = reply_num(r->element[k]); /* nil: NaN, never set */
        reg[k] = fabs(v) < 9e18 ? v : NAN;   /* times and counts; NaN also for garbage */
    }
    for (size_t j = 0; j < rs->na; j++) {
        if (rs->a[j].kind == K_SINCE) {
            int64_t d = isnan(reg[0]) ? 0 : ts - (int64_t)reg[0];
            out[j] = isnan(reg[0]) ? NAN : (double)(d > 0 ? d : 0) / 1000.0;
        }
    }
}

/* Event @ev's bucket ordinal of resolution @res is too old for a ring of
 * @n buckets whose newest event time is @reg: not applied, as window.h says. */
static int too_old(double reg, int64_t ts, int64_t res, uint32_t n)
{
    int64_t newest;

    if (isnan(reg)) {
        return 0;
    }
    newest = rts_floor_div((int64_t)reg, res);
    return rts_floor_div(ts, res) <= newest - (int64_t)n;
}

/* Group @g's features of event @ev from the state rebuilt in w->ring. */
static void window_out(struct rts_rstate_worker *w, size_t ev, size_t g)
{
    const struct rts_rstate *rs = w->rs;
    const struct wgroup *wg = &rs->wg[g];
    double *out = out_row(w, ev);
    struct rts_win_agg agg;
    enum rts_win_answer by = rts_win_query(&wg->spec, w->ring, w->evs[ev].ts_ms, &agg);

    if (by != RTS_WIN_EXACT) {
        /* a bucket without a min or max member (written before the window
         * kept one) leaves the identity */
        agg.min = isinf(agg.min) ? NAN : agg.min;
        agg.max = isinf(agg.max) ? NAN : agg.max;
    }
    w->xover[ev] |= by == RTS_WIN_OVERFLOW;
    for (size_t j = 0; j < rs->na; j++) {
        const struct agg *a = &rs->a[j];
        if (a->kind != K_WIN || (size_t)a->group != g) {
            continue;
        }
        switch (a->agg) {
        case RTS_AGG_COUNT:
            out[j] = agg.count;
            break;
        case RTS_AGG_SUM:
            out[j] = agg.sum;
            break;
        case RTS_AGG_MEAN:
            out[j] = agg.count > 0 ? agg.sum / agg.count : NAN;
            break;
        case RTS_AGG_MIN:
            out[j] = agg.min;
            break;
        case RTS_AGG_MAX:
            out[j] = agg.max;
            break;
        case RTS_AGG_VELOCITY:
            out[j] = (a->has_of ? agg.sum : agg.count) * a->per_sec;
            break;
        default:
            out[j] = NAN;
            break;
        }
    }
}

/* The ring of group @g rebuilt in w->ring from the window's buckets (ZUNION
 * ... WITHSCORES); an exact window's held events follow (on_held). */
static void on_window(struct rts_rstate_worker *w, size_t ev, size_t g, const redisReply *r)
{
    const struct rts_rstate *rs = w->rs;
    const struct wgroup *wg = &rs->wg[g];
    const struct rts_event *e = &w->evs[ev];
    const double reg = reg_row(w, ev)[wg->reg];
    uint32_t n = wg->spec.nbuckets;
    int64_t q = rts_floor_div(e->ts_ms, wg->res), lo = q - n + 1, newest, top = INT64_MIN;

    if (r->type != REDIS_REPLY_ARRAY || r->elements % 2) {
        w->bad[ev] = 1;
        return;
    }
    for (uint32_t k = 0; k < n; k++) {
        w->bcount[k] = 0;
        w->bsum[k] = 0;
        w->bmin[k] = INFINITY;
        w->bmax[k] = -INFINITY;
    }
    for (size_t k = 0; k + 1 < r->elements; k += 2) {
        const redisReply *m = r->element[k];
        double v = reply_num(r->element[k + 1]);
        char kind;
        int64_t o;
        size_t b;
        if (m->type != REDIS_REPLY_STRING || parse_member(m->str, m->len, &kind, &o) ||
            o < lo || o > q || isnan(v)) {
            continue;
        }
        b = (size_t)(o - lo);
        switch (kind) {
        case 'c':
            w->bcount[b] = v >= 4294967295.0 ? UINT32_MAX : v > 0 ? (uint32_t)v : 0;
            top = w->bcount[b] && o > top ? o : top;
            break;
        case 's':
            w->bsum[b] = v;
            break;
        case 'l':
            w->bmin[b] = v;
            break;
        case 'h':
            w->bmax[b] = v;
            break;
        default:
            break;
        }
    }
    /* The ring's newest ordinal: the register's, or a newer bucket another
     * writer made between our reads; a register whose bucket is gone (it
     * expired) gives way to the newest bucket there is. */
    newest = isnan(reg) ? INT64_MIN : rts_floor_div((int64_t)reg, wg->res);
    newest = top > newest ? top : newest;
    if (newest != INT64_MIN && newest < lo) {
        newest = INT64_MIN; /* every bucket left the window at q */
    } else if (newest != INT64_MIN && newest <= q && !w->bcount[newest - lo]) {
        newest = top;
    }
    if (newest != INT64_MIN) {
        rts_win_load_init(&wg->spec, w->ring, newest);
        for (uint32_t k = 0; k < n; k++) {
            if (w->bcount[k]) {
                rts_win_load_bucket(&wg->spec, w->ring, lo + k, w->bcount[k], w->bsum[k],
                                    w->bmin[k], w->bmax[k]);
            }
        }
    } else {
        memset(w->ring, 0, rts_win_size(&wg->spec)); /* an empty ring (and none held) */
    }
    if (present(rs, wg->of, e) && too_old(reg, e->ts_ms, wg->res, n)) {
        w->late[ev] = 1;
    }
    if (!wg->spec.exact) {
        window_out(w, ev, g);
    }
}

/* An exact window's three reads, in order: ZCARD (held events), ZRANGE 0 0
 * (the oldest), ZRANGE BYSCORE (those newer than t - W, ascending (time,
 * value): Redis orders equal scores by member, whose prefix is the value).
 * After the last, the held events rebuilt beside the ring, and the local
 * query answers. */
static void on_held(struct rts_rstate_worker *w, size_t ev, size_t g, enum cmd_kind kind,
                    const redisReply *r)
{
    const struct wgroup *wg = &w->rs->wg[g];
    size_t k = 0, from, end;

    if (kind == C_XCARD) {
        if (r->type != REDIS_REPLY_INTEGER || r->integer < 0) {
            w->bad[ev] = 1;
            return;
        }
        w->xcard = r->integer > UINT32_MAX ? UINT32_MAX : (uint32_t)r->integer;
        return;
    }
    if (r->type != REDIS_REPLY_ARRAY || r->elements % 2) {
        w->bad[ev] = 1;
        return;
    }
    /* the oldest is the first; of more than N (another writer between our
     * reads), the greatest N */
    end = kind == C_XOLD && r->elements > 2 ? 2 : r->elements;
    from = kind == C_XWIN && end / 2 > wg->spec.exact ? end - 2 * (size_t)wg->spec.exact : 0;
    for (size_t i = from; i + 1 < end; i += 2) {
        const redisReply *m = r->element[i];
        double t = reply_num(r->element[i + 1]), v;
        if (m->type != REDIS_REPLY_STRING || parse_held_member(m->str, m->len, &v) ||
            !(fabs(t) < 9e18) || (k && (int64_t)t < w->held[k - 1].t)) {
            w->bad[ev] = 1;
            return;
        }
        w->held[k].t = (int64_t)t;
        w->held[k++].v = v;
    }
    if (kind == C_XOLD) {
        w->xold = k ? w->held[0].t : 0;
        return;
    }
    rts_win_load_held(&wg->spec, w->ring, w->xcard, w->xold, w->held, k);
    window_out(w, ev, g);
}

static void on_distinct(struct rts_rstate_worker *w, size_t ev, size_t g, const redisReply *r)
{
    const struct rts_rstate *rs = w->rs;
    const struct dgroup *dg = &rs->dg[g];
    const struct rts_event *e = &w->evs[ev];
    double *out = out_row(w, ev);

    if (r->type != REDIS_REPLY_INTEGER) {
        w->bad[ev] = 1;
        return;
    }
    if (present(rs, dg->of, e) &&
        too_old(reg_row(w, ev)[dg->reg], e->ts_ms, dg->res, dg->spec.nbuckets)) {
        w->late[ev] = 1;
    }
    for (size_t j = 0; j < rs->na; j++) {
        if (rs->a[j].kind == K_DIST && (size_t)rs->a[j].group == g) {
            out[j] = (double)r->integer;
        }
    }
}

/* The local last-N ring (engine.c) holds value k (0-based, oldest first) of
 * P pushes at position k mod N; its sums run over positions 0..count-1.
 * The list is newest first; with the push counter the positions, and so the
 * summation order, are the local ones. */
static void on_lastn(struct rts_rstate_worker *w, size_t ev, size_t g, const redisReply *r)
{
    const struct rts_rstate *rs = w->rs;
    const struct lgroup *lg = &rs->lg[g];
    double *out = out_row(w, ev), *v = w->lastv, pushes = reg_row(w, ev)[lg->reg], acc;
    size_t count;
    uint64_t p;

    if (r->type != REDIS_REPLY_ARRAY || r->elements > lg->n) {
        w->bad[ev] = 1;
        return;
    }
    count = r->elements;
    p = isnan(pushes) || pushes < 0 ? 0 : (uint64_t)pushes;
    for (size_t j = 0; j < count; j++) {
        size_t pos = p >= lg->n && count == lg->n ? (size_t)((p - 1 - j) % lg->n) : count - 1 - j;
        v[pos] = reply_num(r->element[j]);
    }
    for (size_t j = 0; j < rs->na; j++) {
        const struct agg *a = &rs->a[j];
        if (a->kind != K_LASTN || (size_t)a->group != g) {
            continue;
        }
        if (a->agg == RTS_AGG_COUNT) {
            out[j] = (double)count;
            continue;
        }
        if (count == 0) {
            out[j] = a->agg == RTS_AGG_SUM ? 0 : NAN;
            continue;
        }
        if (a->agg == RTS_AGG_LAST) {
            out[j] = reply_num(r->element[0]);
            continue;
        }
        acc = a->agg == RTS_AGG_SUM || a->agg == RTS_AGG_MEAN ? 0 : v[0];
        for (size_t k = 0; k < count; k++) {
            if (a->agg == RTS_AGG_MIN) {
                acc = v[k] < acc ? v[k] : acc;
            } else if (a->agg == RTS_AGG_MAX) {
                acc = v[k] > acc ? v[k] : acc;
            } else {
                acc += v[k];
            }
        }
        out[j] = a->agg == RTS_AGG_MEAN ? acc / (double)count : acc;
    }
}

static void on_reply(void *arg, size_t i, const struct redisReply *r)
{
    struct rts_rstate_worker *w = arg;
    const struct cmd_info *ci = &w->info[i];
    size_t ev = ci->ev;

    if (r->type == REDIS_REPLY_ERROR) {
        BUMP(w->st.bad_replies, 1);
        rts_log(RTS_LOG_WARN, "state: command refused", "error=\"%.*s\"",
                (int)(r->len < 120 ? r->len : 120), r->str);
        if (ci->kind != C_WRITE) {
            w->bad[ev] = 1;
        }
        return;
    }
    if (ci->kind == C_WRITE || w->bad[ev]) {
        return;
    }
    switch (ci->kind) {
    case C_META:
        on_meta(w, ev, r);
        break;
    case C_WIN:
        on_window(w, ev, ci->group, r);
        break;
    case C_XCARD:
    case C_XOLD:
    case C_XWIN:
        on_held(w, ev, ci->group, (enum cmd_kind)ci->kind, r);
        break;
    case C_DIST:
        on_distinct(w, ev, ci->group, r);
        break;
    default:
        on_lastn(w, ev, ci->group, r);
        break;
    }
    w->reads[ev]++;
}

void rts_rstate_batch(struct rts_rstate_worker *w, const struct rts_event *evs, size_t n,
                      uint64_t now_ns)
{
    const struct rts_rstate *rs = w->rs;
    struct rts_errbuf eb = {0};
    enum rts_store_status st = RTS_STORE_ERROR;
    uint64_t t0, t1;
    uint64_t late = 0, degraded = 0, overflow = 0;

    n = n < w->max_batch ? n : w->max_batch; /* the caller's contract (rts_rstate_fill) */
    w->evs = evs;
    w->ncmd = w->nbuf = 0;
    for (size_t i = 0; i < n; i++) {
        w->reads[i] = 0;
        w->bad[i] = 0;
        w->late[i] = 0;
        w->xover[i] = 0;
    }
    if (n == 0) {
        return;
    }
    if (!rts_breaker_allow(rs->breaker, now_ns)) {
        BUMP(w->st.refused, 1); /* every event degraded, below */
    } else {
        for (size_t i = 0; i < n; i++) {
            /* neither can happen (the decoder bounds keys, plan_bounds
             * events): degraded rather than overrun */
            if (evs[i].key.n > rs->max_key || w->cap_cmd - w->ncmd < rs->cmds_ev ||
                w->cap_buf - w->nbuf < rs->resp_ev) {
                w->bad[i] = 1;
                continue;
            }
            build_event(w, i, &evs[i]);
        }
        w->cmds.n = w->ncmd;
        w->cmds.resp = w->buf;
        w->cmds.len = w->nbuf;
        w->cmds.on_reply = on_reply;
        w->cmds.arg = w;
        w->cmds.deadline_ns = now_ns + rs->timeout_ns;
        t0 = rts_now_ns();
        st = rts_store_exec(rs->store, w->conn, &w->cmds, &eb);
        t1 = rts_now_ns();
        rts_breaker_record(rs->breaker, now_ns + (t1 - t0), st == RTS_STORE_OK, t1 - t0);
        BUMP(w->st.batches, 1);
        if (st == RTS_STORE_TIMEOUT) {
            BUMP(w->st.timeouts, 1);
        } else if (st != RTS_STORE_OK) {
            BUMP(w->st.errors, 1);
        }
        if (st != RTS_STORE_OK) {
            rts_log(RTS_LOG_WARN, "state: batch failed", "error=\"%s\"", eb.msg);
        }
    }
    for (size_t i = 0; i < n; i++) {
        if (w->bad[i] || w->reads[i] != rs->reads_ev) {
            double *out = out_row(w, i);
            for (size_t j = 0; j < rs->na; j++) {
                out[j] = NAN;
            }
            w->bad[i] = 1;
            degraded++;
        } else {
            late += w->late[i];
            overflow += w->xover[i];
        }
    }
    BUMP(w->st.degraded, degraded);
    BUMP(w->st.late, late);
    BUMP(w->st.exact_overflow, overflow);
}

int rts_rstate_fill(const struct rts_rstate_worker *w, size_t i, union rts_val *frame,
                    size_t nfields)
{
    const struct rts_rstate *rs = w->rs;
    const double *out = w->out + i * rs->na;

    for (size_t j = 0; j < rs->na; j++) {
        frame[nfields + rs->a[j].feat].num = out[j];
    }
    return w->bad[i];
}

void rts_rstate_worker_stats_add(const struct rts_rstate_worker *w, struct rts_rstate_stats *out)
{
#define ADD(f) out->f += __atomic_load_n(&w->st.f, __ATOMIC_RELAXED)
    ADD(batches);
    ADD(errors);
    ADD(timeouts);
    ADD(refused);
    ADD(degraded);
    ADD(late);
    ADD(exact_overflow);
    ADD(bad_replies);
#undef ADD
}
