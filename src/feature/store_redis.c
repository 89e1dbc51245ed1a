/*
 * store_redis.c - the `redis` store: one Redis hash per key (HSET key field
 * value ...), read with HMGET, written by `rtscore store load`.
 *
 * Connections: hiredis contexts are not thread-safe, so each worker owns one
 * (its struct redis_conn, made by conn_init and used only by that worker).
 * A batch is one round trip: HMGET is appended once per key
 * (redisAppendCommandArgv), the buffer is written, then the n replies are
 * read in order.
 *
 * Deadlines: the socket is non-blocking and every wait (connect, write,
 * read) is a ppoll() bounded by the batch's deadline, so a batch never waits
 * past it, whatever the server does; this is the socket timeout, applied to
 * the batch as a whole rather than per system call (per-call SO_RCVTIMEO
 * would let replies that trickle in stretch a batch to n timeouts). A
 * connect is started without waiting; one that has not completed by the
 * deadline stays in progress for the next batch, and fails after
 * connect_timeout; one that ran out connect_timeout while no batch waited on
 * it (an open circuit calls nothing) failed then, and the next batch starts
 * afresh once the backoff allows. AUTH and SELECT are pipelined in front of the first
 * batch of a connection, so they cost no extra round trip and are bounded
 * by the same deadline. A timed-out connection has replies in flight that
 * no one will read: it is closed and the next batch reconnects at once. Any
 * other failure (refused, reset, closed by the server, AUTH refused) closes
 * it too, and reconnecting waits a backoff (backoff, doubling up to
 * max_backoff, reset by a success); meanwhile lookups fail at once with
 * RTS_ERR_UNAVAIL, and the lookup stage's circuit breaker stops calling.
 *
 * exec (the Redis window state, feature/rstate.c) is the same round trip
 * for a batch of the caller's commands, handed over already formatted.
 *
 * A host name is resolved once at init: reconnecting never waits on DNS.
 *
 * The password (option or password_file) is sent with AUTH and never
 * written to a log or an error message. hiredis 0.14 writes with write(2):
 * the process must ignore SIGPIPE (rtscore does) or a server that goes away
 * kills it. TLS is not in Debian's hiredis 0.14: a `tls` key is refused.
 */
#define _GNU_SOURCE /* ppoll: a deadline finer than poll's milliseconds */
#include <arpa/inet.h>
#include <errno.h>
#include <hiredis/hiredis.h>
#include <math.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

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
    char ip[64];    /* @host resolved at init; "" = connect by name */
    /* state */
    const struct rts_store_env *env;
    char *secret; /* the password, NUL-terminated; NULL = no AUTH */
    size_t secret_len;
    char label[300];
};

struct redis_conn {
    redisContext *c;         /* non-blocking */
    int connecting;          /* connect() in progress */
    int handshake;           /* AUTH / SELECT still to be sent and acknowledged */
    uint64_t connect_deadline_ns;
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

/* A host name is resolved once, here, so that no lookup batch waits on DNS
 * when it reconnects. A name that does not resolve now is left to
 * connect time (a warning says so). */
static void resolve(struct redis_store *s)
{
    struct addrinfo hints, *res = NULL;
    int rc;

    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    rc = getaddrinfo(s->host, NULL, &hints, &res);
    if (rc != 0 || !res) {
        rts_log(RTS_LOG_WARN, "store address does not resolve now; resolving at each connect",
                "store=%s host=%s error=\"%s\"", s->env->name, s->host, gai_strerror(rc));
        return;
    }
    if (res->ai_family == AF_INET) {
        inet_ntop(AF_INET, &((struct sockaddr_in *)(void *)res->ai_addr)->sin_addr, s->ip,
                  sizeof(s->ip));
    } else if (res->ai_family == AF_INET6) {
        inet_ntop(AF_INET6, &((struct sockaddr_in6 *)(void *)res->ai_addr)->sin6_addr, s->ip,
                  sizeof(s->ip));
    }
    freeaddrinfo(res);
}

static enum rts_err redis_init(void *ctx, const struct rts_store_env *env, struct rts_errbuf *eb)
{
    struct redis_store *s = ctx;

