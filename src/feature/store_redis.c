/*
 * store_redis.c - the `redis` store: one Redis hash per key (HSET key field
 * value ...), read with HMGET, written by `rtscore store load`.
 *
 * Connections: hiredis contexts are not thread-safe, so each worker owns one
 * (its struct redis_conn, made by conn_init and used only by that worker).
 * A batch is one round trip: HMGET is appended once per key
 * (redisAppendCommandArgv), the buffer is written, then the n replies are
 * read in order. Deadline: every socket call is bounded by SO_SNDTIMEO /
 * SO_RCVTIMEO (= timeout), and the batch as a whole by waiting for replies
 * with ppoll() up to the deadline, so a batch never waits past it even when
 * replies trickle in. A timed-out connection has replies in flight that no
 * one will read: it is closed and the next batch reconnects. Any other
 * failure (refused, reset, closed by the server) closes it too, and
 * reconnecting waits a backoff (backoff, doubling up to max_backoff, reset
 * by a success); meanwhile lookups fail at once with RTS_ERR_UNAVAIL, and the
 * lookup stage's circuit breaker stops calling.
 *
 * The password (option or password_file) is sent with AUTH and never
 * written to a log or an error message. hiredis 0.14 writes with write(2):
 * the process must ignore SIGPIPE (rtscore does) or a server that goes away
 * kills it. TLS is not in Debian's hiredis 0.14: a `tls` key is refused.
 */
#define _GNU_SOURCE /* ppoll: a deadline finer than poll's milliseconds */
#include <errno.h>
#include <hiredis/hiredis.h>
#include <math.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/clock.h"
#include "core/fmt.h"
#include "core/log.h"
#include "feature/store.h"

#define MAX_ARGS (2 + 2 * RTS_STORE_MAX_FIELDS + 2)
#define MAX_SECRET 4096

struct redis_store {
    /* options */
    const char *addr;
    int64_t db;
    const char *password, *password_file;
    int64_t timeout_us, connect_timeout_us, backoff_us, max_backoff_us;
    const struct rts_conf_node *tls;
    /* parsed by check */
    char host[256]; /* host name or address; the socket path with unix: */
    int port;       /* 0 = unix socket */
    /* state */
    const struct rts_store_env *env;
    char *secret; /* the password, NUL-terminated; NULL = no AUTH */
    size_t secret_len;
    char label[300];
};

struct redis_conn {
    redisContext *c;
    uint64_t retry_at_ns; /* no reconnect before this */
    uint64_t backoff_ns;  /* the next wait after a failure */
    const char *argv[MAX_ARGS];
    size_t argvlen[MAX_ARGS];
};

static const struct rts_opt redis_store_opts[] = {
    RTS_OPT_STR("addr", "127.0.0.1:6379", offsetof(struct redis_store, addr),
                "host:port, [ipv6]:port, or unix:/path/to/redis.sock"),
    RTS_OPT_INT("db", "0", offsetof(struct redis_store, db), "database number (SELECT)"),
    RTS_OPT_STR("password", NULL, offsetof(struct redis_store, password),
                "AUTH password; prefer password_file (never logged either way)"),
    RTS_OPT_STR("password_file", NULL, offsetof(struct redis_store, password_file),
                "file whose content (a trailing newline dropped) is the AUTH password"),
    RTS_OPT_DURATION("timeout", "2ms", offsetof(struct redis_store, timeout_us),
                     "one batch (one round trip) waits at most this long, then counts as a "
                     "timeout"),
    RTS_OPT_DURATION("connect_timeout", "100ms", offsetof(struct redis_store, connect_timeout_us),
                     "connecting (and AUTH, SELECT) waits at most this long"),
    RTS_OPT_DURATION("backoff", "50ms", offsetof(struct redis_store, backoff_us),
                     "after a connection failure, wait this long before reconnecting "
                     "(doubles on each failure)"),
    RTS_OPT_DURATION("max_backoff", "2s", offsetof(struct redis_store, max_backoff_us),
                     "the longest wait between reconnects"),
    RTS_OPT_NODE("tls", offsetof(struct redis_store, tls),
                 "not available: Debian's hiredis 0.14 has no TLS; reach a TLS Redis through a "
                 "local tunnel (stunnel, spiped) and point addr at it"),
    RTS_OPT_END,
};

