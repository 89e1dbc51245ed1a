/*
 * test_http.c - unit tests of serve/http: a server on 127.0.0.1 port 0 and a
 * minimal HTTP/1.1 client over a plain socket (one request per connection,
 * "Connection: close", read to EOF). Routing (GET/POST, HEAD, 404, 405 with
 * Allow), the raw query, the admin token (401 without, with a wrong one or
 * another scheme, 200 with it; unknown admin paths are 401 too), the body
 * limit (declared and chunked), handler statuses, idle connections not
 * blocking others, the listen address rules (parse errors, the non-loopback
 * refusal without a token), route and token validation, the token file
 * reader, no file descriptor left behind, and no token in the log.
 *
 * Nothing here waits on a clock: every read ends at EOF (the receive timeout
 * only keeps a broken server from hanging the test).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "core/log.h"
#include "serve/http.h"
#include "test.h"

#define TOKEN "s3cret-Token-0123456789abcdef"

/* ---- the client ---- */

struct reply {
    int status;
    struct rts_buf raw;
    const char *body; /* into raw */
    size_t body_len;
};

static int connect_to(uint16_t port)
{
    struct sockaddr_in sa;
    struct timeval tv = {30, 0};
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    if (fd < 0) {
        return -1;
    }
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons(port);
    sa.sin_addr.s_addr = htonl(0x7f000001);
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static int send_all(int fd, const char *p, size_t n)
{
    ssize_t w;

    while (n) {
        w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR) {
            continue;
        }
        if (w <= 0) {
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Read to EOF and split status line, head and body. 0 if a status came back. */
static int read_reply(int fd, struct reply *rp)
{
    char chunk[4096], *sep;
    ssize_t n;

    memset(rp, 0, sizeof(*rp));
    for (;;) {
        n = recv(fd, chunk, sizeof(chunk), 0);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            break; /* EOF, or a reset after the reply */
        }
        if (rts_buf_append(&rp->raw, chunk, (size_t)n)) {
            return -1;
        }
    }
    if (!rp->raw.data || sscanf(rp->raw.data, "HTTP/1.1 %d", &rp->status) != 1) {
        return -1;
    }
    sep = strstr(rp->raw.data, "\r\n\r\n");
    if (!sep) {
        return -1;
    }
    rp->body = sep + 4;
    rp->body_len = rp->raw.len - (size_t)(rp->body - rp->raw.data);
    return 0;
}

/* Send @req, then (@half_close) shut our side so that a server waiting for
 * more of a broken request sees the end at once, and read the reply. */
static int raw_request_ex(uint16_t port, const char *req, size_t len, int half_close,
                          struct reply *rp)
{
    int fd = connect_to(port), rc = -1;

    memset(rp, 0, sizeof(*rp));
    if (fd < 0) {
        return -1;
    }
    if (send_all(fd, req, len) == 0) {
        if (half_close) {
            shutdown(fd, SHUT_WR);
        }
        rc = read_reply(fd, rp);
    }
    close(fd);
    return rc;
}

static int raw_request(uint16_t port, const char *req, size_t len, struct reply *rp)
{
    return raw_request_ex(port, req, len, 0, rp);
}

/* @method @target with optional @auth header value and @body. */
static int request(uint16_t port, const char *method, const char *target, const char *auth,
                   const char *body, struct reply *rp)
{
    struct rts_buf req = {0};
    int rc;

    rts_buf_printf(&req, "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n", method,
                   target);
    if (auth) {
        rts_buf_printf(&req, "Authorization: %s\r\n", auth);
    }
    if (body) {
        rts_buf_printf(&req, "Content-Type: application/json\r\nContent-Length: %zu\r\n",
                       strlen(body));
    }
    rts_buf_printf(&req, "\r\n%s", body ? body : "");
    rc = raw_request(port, req.data, req.len, rp);
    rts_buf_fini(&req);
    return rc;
}

/* The value of header @name in the reply's head, copied into @out ("" if absent). */
static const char *header(const struct reply *rp, const char *name, char *out, size_t cap)
{
    const char *p = rp->raw.data, *end = rp->body, *eol;
    size_t n = strlen(name), vl;

    out[0] = '\0';
    while (p && p < end) {
        eol = strstr(p, "\r\n");
        if (!eol) {
            break;
        }
        if (strncasecmp(p, name, n) == 0 && p[n] == ':') {
            p += n + 1;
            while (*p == ' ') {
                p++;
            }
            vl = (size_t)(eol - p) < cap - 1 ? (size_t)(eol - p) : cap - 1;
            memcpy(out, p, vl);
            out[vl] = '\0';
            return out;
        }
        p = eol + 2;
    }
    return out;
}

static void reply_fini(struct reply *rp)
{
    rts_buf_fini(&rp->raw);
}

/* ---- handlers ---- */

static void h_metrics(void *arg, const struct rts_http_req *req, struct rts_http_resp *resp)
{
    resp->content_type = "text/plain; version=0.0.4; charset=utf-8";
    rts_buf_printf(&resp->body, "rtscore_up 1\n");
}

static void h_echo(void *arg, const struct rts_http_req *req, struct rts_http_resp *resp)
{
    resp->content_type = "application/octet-stream";
    rts_buf_append(&resp->body, req->body, req->body_len);
}

static void h_query(void *arg, const struct rts_http_req *req, struct rts_http_resp *resp)
{
    resp->content_type = "text/plain";
    rts_buf_printf(&resp->body, "%s|%s|%s", req->method, req->path, req->query);
}

static void h_models(void *arg, const struct rts_http_req *req, struct rts_http_resp *resp)
{
    int *calls = arg;

    (*calls)++;
    rts_buf_printf(&resp->body, "{\"live\":{\"name\":\"fraud\",\"version\":\"3\"}}");
}

static void h_conflict(void *arg, const struct rts_http_req *req, struct rts_http_resp *resp)
{
    rts_http_error(resp, 409, "nothing to \"promote\"");
}

static void h_bad_status(void *arg, const struct rts_http_req *req, struct rts_http_resp *resp)
{
    resp->status = 42;
}

static int admin_calls;

static const struct rts_http_route routes[] = {
    {"GET", "/metrics", h_metrics, NULL},
    {"POST", "/echo", h_echo, NULL},
    {"PUT", "/echo", h_echo, NULL},
    {"GET", "/query", h_query, NULL},
    {"GET", "/admin/models", h_models, &admin_calls},
    {"POST", "/admin/models/promote", h_conflict, NULL},
    {"GET", "/bad", h_bad_status, NULL},
};
#define NROUTES (sizeof(routes) / sizeof(routes[0]))

static struct rts_http *srv;
static uint16_t port;

/* ---- tests ---- */

TEST(routes_and_methods)
{
    struct reply rp;
    char v[256];

    CHECK_INT(request(port, "GET", "/metrics", NULL, NULL, &rp), 0);
    CHECK_INT(rp.status, 200);
    CHECK_STR(header(&rp, "Content-Type", v, sizeof(v)),
              "text/plain; version=0.0.4; charset=utf-8");
    CHECK_STR(header(&rp, "Cache-Control", v, sizeof(v)), "no-store");
    CHECK_STR(rp.body, "rtscore_up 1\n");
    reply_fini(&rp);

    CHECK_INT(request(port, "POST", "/echo", NULL, "{\"a\":1}", &rp), 0);
    CHECK_INT(rp.status, 200);
    CHECK_INT(rp.body_len, 7);
    CHECK_STR(rp.body, "{\"a\":1}");
    reply_fini(&rp);

    /* a POST without a body */
    CHECK_INT(request(port, "POST", "/echo", NULL, NULL, &rp), 0);
    CHECK_INT(rp.status, 200);
    CHECK_INT(rp.body_len, 0);
    reply_fini(&rp);

    /* the raw query; the path decoded */
    CHECK_INT(request(port, "GET", "/qu%65ry?a=1&b=%20x&c", NULL, NULL, &rp), 0);
    CHECK_INT(rp.status, 200);
    CHECK_STR(rp.body, "GET|/query|a=1&b=%20x&c");
    reply_fini(&rp);
    CHECK_INT(request(port, "GET", "/query", NULL, NULL, &rp), 0);
    CHECK_STR(rp.body, "GET|/query|");
    reply_fini(&rp);

    /* HEAD through the GET route: headers, no body */
    CHECK_INT(request(port, "HEAD", "/metrics", NULL, NULL, &rp), 0);
    CHECK_INT(rp.status, 200);
    CHECK_INT(rp.body_len, 0);
    CHECK_STR(header(&rp, "Content-Length", v, sizeof(v)), "13");
    reply_fini(&rp);

    CHECK_INT(request(port, "GET", "/nope", NULL, NULL, &rp), 0);
    CHECK_INT(rp.status, 404);
    CHECK_STR(header(&rp, "Content-Type", v, sizeof(v)), "application/json");
    CHECK_STR(rp.body, "{\"error\":\"not found\"}\n");
    reply_fini(&rp);
    CHECK_INT(request(port, "GET", "/metrics/", NULL, NULL, &rp), 0);
    CHECK_INT(rp.status, 404);
    reply_fini(&rp);

    CHECK_INT(request(port, "POST", "/metrics", NULL, "{}", &rp), 0);
    CHECK_INT(rp.status, 405);
    CHECK_STR(header(&rp, "Allow", v, sizeof(v)), "GET, HEAD");
    CHECK_STR(rp.body, "{\"error\":\"method not allowed\"}\n");
    reply_fini(&rp);
    CHECK_INT(request(port, "GET", "/echo", NULL, NULL, &rp), 0);
    CHECK_INT(rp.status, 405);
    CHECK_STR(header(&rp, "Allow", v, sizeof(v)), "POST, PUT");
    reply_fini(&rp);

    /* a handler's JSON error, and a handler that gives nonsense */
    CHECK_INT(request(port, "POST", "/admin/models/promote", "Bearer " TOKEN, "{}", &rp), 0);
    CHECK_INT(rp.status, 409);
    CHECK_STR(rp.body, "{\"error\":\"nothing to \\\"promote\\\"\"}\n");
    reply_fini(&rp);
    CHECK_INT(request(port, "GET", "/bad", NULL, NULL, &rp), 0);
    CHECK_INT(rp.status, 500);
    CHECK(strstr(rp.body, "\"error\"") != NULL);
    reply_fini(&rp);
}

TEST(admin_token)
{
    static const char *const wrong[] = {
        NULL,      /* no header */
        "Bearer",  /* no token */
        "Bearer ", /* empty token */
        "Bearer wrong-token-0123456789abcdef",
        "Bearer " TOKEN "x",                   /* longer */
        "Bearer s3cret-Token-0123456789abcde", /* a prefix */
        "Bearer S3cret-Token-0123456789abcdef",
        "Basic " TOKEN,
        TOKEN,
        "Bearer" TOKEN,
    };
    struct reply rp;
    char v[256];
    size_t i;
    int before = admin_calls;

    for (i = 0; i < sizeof(wrong) / sizeof(wrong[0]); i++) {
        CHECK_INT(request(port, "GET", "/admin/models", wrong[i], NULL, &rp), 0);
        if (rp.status != 401) {
            fprintf(stderr, "Authorization %s: %d\n", wrong[i] ? wrong[i] : "(none)", rp.status);
        }
        CHECK_INT(rp.status, 401);
        CHECK_STR(rp.body, "{\"error\":\"missing or wrong admin token\"}\n");
        CHECK_STR(header(&rp, "WWW-Authenticate", v, sizeof(v)), "Bearer realm=\"rtscore admin\"");
        reply_fini(&rp);
    }
    CHECK_INT(admin_calls, before); /* the handler never ran */

    CHECK_INT(request(port, "GET", "/admin/models", "Bearer " TOKEN, NULL, &rp), 0);
    CHECK_INT(rp.status, 200);
    CHECK_STR(rp.body, "{\"live\":{\"name\":\"fraud\",\"version\":\"3\"}}");
    reply_fini(&rp);
    CHECK_INT(request(port, "GET", "/admin/models", "bearer   " TOKEN "  ", NULL, &rp), 0);
    CHECK_INT(rp.status, 200);
    reply_fini(&rp);
    CHECK_INT(admin_calls, before + 2);

    /* unknown admin paths: 401 first (no disclosure), 404 with the token */
    CHECK_INT(request(port, "GET", "/admin/secret", NULL, NULL, &rp), 0);
    CHECK_INT(rp.status, 401);
    reply_fini(&rp);
    CHECK_INT(request(port, "GET", "/admin", NULL, NULL, &rp), 0);
    CHECK_INT(rp.status, 401);
    reply_fini(&rp);
    CHECK_INT(request(port, "GET", "/%61dmin/models", NULL, NULL, &rp), 0); /* decoded first */
    CHECK_INT(rp.status, 401);
    reply_fini(&rp);
    CHECK_INT(request(port, "GET", "/admin/secret", "Bearer " TOKEN, NULL, &rp), 0);
    CHECK_INT(rp.status, 404);
    reply_fini(&rp);
    CHECK_INT(request(port, "DELETE", "/admin/models", "Bearer " TOKEN, NULL, &rp), 0);
    CHECK_INT(rp.status, 405);
    reply_fini(&rp);
    /* a body to an admin route without the token: refused before it is read */
    CHECK_INT(request(port, "POST", "/admin/models/promote", NULL, "{\"x\":1}", &rp), 0);
    CHECK_INT(rp.status, 401);
    reply_fini(&rp);
    /* not admin paths */
    CHECK_INT(request(port, "GET", "/administrator", NULL, NULL, &rp), 0);
    CHECK_INT(rp.status, 404);
    reply_fini(&rp);
}

TEST(body_limit)
{
    struct rts_buf req = {0}, body = {0};
    struct reply rp;
    size_t i;

    /* exactly the limit is fine */
    for (i = 0; i < RTS_HTTP_MAX_BODY; i++) {
        rts_buf_append(&body, "abcdefghijklmnopqrstuvwxyz" + i % 26, 1);
    }
    CHECK_INT(request(port, "POST", "/echo", NULL, body.data, &rp), 0);
    CHECK_INT(rp.status, 200);
    CHECK_INT(rp.body_len, RTS_HTTP_MAX_BODY);
    CHECK(rp.body && memcmp(rp.body, body.data, RTS_HTTP_MAX_BODY) == 0);
    reply_fini(&rp);

    /* declared too large: refused on the headers (no body sent) */
    rts_buf_printf(&req,
                   "POST /echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                   "Content-Length: %u\r\n\r\n",
                   RTS_HTTP_MAX_BODY + 1);
    CHECK_INT(raw_request(port, req.data, req.len, &rp), 0);
    CHECK_INT(rp.status, 413);
    CHECK_STR(rp.body, "{\"error\":\"request body too large\"}\n");
    reply_fini(&rp);

    /* chunked past the limit: read, dropped, 413 */
    req.len = 0;
    rts_buf_printf(&req, "POST /echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                         "Transfer-Encoding: chunked\r\n\r\n");
    for (i = 0; i < (RTS_HTTP_MAX_BODY / 4096) + 2; i++) {
        rts_buf_printf(&req, "1000\r\n");
        rts_buf_append(&req, body.data, 4096);
        rts_buf_printf(&req, "\r\n");
    }
    rts_buf_printf(&req, "0\r\n\r\n");
    CHECK_INT(raw_request(port, req.data, req.len, &rp), 0);
    CHECK_INT(rp.status, 413);
    reply_fini(&rp);

    /* chunked within the limit */
    req.len = 0;
    rts_buf_printf(&req,
                   "POST /echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                   "Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n");
    CHECK_INT(raw_request(port, req.data, req.len, &rp), 0);
    CHECK_INT(rp.status, 200);
    CHECK_STR(rp.body, "hello world");
    reply_fini(&rp);

    rts_buf_fini(&req);
    rts_buf_fini(&body);
}

/* Garbage gets an error or a closed connection, and the server goes on.
 * Our side is shut after each, so nothing waits for the idle timeout. */
TEST(malformed_requests)
{
    static const char *const bad[] = {
        "GARBAGE\r\n\r\n", "GET /metrics HTTP/1.1\r\nNo colon here\r\n\r\n",
        "GET /me trics HTTP/1.1\r\nHost: x\r\n\r\n",
        "GET /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n",
        /* not "\r\n\r\n" alone: libmicrohttpd 0.9.75 may miss the end
         * after blank lines and hold such a connection until the idle
         * timeout (bounded, but a 10 s wait in a test) */
    };
    struct reply rp;
    size_t i;

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (raw_request_ex(port, bad[i], strlen(bad[i]), 1, &rp) == 0) {
            CHECK(rp.status >= 400);
        }
        reply_fini(&rp);
    }
    CHECK_INT(request(port, "GET", "/metrics", NULL, NULL, &rp), 0);
    CHECK_INT(rp.status, 200);
    reply_fini(&rp);
}

/* Idle connections (more than the threads) do not keep others waiting. */
TEST(idle_connections_do_not_block)
{
    int idle[RTS_HTTP_THREADS * 3], i;
    struct reply rp;

    for (i = 0; i < RTS_HTTP_THREADS * 3; i++) {
        idle[i] = connect_to(port);
        CHECK(idle[i] >= 0);
        if (i % 2 && idle[i] >= 0) {
            send_all(idle[i], "GET /metr", 9); /* half a request line */
        }
    }
    CHECK_INT(request(port, "GET", "/metrics", NULL, NULL, &rp), 0);
    CHECK_INT(rp.status, 200);
    reply_fini(&rp);
    for (i = 0; i < RTS_HTTP_THREADS * 3; i++) {
        if (idle[i] >= 0) {
            close(idle[i]);
        }
    }
}

static void h_open(void *arg, const struct rts_http_req *req, struct rts_http_resp *resp)
{
    rts_buf_printf(&resp->body, "{}");
}

TEST(listen_rules)
{
    const struct rts_http_route admin[] = {{"GET", "/admin/models", h_open, NULL}};
    const struct rts_http_route plain[] = {{"GET", "/metrics", h_open, NULL}};
    struct rts_errbuf eb = {0};
    struct rts_http *h;
    struct reply rp;

    /* non-loopback with admin routes and no token: refused before binding */
    h = rts_http_new("192.0.2.1:0", NULL, admin, 1, &eb);
    CHECK(h == NULL);
    CHECK_INT(eb.code, RTS_ERR_INVAL);
    CHECK(strstr(eb.msg, "not a loopback address") != NULL);
    CHECK(strstr(eb.msg, "admin_token_file") != NULL);
    rts_http_free(h);
    memset(&eb, 0, sizeof(eb));
    h = rts_http_new(":0", "", admin, 1, &eb); /* every interface, empty token = none */
    CHECK(h == NULL);
    CHECK_INT(eb.code, RTS_ERR_INVAL);
    rts_http_free(h);
    /* with a token, or without admin routes, the check passes; the bind
     * itself fails (a documentation address is not ours) */
    memset(&eb, 0, sizeof(eb));
    h = rts_http_new("192.0.2.1:0", TOKEN, admin, 1, &eb);
    CHECK(h == NULL);
    CHECK_INT(eb.code, RTS_ERR_IO);
    CHECK(strstr(eb.msg, "cannot listen") != NULL);
    memset(&eb, 0, sizeof(eb));
    h = rts_http_new("192.0.2.1:0", NULL, plain, 1, &eb);
    CHECK(h == NULL);
    CHECK_INT(eb.code, RTS_ERR_IO);

    /* loopback without a token: admin is open */
    memset(&eb, 0, sizeof(eb));
    h = rts_http_new("localhost:0", NULL, admin, 1, &eb);
    CHECK(h != NULL);
    if (h) {
        CHECK(rts_http_port(h) > 0);
        rts_http_free(h);
    }
    h = rts_http_new("127.0.0.2:0", NULL, admin, 1, &eb);
    CHECK(h != NULL);
    rts_http_free(h);
    h = rts_http_new("127.0.0.1:0", NULL, admin, 1, &eb);
    CHECK(h != NULL);
    if (h) {
        CHECK_INT(request(rts_http_port(h), "GET", "/admin/models", NULL, NULL, &rp), 0);
        CHECK_INT(rp.status, 200);
        reply_fini(&rp);
        rts_http_free(h);
    }
    /* [::1] if this machine has IPv6 loopback; else a bind error, not a refusal */
    memset(&eb, 0, sizeof(eb));
    h = rts_http_new("[::1]:0", NULL, admin, 1, &eb);
    CHECK(h != NULL || eb.code == RTS_ERR_IO);
    rts_http_free(h);

    /* address syntax */
    {
        static const char *const bad[] = {"127.0.0.1",      "127.0.0.1:",   "127.0.0.1:65536",
                                          "127.0.0.1:http", "::1:80",       "[::1]80",
                                          "[::1",           "127.0.0.1:-1", "127.0.0.1:123456"};
        size_t i;

        for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
            memset(&eb, 0, sizeof(eb));
            h = rts_http_new(bad[i], NULL, plain, 1, &eb);
            CHECK(h == NULL);
            CHECK_INT(eb.code, RTS_ERR_INVAL);
            rts_http_free(h);
        }
        h = rts_http_new(NULL, NULL, plain, 1, &eb);
        CHECK(h == NULL);
    }

    /* a port in use */
    memset(&eb, 0, sizeof(eb));
    {
        char addr[32];

        snprintf(addr, sizeof(addr), "127.0.0.1:%u", (unsigned)port);
        h = rts_http_new(addr, NULL, plain, 1, &eb);
        CHECK(h == NULL);
        CHECK_INT(eb.code, RTS_ERR_IO);
        CHECK(strstr(eb.msg, "in use") != NULL);
    }
}

TEST(validation)
{
    const struct rts_http_route dup[] = {{"GET", "/a", h_open, NULL}, {"GET", "/a", h_open, NULL}};
    const struct rts_http_route rel[] = {{"GET", "a", h_open, NULL}};
    const struct rts_http_route lower[] = {{"get", "/a", h_open, NULL}};
    const struct rts_http_route query[] = {{"GET", "/a?b", h_open, NULL}};
    const struct rts_http_route nohandler[] = {{"GET", "/a", NULL, NULL}};
    const struct rts_http_route ok[] = {{"GET", "/a", h_open, NULL}, {"POST", "/a", h_open, NULL}};
    struct rts_errbuf eb = {0};
    struct rts_http *h;

    CHECK(rts_http_new("127.0.0.1:0", NULL, dup, 2, &eb) == NULL);
    CHECK(strstr(eb.msg, "given twice") != NULL);
    CHECK(rts_http_new("127.0.0.1:0", NULL, rel, 1, &eb) == NULL);
    CHECK(rts_http_new("127.0.0.1:0", NULL, lower, 1, &eb) == NULL);
    CHECK(rts_http_new("127.0.0.1:0", NULL, query, 1, &eb) == NULL);
    CHECK(rts_http_new("127.0.0.1:0", NULL, nohandler, 1, &eb) == NULL);
    CHECK(rts_http_new("127.0.0.1:0", NULL, ok, RTS_HTTP_MAX_ROUTES + 1, &eb) == NULL);
    memset(&eb, 0, sizeof(eb));
    CHECK(rts_http_new("127.0.0.1:0", "short", ok, 2, &eb) == NULL);
    CHECK_INT(eb.code, RTS_ERR_INVAL);
    CHECK(strstr(eb.msg, "16 to 256") != NULL);
    CHECK(rts_http_new("127.0.0.1:0", "has a space inside the token", ok, 2, &eb) == NULL);
    CHECK(strstr(eb.msg, "space") != NULL);
    CHECK(strstr(eb.msg, "inside the token") == NULL);   /* never echoed */
    h = rts_http_new("127.0.0.1:0", NULL, NULL, 0, &eb); /* no routes: everything is 404 */
    CHECK(h != NULL);
    rts_http_free(h);
    rts_http_free(NULL);
}

/* ---- the token file ---- */

static char tmpdir[256];

static void write_file(const char *path, const char *text, mode_t mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

    if (fd >= 0) {
        CHECK_INT(write(fd, text, strlen(text)), (long long)strlen(text));
        fchmod(fd, mode);
        close(fd);
    }
}

TEST(read_token)
{
    char path[512], tok[RTS_HTTP_TOKEN_MAX + 1], big[5000];
    struct rts_errbuf eb = {0};

    snprintf(path, sizeof(path), "%s/token", tmpdir);
    write_file(path, "  \n" TOKEN "\r\n\t ", 0600);
    CHECK_INT(rts_http_read_token(path, tok, sizeof(tok), &eb), RTS_ERR_OK);
    CHECK_STR(tok, TOKEN);
    write_file(path, TOKEN, 0400);
    CHECK_INT(rts_http_read_token(path, tok, sizeof(tok), &eb), RTS_ERR_OK);
    CHECK_STR(tok, TOKEN);

    /* group- or other-accessible */
    write_file(path, TOKEN "\n", 0640);
    CHECK_INT(rts_http_read_token(path, tok, sizeof(tok), &eb), RTS_ERR_INVAL);
    CHECK(strstr(eb.msg, "group or others (mode 0640)") != NULL);
    CHECK(strstr(eb.msg, "chmod 600") != NULL);
    write_file(path, TOKEN "\n", 0604);
    CHECK_INT(rts_http_read_token(path, tok, sizeof(tok), &eb), RTS_ERR_INVAL);
    write_file(path, TOKEN "\n", 0620);
    CHECK_INT(rts_http_read_token(path, tok, sizeof(tok), &eb), RTS_ERR_INVAL);

    write_file(path, " \n\t\n", 0600);
    CHECK_INT(rts_http_read_token(path, tok, sizeof(tok), &eb), RTS_ERR_INVAL);
    CHECK(strstr(eb.msg, "is empty") != NULL);
    write_file(path, "", 0600);
    CHECK_INT(rts_http_read_token(path, tok, sizeof(tok), &eb), RTS_ERR_INVAL);
    CHECK(strstr(eb.msg, "is empty") != NULL);

    write_file(path, "two-words-0123456789 secret-second-half\n", 0600);
    CHECK_INT(rts_http_read_token(path, tok, sizeof(tok), &eb), RTS_ERR_INVAL);
    CHECK(strstr(eb.msg, "secret-second-half") == NULL);
    CHECK(strstr(eb.msg, "two-words") == NULL);
    write_file(path, "short\n", 0600);
    CHECK_INT(rts_http_read_token(path, tok, sizeof(tok), &eb), RTS_ERR_INVAL);
    CHECK(strstr(eb.msg, "short") == NULL || strstr(eb.msg, path) != NULL);

    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    write_file(path, big, 0600);
    CHECK_INT(rts_http_read_token(path, tok, sizeof(tok), &eb), RTS_ERR_INVAL);
    big[300] = '\0'; /* over RTS_HTTP_TOKEN_MAX */
    write_file(path, big, 0600);
    CHECK_INT(rts_http_read_token(path, tok, sizeof(tok), &eb), RTS_ERR_INVAL);

    /* a caller buffer too small */
    write_file(path, TOKEN, 0600);
    CHECK_INT(rts_http_read_token(path, tok, 8, &eb), RTS_ERR_LIMIT);

    CHECK_INT(rts_http_read_token(tmpdir, tok, sizeof(tok), &eb), RTS_ERR_INVAL);
    CHECK(strstr(eb.msg, "not a regular file") != NULL);
    snprintf(path, sizeof(path), "%s/missing", tmpdir);
    CHECK_INT(rts_http_read_token(path, tok, sizeof(tok), &eb), RTS_ERR_IO);
    CHECK(strstr(eb.msg, path) != NULL);
}

static int count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    struct dirent *e;
    int n = 0;

    if (!d) {
        return -1;
    }
    while ((e = readdir(d)) != NULL) {
        n += e->d_name[0] != '.';
    }
    closedir(d);
    return n;
}

/* Open and close servers (used and unused): no descriptor stays behind. */
TEST(no_fd_leak)
{
    struct rts_errbuf eb = {0};
    struct rts_http *h;
    struct reply rp;
    int before = count_fds(), i;

    for (i = 0; i < 3; i++) {
        h = rts_http_new("127.0.0.1:0", TOKEN, routes, NROUTES, &eb);
        CHECK(h != NULL);
        if (h && i == 1) {
            CHECK_INT(request(rts_http_port(h), "GET", "/metrics", NULL, NULL, &rp), 0);
            reply_fini(&rp);
        }
        rts_http_free(h);
    }
    CHECK_INT(count_fds(), before);
}

int main(void)
{
    struct rts_errbuf eb = {0};
    char logpath[512];
    struct rts_buf log = {0};
    int logfd, oldfd;

    snprintf(tmpdir, sizeof(tmpdir), "%s/rts_test_http.XXXXXX",
             getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    /* everything the server logs goes to a file checked at the end */
    snprintf(logpath, sizeof(logpath), "%s/log", tmpdir);
    logfd = open(logpath, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0600);
    oldfd = rts_log_set_fd(logfd);
    rts_log_set_level(RTS_LOG_DEBUG); /* libmicrohttpd's messages too */

    srv = rts_http_new("127.0.0.1:0", TOKEN, routes, NROUTES, &eb);
    if (!srv) {
        fprintf(stderr, "rts_http_new: %s\n", eb.msg);
        return 1;
    }
    port = rts_http_port(srv);
    CHECK(port > 0);

    RUN(routes_and_methods);
    RUN(admin_token);
    RUN(body_limit);
    RUN(malformed_requests);
    RUN(idle_connections_do_not_block);
    RUN(listen_rules);
    RUN(validation);
    RUN(read_token);
    RUN(no_fd_leak);
    rts_http_free(srv);

    rts_log_set_fd(oldfd);
    close(logfd);
    CHECK_INT(rts_buf_read_file(&log, logpath, 1 << 20, &eb), RTS_ERR_OK);
    CHECK(!log.data || strstr(log.data, TOKEN) == NULL);
    CHECK(log.data != NULL); /* the no-token warning at least */
    CHECK(!log.data || (strstr(log.data, "Bearer") == NULL && strstr(log.data, "bearer") == NULL));
    CHECK(!log.data || strstr(log.data, "admin API without a token") != NULL);
    rts_buf_fini(&log);
    unlink(logpath);
    snprintf(logpath, sizeof(logpath), "%s/token", tmpdir);
    unlink(logpath);
    rmdir(tmpdir);
    return TEST_EXIT();
}