    s->env = env;
    if (s->port) {
        resolve(s);
    }
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
    rc->connecting = 0;
    rc->handshake = 0;
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

static enum rts_store_status io_error(const struct redis_store *s, struct redis_conn *rc,
                                      const char *what, struct rts_errbuf *eb)
{
    rts_errf(eb, RTS_ERR_UNAVAIL, 0, 0, "store %s: %s %s: %s", s->env->name, what, s->label,
             rc->c && rc->c->errstr[0] ? rc->c->errstr : strerror(errno ? errno : EIO));
    conn_failed(s, rc, rts_now_ns());
    return RTS_STORE_ERROR;
}

/* A batch ran out of time: replies may still come; start afresh, no backoff. */
static enum rts_store_status timed_out(const struct redis_store *s, struct redis_conn *rc,
                                       const char *what, size_t done, size_t n,
                                       struct rts_errbuf *eb)
{
    rts_errf(eb, RTS_ERR_TIMEOUT, 0, 0, "store %s: %s %s: %zu of %zu answered within the deadline",
             s->env->name, what, s->label, done, n);
    conn_close(rc);
    return RTS_STORE_TIMEOUT;
}

/* Wait until @fd is ready for @events or @deadline passes: 1 ready, 0 time
 * is up, -1 error (errno). */
static int wait_fd(int fd, short events, uint64_t deadline)
{
    for (;;) {
        struct pollfd pfd = {fd, events, 0};
        uint64_t now = rts_now_ns();
        struct timespec ts;
        int w;

        if (now >= deadline) {
            return 0;
        }
        ts.tv_sec = (time_t)((deadline - now) / 1000000000u);
        ts.tv_nsec = (long)((deadline - now) % 1000000000u);
        w = ppoll(&pfd, 1, &ts, NULL);
        if (w < 0 && errno == EINTR) {
            continue;
        }
        if (w < 0) {
            return -1;
        }
        if (w > 0) {
            return 1;
        }
    }
}

/* A connection that can take commands by @deadline. @force ignores the
 * reconnect backoff (bulk writes from the command line). */
static enum rts_store_status conn_ready(const struct redis_store *s, struct redis_conn *rc,
                                        uint64_t deadline, int force, struct rts_errbuf *eb)
{
    uint64_t now = rts_now_ns();
    int w, err = 0;
    socklen_t len = sizeof(err);

    if (rc->c && rc->connecting && now >= rc->connect_deadline_ns) {
        /* It ran out its connect_timeout while no call waited on it (the
         * breaker was open): it failed back then. Failing this call for it
         * would spend the breaker's probe on an attempt whose SYN the kernel
         * resends only seconds later; start afresh once the backoff allows. */
        conn_failed(s, rc, rc->connect_deadline_ns);
    }
    if (!rc->c) {
        if (!force && now < rc->retry_at_ns) {
            rts_errf(eb, RTS_ERR_UNAVAIL, 0, 0,
                     "store %s: %s is unreachable; reconnecting in %llu ms", s->env->name,
                     s->label, (unsigned long long)((rc->retry_at_ns - now) / 1000000));
            return RTS_STORE_ERROR;
        }
        rc->c = s->port ? redisConnectNonBlock(s->ip[0] ? s->ip : s->host, s->port)
                        : redisConnectUnixNonBlock(s->host);
        if (!rc->c) {
            rts_errf(eb, RTS_ERR_NOMEM, 0, 0, "store %s: out of memory", s->env->name);
            return RTS_STORE_ERROR;
        }
        if (rc->c->err) {
            return io_error(s, rc, "cannot connect to", eb);
        }
        rc->connecting = 1;
        rc->connect_deadline_ns = now + (uint64_t)s->connect_timeout_us * 1000;
        rc->handshake = s->secret || s->db;
    }
    if (!rc->connecting) {
        return RTS_STORE_OK;
    }
    w = wait_fd(rc->c->fd, POLLOUT,
                deadline < rc->connect_deadline_ns ? deadline : rc->connect_deadline_ns);
    if (w < 0) {
        return io_error(s, rc, "cannot connect to", eb);
    }
    if (w == 0) {
        if (rts_now_ns() >= rc->connect_deadline_ns) {
            errno = ETIMEDOUT;
            return io_error(s, rc, "cannot connect (connect_timeout) to", eb);
        }
        rts_errf(eb, RTS_ERR_TIMEOUT, 0, 0, "store %s: still connecting to %s", s->env->name,
                 s->label);
        return RTS_STORE_TIMEOUT; /* the connect goes on; the next batch waits for it */
    }
    if (getsockopt(rc->c->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err) {
        errno = err ? err : errno;
        return io_error(s, rc, "cannot connect to", eb);
    }
    rc->connecting = 0;
    if (s->port) {
        int one = 1;
        setsockopt(rc->c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        redisEnableKeepAlive(rc->c);
    }
    return RTS_STORE_OK;
}

/* AUTH and SELECT in front of a new connection's first commands; returns
 * how many were appended (their replies come first). */
static int append_handshake(const struct redis_store *s, struct redis_conn *rc)
{
    int n = 0;

    if (!rc->handshake) {
        return 0;
    }
    if (s->secret) {
        const char *argv[2] = {"AUTH", s->secret};
        size_t len[2] = {4, s->secret_len};
        n += redisAppendCommandArgv(rc->c, 2, argv, len) == REDIS_OK;
    }
    if (s->db) {
        char num[RTS_FMT_INT_MAX];
        const char *argv[2] = {"SELECT", num};
        size_t len[2] = {6, rts_fmt_i64(num, s->db)};
        n += redisAppendCommandArgv(rc->c, 2, argv, len) == REDIS_OK;
    }
    return n;
}

/* Write everything appended by @deadline. */
static enum rts_store_status flush_out(const struct redis_store *s, struct redis_conn *rc,
                                       uint64_t deadline, size_t n, struct rts_errbuf *eb)
{
    for (;;) {
        int done = 0, w;
        if (redisBufferWrite(rc->c, &done) != REDIS_OK) {
            return io_error(s, rc, "cannot send to", eb);
        }
        if (done) {
            return RTS_STORE_OK;
        }
        w = wait_fd(rc->c->fd, POLLOUT, deadline);
        if (w < 0) {
            return io_error(s, rc, "cannot send to", eb);
        }
        if (w == 0) {
            return timed_out(s, rc, "sending to", 0, n, eb);
        }
    }
}

enum wait_result { GOT_REPLY, TIMED_OUT, FAILED };

/* The next reply into *r, waiting until @deadline at most. */
static enum wait_result next_reply(redisContext *c, uint64_t deadline, redisReply **r)
{
    for (;;) {
        void *p = NULL;
        int w;

        if (redisGetReplyFromReader(c, &p) != REDIS_OK) {
            return FAILED;
        }
        if (p) {
            *r = p;
            return GOT_REPLY;
        }
        w = wait_fd(c->fd, POLLIN, deadline);
        if (w == 0) {
            return TIMED_OUT;
        }
        if (w < 0 || redisBufferRead(c) != REDIS_OK) {
            return FAILED;
        }
    }
}

/* The replies to AUTH / SELECT; a refusal closes the connection. The
 * password is never part of a message: only the server's reply is. */
static enum rts_store_status read_handshake(const struct redis_store *s, struct redis_conn *rc,
                                            int nh, uint64_t deadline, struct rts_errbuf *eb)
{
    for (int k = 0; k < nh; k++) {
        redisReply *r = NULL;
        const char *what = k == 0 && s->secret ? "AUTH" : "SELECT";
        switch (next_reply(rc->c, deadline, &r)) {
        case GOT_REPLY:
            if (r->type == REDIS_REPLY_ERROR) {
                rts_errf(eb, RTS_ERR_UNAVAIL, 0, 0, "store %s: %s refused by %s: %.*s",
                         s->env->name, what, s->label, (int)(r->len < 120 ? r->len : 120),
                         r->str);
                freeReplyObject(r);
                conn_failed(s, rc, rts_now_ns());
                return RTS_STORE_ERROR;
            }
            freeReplyObject(r);
            break;
        case TIMED_OUT:
            return timed_out(s, rc, what, 0, 1, eb);
        default:
            return io_error(s, rc, "lost the connection to", eb);
        }
    }
    rc->handshake = 0;
    rc->backoff_ns = 0; /* connected and accepted: the next failure starts the backoff anew */
    return RTS_STORE_OK;
}

static enum rts_err redis_conn_init(void *ctx, void *conn, struct rts_errbuf *eb)
{
    struct redis_store *s = ctx;
    struct redis_conn *rc = conn;
    struct rts_errbuf e2 = {0};
    uint64_t deadline = rts_now_ns() + (uint64_t)s->connect_timeout_us * 1000;
    enum rts_store_status st;

    (void)eb;
    /* Connect now, to report an unreachable store or a refused password at
     * start-up. Not fatal: the first lookup tries again (after the backoff). */
    st = conn_ready(s, rc, deadline, 1, &e2);
    if (st == RTS_STORE_OK && rc->handshake) {
        int nh = append_handshake(s, rc);
        st = flush_out(s, rc, deadline, 0, &e2);
        if (st == RTS_STORE_OK) {
            st = read_handshake(s, rc, nh, deadline, &e2);
        }
    }
    if (st != RTS_STORE_OK) {
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

static uint64_t deadline_of(uint64_t now, uint64_t asked, uint64_t dflt_us)
{
    uint64_t d = now + dflt_us * 1000;

    return asked && asked < d ? asked : d;
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
    uint64_t deadline = deadline_of(rts_now_ns(), q->deadline_ns, (uint64_t)s->timeout_us);
    int argc = 2 + (int)q->nfields + (upd != NULL), nh;
    enum rts_store_status st;

    st = conn_ready(s, rc, deadline, 0, eb);
    if (st != RTS_STORE_OK) {
        return st;
    }
    nh = append_handshake(s, rc);
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
            return io_error(s, rc, "cannot send to", eb);
        }
    }
    st = flush_out(s, rc, deadline, q->n, eb);
    if (st == RTS_STORE_OK) {
        st = read_handshake(s, rc, nh, deadline, eb);
    }
    for (size_t i = 0; i < q->n && st == RTS_STORE_OK; i++) {
        redisReply *r = NULL;
        switch (next_reply(rc->c, deadline, &r)) {
        case GOT_REPLY:
            fill_row(r, q, i, upd != NULL);
            freeReplyObject(r);
            break;
        case TIMED_OUT:
            return timed_out(s, rc, "reading from", i, q->n, eb);
        default:
            return io_error(s, rc, "lost the connection to", eb);
        }
    }
    return st;
}

/* Raw commands for the Redis window state: the lookup's round trip with
 * the caller's commands (already in RESP: one append for the batch);
 * replies go to the caller as they are read. */
static enum rts_store_status redis_exec(void *ctx, void *conn, struct rts_store_cmds *c,
                                        struct rts_errbuf *eb)
{
    struct redis_store *s = ctx;
    struct redis_conn *rc = conn;
    uint64_t deadline = deadline_of(rts_now_ns(), c->deadline_ns, (uint64_t)s->timeout_us);
    enum rts_store_status st;
    int nh;

    st = conn_ready(s, rc, deadline, 0, eb);
    if (st != RTS_STORE_OK) {
        return st;
    }
    nh = append_handshake(s, rc);
    if (redisAppendFormattedCommand(rc->c, c->resp, c->len) != REDIS_OK) {
        return io_error(s, rc, "cannot send to", eb);
    }
    st = flush_out(s, rc, deadline, c->n, eb);
    if (st == RTS_STORE_OK) {
        st = read_handshake(s, rc, nh, deadline, eb);
    }
    for (size_t i = 0; i < c->n && st == RTS_STORE_OK; i++) {
        redisReply *r = NULL;
        switch (next_reply(rc->c, deadline, &r)) {
        case GOT_REPLY:
            c->on_reply(c->arg, i, r);
            freeReplyObject(r);
            c->done = i + 1;
            break;
        case TIMED_OUT:
            return timed_out(s, rc, "reading from", i, c->n, eb);
        default:
            return io_error(s, rc, "lost the connection to", eb);
        }
    }
    return st;
}

/* One pipelined round of HSETs; *lost is set when the connection broke
 * (the caller may retry: HSET is idempotent). */
static enum rts_err write_once(struct redis_store *s, struct redis_conn *rc,
                               const struct rts_store_rows *rows, uint64_t deadline, int *lost,
                               struct rts_errbuf *eb)
{
    const char *upd = s->env->updated_field;
    size_t sent = 0, refused = 0;
    char first[200] = "";
    enum rts_store_status st;
    int nh;

    *lost = 0;
    st = conn_ready(s, rc, deadline, 1, eb);
    if (st != RTS_STORE_OK) {
        return eb ? eb->code : RTS_ERR_UNAVAIL;
    }
    nh = append_handshake(s, rc);
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
            io_error(s, rc, "cannot send to", eb);
            return RTS_ERR_NOMEM;
        }
        sent++;
    }
    st = flush_out(s, rc, deadline, sent, eb);
    if (st == RTS_STORE_OK) {
        st = read_handshake(s, rc, nh, deadline, eb);
    }
    for (size_t i = 0; i < sent && st == RTS_STORE_OK; i++) {
        redisReply *r = NULL;
        switch (next_reply(rc->c, deadline, &r)) {
        case GOT_REPLY:
            if (r->type == REDIS_REPLY_ERROR && refused++ == 0) {
                snprintf(first, sizeof(first), "%.*s", (int)(r->len < 150 ? r->len : 150), r->str);
            }
            freeReplyObject(r);
            break;
        case TIMED_OUT:
            timed_out(s, rc, "writing to", i, sent, eb);
            return RTS_ERR_TIMEOUT;
        default:
            io_error(s, rc, "lost the connection to", eb);
            *lost = 1;
            return RTS_ERR_UNAVAIL;
        }
    }
    if (st != RTS_STORE_OK) {
        *lost = st == RTS_STORE_ERROR;
        return eb ? eb->code : RTS_ERR_UNAVAIL;
    }
    if (refused) {
        return rts_errf(eb, RTS_ERR_INVAL, 0, 0, "store %s: %zu of %zu writes refused, first: %s",
                        s->env->name, refused, sent, first);
    }
    return RTS_ERR_OK;
}

static enum rts_err redis_write(void *ctx, void *conn, const struct rts_store_rows *rows,
                                struct rts_errbuf *eb)
{
    struct redis_store *s = ctx;
    struct redis_conn *rc = conn;
    uint64_t deadline = deadline_of(rts_now_ns(), rows->deadline_ns, 30000000);
    int lost = 0;
    enum rts_err e = write_once(s, rc, rows, deadline, &lost, eb);

    if (e && lost) { /* e.g. the server closed an idle connection: once more, afresh */
        e = write_once(s, rc, rows, deadline, &lost, eb);
    }
    return e;
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
    .exec = redis_exec,
    .label = redis_label,
};