static struct timeval tv_of(int64_t us)
{
    struct timeval tv = {(time_t)(us / 1000000), (suseconds_t)(us % 1000000)};

    return tv;
}

/* ---- options ---- */

static enum rts_err redis_check(void *ctx, const struct rts_conf_node *node, const char *path,
                                struct rts_errbuf *eb)
{
    struct redis_store *s = ctx;
    const struct rts_conf_node *an = rts_conf_get(node, "addr");
    const char *a = s->addr, *colon;
    char *end;
    long port;

    if (s->tls) {
        return rts_conf_errf(eb, s->tls, path,
                             "tls is not available: this build's hiredis (0.14, Debian) has no "
                             "TLS support; reach a TLS Redis through a local tunnel (stunnel, "
                             "spiped) and point addr at it");
    }
    if (s->password && s->password_file) {
        return rts_conf_errf(eb, rts_conf_get(node, "password"), path,
                             "give password or password_file, not both");
    }
    if (s->timeout_us < 1 || s->connect_timeout_us < 1 || s->backoff_us < 1000 ||
        s->max_backoff_us < s->backoff_us || s->db < 0 || s->db > 1000000) {
        return rts_conf_errf(eb, node, path, "timeout and connect_timeout > 0, backoff >= 1ms, "
                                             "max_backoff >= backoff, db >= 0");
    }
    if (strncmp(a, "unix:", 5) == 0) {
        if (!a[5] || strlen(a + 5) >= sizeof(s->host)) {
            return rts_conf_errf(eb, an, path, "expected unix:/path/to/redis.sock");
        }
        snprintf(s->host, sizeof(s->host), "%s", a + 5);
        s->port = 0;
        return RTS_ERR_OK;
    }
    if (a[0] == '[') {
        const char *close = strchr(a, ']');
        colon = close && close[1] == ':' ? close + 1 : NULL;
        if (colon && (size_t)(close - a - 1) < sizeof(s->host)) {
            snprintf(s->host, sizeof(s->host), "%.*s", (int)(close - a - 1), a + 1);
        }
    } else {
        colon = strrchr(a, ':');
        if (colon && (size_t)(colon - a) < sizeof(s->host)) {
            snprintf(s->host, sizeof(s->host), "%.*s", (int)(colon - a), a);
        }
    }
    if (!colon || !s->host[0]) {
        return rts_conf_errf(eb, an, path, "expected host:port, [ipv6]:port or unix:/path, got "
                                           "'%s'", a);
    }
    errno = 0;
    port = strtol(colon + 1, &end, 10);
    if (errno || *end || end == colon + 1 || port < 1 || port > 65535) {
        return rts_conf_errf(eb, an, path, "port must be 1..65535, got '%s'", colon + 1);
    }
    s->port = (int)port;
    return RTS_ERR_OK;
}

static enum rts_err redis_init(void *ctx, const struct rts_store_env *env, struct rts_errbuf *eb)
{
    struct redis_store *s = ctx;

    s->env = env;
    if (s->port) {
        snprintf(s->label, sizeof(s->label), "redis %s:%d db %lld", s->host, s->port,
                 (long long)s->db);
    } else {
        snprintf(s->label, sizeof(s->label), "redis unix:%s db %lld", s->host, (long long)s->db);
    }
    if (s->password_file) {
        struct rts_buf b = {0};
        if (rts_buf_read_file(&b, s->password_file, MAX_SECRET, eb)) {
            rts_err_prefix(eb, env->name);
            return eb ? eb->code : RTS_ERR_IO;
        }
        while (b.len && (b.data[b.len - 1] == '\n' || b.data[b.len - 1] == '\r')) {
            b.len--;
        }
        if (b.len == 0) {
            rts_buf_fini(&b);
            return rts_errf(eb, RTS_ERR_INVAL, 0, 0, "store %s: password_file '%s' is empty",
                            env->name, s->password_file);
        }
        b.data[b.len] = '\0';
        s->secret = b.data; /* ownership moves */
        s->secret_len = b.len;
    } else if (s->password) {
        s->secret_len = strlen(s->password);
        s->secret = strdup(s->password);
        if (!s->secret) {
            return rts_errf(eb, RTS_ERR_NOMEM, 0, 0, "store %s: out of memory", env->name);
        }
    }
    return RTS_ERR_OK;
}

static void redis_fini(void *ctx)
{
    struct redis_store *s = ctx;

    if (s->secret) {
        volatile char *p = s->secret;
        for (size_t i = 0; i < s->secret_len; i++) {
            p[i] = 0; /* no copy of the password outlives the store */
        }
        free(s->secret);
        s->secret = NULL;
    }
}

/* ---- connections ---- */

static void conn_close(struct redis_conn *rc)
{
    if (rc->c) {
        redisFree(rc->c);
        rc->c = NULL;
    }
}

/* Close after a failure at @now; reconnecting waits the backoff. */
static void conn_failed(const struct redis_store *s, struct redis_conn *rc, uint64_t now)
{
    uint64_t max = (uint64_t)s->max_backoff_us * 1000;

    conn_close(rc);
    if (!rc->backoff_ns) {
        rc->backoff_ns = (uint64_t)s->backoff_us * 1000;
    }
    rc->retry_at_ns = now + rc->backoff_ns;
    rc->backoff_ns = rc->backoff_ns * 2 > max ? max : rc->backoff_ns * 2;
}

static enum rts_err io_error(const struct redis_store *s, struct redis_conn *rc, uint64_t now,
                             const char *what, struct rts_errbuf *eb)
{
    rts_errf(eb, RTS_ERR_UNAVAIL, 0, 0, "store %s: %s %s: %s", s->env->name, what, s->label,
             rc->c && rc->c->errstr[0] ? rc->c->errstr : strerror(errno));
    conn_failed(s, rc, now);
    return RTS_ERR_UNAVAIL;
}

/* A command during the handshake; the reply's error text goes to @eb, never
 * the command (it may hold the password). */
static enum rts_err handshake(const struct redis_store *s, struct redis_conn *rc, const char *what,
                              int argc, const char **argv, const size_t *argvlen,
                              struct rts_errbuf *eb)
{
    redisReply *r = redisCommandArgv(rc->c, argc, argv, argvlen);
    enum rts_err e = RTS_ERR_OK;

    if (!r) {
        return io_error(s, rc, rts_now_ns(), what, eb);
    }
    if (r->type == REDIS_REPLY_ERROR) {
        e = rts_errf(eb, RTS_ERR_UNAVAIL, 0, 0, "store %s: %s refused by %s: %.*s", s->env->name,
                     what, s->label, (int)(r->len < 120 ? r->len : 120), r->str);
        freeReplyObject(r);
        conn_failed(s, rc, rts_now_ns());
        return e;
    }
    freeReplyObject(r);
    return e;
}

static enum rts_err conn_open(const struct redis_store *s, struct redis_conn *rc,
                              struct rts_errbuf *eb)
{
    struct timeval ct = tv_of(s->connect_timeout_us);

    rc->c = s->port ? redisConnectWithTimeout(s->host, s->port, ct)
                    : redisConnectUnixWithTimeout(s->host, ct);
    if (!rc->c) {
        return rts_errf(eb, RTS_ERR_NOMEM, 0, 0, "store %s: out of memory", s->env->name);
    }
    if (rc->c->err) {
        return io_error(s, rc, rts_now_ns(), "cannot connect to", eb);
    }
    if (redisSetTimeout(rc->c, ct) != REDIS_OK) {
        return io_error(s, rc, rts_now_ns(), "cannot set timeouts on", eb);
    }
    if (s->secret) {
        const char *argv[2] = {"AUTH", s->secret};
        size_t len[2] = {4, s->secret_len};
        if (handshake(s, rc, "AUTH", 2, argv, len, eb)) {
            return eb ? eb->code : RTS_ERR_UNAVAIL;
        }
    }
    if (s->db) {
        char num[RTS_FMT_INT_MAX];
        const char *argv[2] = {"SELECT", num};
        size_t len[2] = {6, rts_fmt_i64(num, s->db)};
        if (handshake(s, rc, "SELECT", 2, argv, len, eb)) {
            return eb ? eb->code : RTS_ERR_UNAVAIL;
        }
    }
    if (redisSetTimeout(rc->c, tv_of(s->timeout_us)) != REDIS_OK) {
        return io_error(s, rc, rts_now_ns(), "cannot set timeouts on", eb);
    }
    redisEnableKeepAlive(rc->c);
    rc->backoff_ns = 0;
    return RTS_ERR_OK;
}

static enum rts_err redis_conn_init(void *ctx, void *conn, struct rts_errbuf *eb)
{
    struct redis_store *s = ctx;
    struct redis_conn *rc = conn;
    struct rts_errbuf e2 = {0};

    (void)eb;
    /* Connect now to report an unreachable store early; not fatal: the
     * first lookup tries again (after the backoff). */
    if (conn_open(s, rc, &e2)) {
        rts_log(RTS_LOG_WARN, "store unreachable", "store=%s error=\"%s\"", s->env->name,
                e2.msg);
    }
    return RTS_ERR_OK;
}

static void redis_conn_fini(void *ctx, void *conn)
{
    (void)ctx;
    conn_close(conn);
}

/* ---- one round trip ---- */

/* Write everything appended; 0 ok. */
static int flush_out(redisContext *c)
{
    int done = 0;

    do {
        if (redisBufferWrite(c, &done) != REDIS_OK) {
            return -1;
        }
    } while (!done);
    return 0;
}

enum wait_result { GOT_REPLY, TIMED_OUT, FAILED };

/* The next reply into *r, waiting until @deadline at most. */
static enum wait_result next_reply(redisContext *c, uint64_t deadline, redisReply **r)
{
    for (;;) {
        void *p = NULL;
        uint64_t now;
        struct timespec ts;
        struct pollfd pfd = {c->fd, POLLIN, 0};
        int w;

        if (redisGetReplyFromReader(c, &p) != REDIS_OK) {
            return FAILED;
        }
        if (p) {
            *r = p;
            return GOT_REPLY;
        }
        now = rts_now_ns();
        if (now >= deadline) {
            return TIMED_OUT;
        }
        ts.tv_sec = (time_t)((deadline - now) / 1000000000u);
        ts.tv_nsec = (long)((deadline - now) % 1000000000u);
        w = ppoll(&pfd, 1, &ts, NULL);
        if (w < 0 && errno == EINTR) {
            continue;
        }
        if (w == 0) {
            continue; /* the clock decides */
        }
        if (w < 0 || redisBufferRead(c) != REDIS_OK) {
            return FAILED;
        }
    }
}

static uint64_t deadline_of(const struct redis_store *s, uint64_t now, uint64_t asked,
                            uint64_t dflt_us)
{
    uint64_t d = now + dflt_us * 1000;

    return asked && asked < d ? asked : d;
}

/* Connect if needed, unless the backoff says not yet (@force ignores it). */
static enum rts_err ensure_conn(const struct redis_store *s, struct redis_conn *rc, uint64_t now,
                                int force, struct rts_errbuf *eb)
{
    if (rc->c) {
        return RTS_ERR_OK;
    }
    if (!force && now < rc->retry_at_ns) {
        return rts_errf(eb, RTS_ERR_UNAVAIL, 0, 0,
                        "store %s: %s is unreachable; reconnecting in %llu ms", s->env->name,
                        s->label, (unsigned long long)((rc->retry_at_ns - now) / 1000000));
    }
    return conn_open(s, rc, eb);
}

static void fill_row(const redisReply *r, const struct rts_store_query *q, size_t i, int has_upd)
{
    double *out = q->values + i * q->nfields;

    q->updated_ms[i] = -1;
    if (r->type != REDIS_REPLY_ARRAY || r->elements != q->nfields + (size_t)has_upd) {
        for (size_t f = 0; f < q->nfields; f++) {
            out[f] = NAN;
        }
        if (r->type == REDIS_REPLY_ERROR) { /* e.g. WRONGTYPE: this key is not a hash */
            rts_log(RTS_LOG_WARN, "store reply refused; the key counts as not found",
                    "key=\"%.*s\" error=\"%.*s\"", (int)q->keys[i].n, q->keys[i].p,
                    (int)(r->len < 120 ? r->len : 120), r->str);
        }
        return;
    }
    for (size_t f = 0; f < q->nfields + (size_t)has_upd; f++) {
        const redisReply *e = r->element[f];
        double v = e->type == REDIS_REPLY_STRING    ? rts_store_parse_num(e->str, e->len)
                   : e->type == REDIS_REPLY_INTEGER ? (double)e->integer
                                                    : NAN;
        if (f < q->nfields) {
            out[f] = v;
        } else if (v >= 0 && v < 9e18) {
            q->updated_ms[i] = (int64_t)v;
        }
    }
}

static enum rts_store_status redis_lookup(void *ctx, void *conn, const struct rts_store_query *q,
                                          struct rts_errbuf *eb)
{
    struct redis_store *s = ctx;
    struct redis_conn *rc = conn;
    const char *upd = s->env->updated_field;
    uint64_t now = rts_now_ns(), deadline = deadline_of(s, now, q->deadline_ns,
                                                         (uint64_t)s->timeout_us);
    int argc = 2 + (int)q->nfields + (upd != NULL);

    if (ensure_conn(s, rc, now, 0, eb)) {
        return RTS_STORE_ERROR;
    }
    rc->argv[0] = "HMGET";
    rc->argvlen[0] = 5;
    for (size_t f = 0; f < q->nfields; f++) {
        rc->argv[2 + f] = q->fields[f];
        rc->argvlen[2 + f] = strlen(q->fields[f]);
    }
    if (upd) {
        rc->argv[argc - 1] = upd;
        rc->argvlen[argc - 1] = strlen(upd);
    }
    for (size_t i = 0; i < q->n; i++) {
        rc->argv[1] = q->keys[i].p;
        rc->argvlen[1] = q->keys[i].n;
        if (redisAppendCommandArgv(rc->c, argc, rc->argv, rc->argvlen) != REDIS_OK) {
            io_error(s, rc, now, "cannot send to", eb);
            return RTS_STORE_ERROR;
        }
    }
    if (flush_out(rc->c)) {
        io_error(s, rc, rts_now_ns(), "cannot send to", eb);
        return RTS_STORE_ERROR;
    }
    for (size_t i = 0; i < q->n; i++) {
        redisReply *r = NULL;
        switch (next_reply(rc->c, deadline, &r)) {
        case GOT_REPLY:
            fill_row(r, q, i, upd != NULL);
            freeReplyObject(r);
            break;
        case TIMED_OUT:
            rts_errf(eb, RTS_ERR_TIMEOUT, 0, 0,
                     "store %s: %s answered %zu of %zu keys within the deadline (%lld us)",
                     s->env->name, s->label, i, q->n, (long long)s->timeout_us);
            conn_close(rc); /* replies still in flight: start afresh, no backoff */
            return RTS_STORE_TIMEOUT;
        default:
            io_error(s, rc, rts_now_ns(), "lost the connection to", eb);
            return RTS_STORE_ERROR;
        }
    }
    return RTS_STORE_OK;
}

static enum rts_err redis_write(void *ctx, void *conn, const struct rts_store_rows *rows,
                                struct rts_errbuf *eb)
{
    struct redis_store *s = ctx;
    struct redis_conn *rc = conn;
    const char *upd = s->env->updated_field;
    uint64_t now = rts_now_ns(), deadline = deadline_of(s, now, rows->deadline_ns, 30000000);
    size_t sent = 0, refused = 0;
    char first[200] = "";
    enum rts_err e;

    e = ensure_conn(s, rc, now, 1, eb);
    if (e) {
        return e;
    }
    rc->argv[0] = "HSET";
    rc->argvlen[0] = 4;
    for (size_t i = 0; i < rows->n; i++) {
        char num[RTS_FMT_INT_MAX];
        int argc = 2;
        rc->argv[1] = rows->keys[i].p;
        rc->argvlen[1] = rows->keys[i].n;
        for (size_t f = 0; f < rows->nfields; f++) {
            const struct rts_str *cell = &rows->cells[i * rows->nfields + f];
            if (!cell->p) {
                continue;
            }
            rc->argv[argc] = rows->fields[f];
            rc->argvlen[argc++] = strlen(rows->fields[f]);
            rc->argv[argc] = cell->p;
            rc->argvlen[argc++] = cell->n;
        }
        if (upd && rows->updated_ms[i] >= 0) {
            rc->argv[argc] = upd;
            rc->argvlen[argc++] = strlen(upd);
            rc->argv[argc] = num;
            rc->argvlen[argc++] = rts_fmt_i64(num, rows->updated_ms[i]);
        }
        if (argc == 2) {
            continue; /* nothing to set */
        }
        if (redisAppendCommandArgv(rc->c, argc, rc->argv, rc->argvlen) != REDIS_OK) {
            return io_error(s, rc, now, "cannot send to", eb);
        }
        sent++;
    }
    if (flush_out(rc->c)) {
        return io_error(s, rc, rts_now_ns(), "cannot send to", eb);
    }
    for (size_t i = 0; i < sent; i++) {
        redisReply *r = NULL;
        switch (next_reply(rc->c, deadline, &r)) {
        case GOT_REPLY:
            if (r->type == REDIS_REPLY_ERROR && refused++ == 0) {
                snprintf(first, sizeof(first), "%.*s", (int)(r->len < 150 ? r->len : 150), r->str);
            }
            freeReplyObject(r);
            break;
        case TIMED_OUT:
            conn_close(rc);
            return rts_errf(eb, RTS_ERR_TIMEOUT, 0, 0, "store %s: %s: %zu of %zu writes "
                            "acknowledged in time", s->env->name, s->label, i, sent);
        default:
            return io_error(s, rc, rts_now_ns(), "lost the connection to", eb);
        }
    }
    if (refused) {
        return rts_errf(eb, RTS_ERR_INVAL, 0, 0, "store %s: %zu of %zu writes refused, first: %s",
                        s->env->name, refused, sent, first);
    }
    return RTS_ERR_OK;
}

static const char *redis_label(void *ctx)
{
    return ((struct redis_store *)ctx)->label;
}

const struct rts_store_ops rts_store_redis = {
    .name = "redis",
    .description = "Redis hashes, one per key (HSET key field value ...), read with pipelined "
                   "HMGET, one round trip per batch; one connection per worker",
    .opts = redis_store_opts,
    .ctx_size = sizeof(struct redis_store),
    .conn_size = sizeof(struct redis_conn),
    .check = redis_check,
    .init = redis_init,
    .fini = redis_fini,
    .conn_init = redis_conn_init,
    .conn_fini = redis_conn_fini,
    .lookup = redis_lookup,
    .write = redis_write,
    .label = redis_label,
};
